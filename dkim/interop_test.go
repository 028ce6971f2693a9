package dkim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/internal/peertest"
)

// dkimpyScript drives Debian's python3-dkim: "verify ZONE FILE..." prints,
// per file, a JSON list with one entry per signature (true, false, or the
// error text); "sign ZONE KEY SELECTOR DOMAIN ALG CANON FILE..." writes
// FILE.signed.
const dkimpyScript = `
import sys, json, dkim
zone = {}
for line in open(sys.argv[2]):
    line = line.rstrip('\r\n')
    if line.strip():
        n, v = line.split(' ', 1)
        zone[n.rstrip('.').lower()] = v.encode()
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return zone.get(name.rstrip('.').lower())
if sys.argv[1] == 'verify':
    out = []
    for path in sys.argv[3:]:
        msg = open(path, 'rb').read()
        d = dkim.DKIM(msg)
        n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
        res = []
        for i in range(n):
            try:
                res.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
            except Exception as e:
                res.append(str(e))
        out.append(res)
    print(json.dumps(out))
else:
    key = open(sys.argv[3], 'rb').read()
    sel, dom, alg, canon = sys.argv[4:8]
    hc, bc = canon.split('/')
    for path in sys.argv[8:]:
        msg = open(path, 'rb').read()
        sig = dkim.sign(msg, sel.encode(), dom.encode(), key, canonicalize=(hc.encode(), bc.encode()),
                        signature_algorithm=alg.encode(),
                        include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])
        open(path + '.signed', 'wb').write(sig + msg)
`

// interopMessages are the messages signed for the peers: the conformance
// messages and generated ones with CRLF line breaks (SMTP's form).
func interopMessages(t *testing.T, tame bool) map[string][]byte {
	msgs := map[string][]byte{
		"rfc8463": readFile(t, "testdata/rfc8463/a3-unsigned.eml"),
		"rfc6376": readFile(t, "testdata/rfc6376/a1-unsigned.eml"),
		"gomsg":   readFile(t, "testdata/go-msgauth/unsigned-crlf.eml"),
		"dkimpy":  readFile(t, "testdata/dkimpy/test.message"),
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 28
	if tame {
		n = 12 // one opendkim process per message and key: keep it short
	}
	if testing.Short() {
		n = 8
	}
	for i := 0; len(msgs) < n; i++ {
		m := genMessageOpts(r, tame)
		if bytes.Contains(bytes.ReplaceAll(m, []byte("\r\n"), nil), []byte("\n")) {
			continue // lone-LF messages are checked against go-msgauth only
		}
		msgs[fmt.Sprintf("gen%02d", i)] = m
	}
	if tame {
		// OpenDKIM signs only mail from its Domain.
		delete(msgs, "dkimpy")
		// The go-msgauth message has no final line break.
		msgs["gomsg"] = append(msgs["gomsg"], "\r\n"...)
	}
	return msgs
}

// interopSigner is one of the two keys the peers share with us.
type interopSigner struct {
	sel, alg string
	file     string // the key as this package reads it, for dkimpy too
	pem      string // the key as PEM, for peers that read no other form
	s        func(hc, bc dkim.Canonicalization) *dkim.Signer
}

func interopSigners(t *testing.T) []interopSigner {
	out := []interopSigner{
		{sel: "brisbane", alg: "ed25519-sha256", file: "testdata/rfc8463/ed25519-private-seed.b64", pem: "testdata/rfc8463/ed25519-private-pkcs8.pem"},
		{sel: "test", alg: "rsa-sha256", file: "testdata/rfc8463/rsa-private.pem", pem: "testdata/rfc8463/rsa-private.pem"},
	}
	for i := range out {
		k := &out[i]
		key, err := dkim.ParsePrivateKey(readFile(t, k.file))
		if err != nil {
			t.Fatal(err)
		}
		k.file, _ = filepath.Abs(k.file)
		k.pem, _ = filepath.Abs(k.pem)
		k.s = func(hc, bc dkim.Canonicalization) *dkim.Signer {
			s, err := dkim.NewSigner("football.example.com", k.sel, key, &dkim.SignOptions{HeaderCanonicalization: hc, BodyCanonicalization: bc})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	return out
}

// signedByUs writes every message, signed with both keys, once per
// canonicalization pair, and returns the files.
func signedByUs(t *testing.T, dir string, msgs map[string][]byte, signers []interopSigner) []string {
	t.Helper()
	var files []string
	for name, m := range msgs {
		for _, c := range canonPairs {
			f := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.eml", name, c[0], c[1]))
			os.WriteFile(f, signOurs(t, m, signers[0].s(c[0], c[1]), signers[1].s(c[0], c[1])), 0o600)
			files = append(files, f)
		}
	}
	return files
}

// checkPeerSigned has a peer sign every message with each key, once per
// canonicalization pair (sign writes FILE.signed beside each file it is
// given), and verifies each signed file here.
func checkPeerSigned(t *testing.T, dir, peer string, msgs map[string][]byte, signers []interopSigner,
	sign func(k interopSigner, c [2]dkim.Canonicalization, files []string)) {
	t.Helper()
	for _, k := range signers {
		for _, c := range canonPairs {
			sub := filepath.Join(dir, fmt.Sprintf("%s-%s-%s-%s", peer, k.sel, c[0], c[1]))
			os.Mkdir(sub, 0o700)
			var in []string
			for name, m := range msgs {
				f := filepath.Join(sub, name+".eml")
				os.WriteFile(f, m, 0o600)
				in = append(in, f)
			}
			sign(k, c, in)
			for _, f := range in {
				res := verifyOurs(t, readFile(t, f+".signed"))
				if len(res) != 1 || res[0].Status != dkim.Pass {
					t.Errorf("we do not verify %s's %s %s/%s %s: %+v", peer, k.sel, c[0], c[1], filepath.Base(f), res)
				}
			}
		}
	}
}

var canonPairs = [][2]dkim.Canonicalization{{dkim.Relaxed, dkim.Relaxed}, {dkim.Simple, dkim.Simple}, {dkim.Relaxed, dkim.Simple}, {dkim.Simple, dkim.Relaxed}}

func signOurs(t *testing.T, msg []byte, signers ...*dkim.Signer) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := dkim.Sign(context.Background(), &out, bytes.NewReader(msg), signers...); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func verifyOurs(t *testing.T, msg []byte) dkim.Results {
	t.Helper()
	zone := zoneFromLines(t, string(readFile(t, "testdata/rfc8463/keys.zone")))
	res, err := mustVerifier(t, zone, nil).Verify(context.Background(), bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestInteropDkimpy(t *testing.T) {
	t.Parallel()
	py := peertest.Python(t, "dkim", "nacl")
	dir := t.TempDir()
	script := filepath.Join(dir, "peer.py")
	zoneFile, _ := filepath.Abs("testdata/rfc8463/keys.zone")
	os.WriteFile(script, []byte(dkimpyScript), 0o600)
	msgs := interopMessages(t, false)
	signers := interopSigners(t)

	// Ours -> dkimpy: both signatures on every message, four canonicalizations.
	files := signedByUs(t, dir, msgs, signers)
	out, err := exec.Command(py, append([]string{script, "verify", zoneFile}, files...)...).Output()
	if err != nil {
		t.Fatalf("dkimpy: %v", err)
	}
	var got [][]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("dkimpy output %q: %v", out, err)
	}
	for i, f := range files {
		if len(got[i]) != 2 || got[i][0] != true || got[i][1] != true {
			t.Errorf("dkimpy does not verify our %s: %v", filepath.Base(f), got[i])
		}
	}

	// dkimpy -> ours.
	checkPeerSigned(t, dir, "dkimpy", msgs, signers, func(k interopSigner, c [2]dkim.Canonicalization, files []string) {
		args := append([]string{script, "sign", zoneFile, k.file, k.sel, "football.example.com", k.alg, string(c[0]) + "/" + string(c[1])}, files...)
		if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
			t.Fatalf("dkimpy sign: %v\n%s", err, out)
		}
	})
}

// TestInteropDkimpyLoneCR: dkimpy reads RFC 6376 §3.4.4 as we do for a CR
// not followed by LF (see TestLoneCRRelaxed), so its signature verifies
// here and ours there.
func TestInteropDkimpyLoneCR(t *testing.T) {
	t.Parallel()
	py := peertest.Python(t, "dkim", "nacl")
	dir := t.TempDir()
	script := filepath.Join(dir, "peer.py")
	os.WriteFile(script, []byte(dkimpyScript), 0o600)
	zoneFile, _ := filepath.Abs("testdata/rfc8463/keys.zone")
	msg := []byte("From: a@football.example.com\r\nTo: b@example.net\r\nSubject: cr\r\n\r\nab  \rcd\r\nx \r\n")
	f := filepath.Join(dir, "m.eml")
	os.WriteFile(f, msg, 0o600)
	ed := interopSigners(t)[0]
	if out, err := exec.Command(py, script, "sign", zoneFile, ed.file, ed.sel, "football.example.com", ed.alg, "relaxed/relaxed", f).CombinedOutput(); err != nil {
		t.Fatalf("dkimpy sign: %v\n%s", err, out)
	}
	if res := verifyOurs(t, readFile(t, f+".signed")); len(res) != 1 || res[0].Status != dkim.Pass {
		t.Errorf("dkimpy's lone-CR signature: %+v", res)
	}
	ours := filepath.Join(dir, "ours.eml")
	os.WriteFile(ours, signOurs(t, msg, ed.s(dkim.Relaxed, dkim.Relaxed)), 0o600)
	out, err := exec.Command(py, script, "verify", zoneFile, ours).Output()
	if err != nil || strings.TrimSpace(string(out)) != "[[true]]" {
		t.Errorf("dkimpy on our lone-CR signature: %s %v", out, err)
	}
}

// opendkim runs "opendkim -t" with a configuration; it prints one line per
// message ("verification ... succeeded") or, in signing mode, the
// DKIM-Signature field it would add.
func opendkim(t *testing.T, bin, dir, conf string, file string) string {
	t.Helper()
	cf := filepath.Join(dir, "opendkim.conf")
	os.WriteFile(cf, []byte("Syslog no\nRequireSafeKeys no\n"+conf), 0o600)
	out, err := exec.Command(bin, "-x", cf, "-t", file).CombinedOutput()
	if err != nil {
		t.Fatalf("opendkim: %v\n%s", err, out)
	}
	return string(out)
}

func TestInteropOpenDKIM(t *testing.T) {
	t.Parallel()
	bin := peertest.Program(t, "opendkim")
	dir := t.TempDir()
	zoneFile, _ := filepath.Abs("testdata/rfc8463/keys.zone")
	msgs := interopMessages(t, true)
	signers := interopSigners(t)
	for name, m := range msgs {
		for _, k := range signers {
			for _, c := range canonPairs {
				// Ours -> OpenDKIM (it reports the first signature only).
				f := filepath.Join(dir, fmt.Sprintf("%s-%s-%s-%s.eml", name, k.sel, c[0], c[1]))
				os.WriteFile(f, signOurs(t, m, k.s(c[0], c[1])), 0o600)
				out := opendkim(t, bin, dir, "Mode v\nTestPublicKeys "+zoneFile+"\n", f)
				if !strings.Contains(out, "s="+k.sel) || !strings.Contains(out, "succeeded") {
					t.Errorf("OpenDKIM on our %s: %s", filepath.Base(f), out)
				}
			}
		}
	}
	// OpenDKIM -> ours. Only relaxed header canonicalization: with simple,
	// the field "opendkim -t" prints is not byte for byte the one it
	// hashed, so neither OpenDKIM itself nor dkimpy verify the reassembled
	// message either.
	for _, k := range signers {
		for _, c := range canonPairs {
			if c[0] == dkim.Simple {
				continue
			}
			conf := fmt.Sprintf("Mode s\nDomain football.example.com\nSelector %s\nKeyFile %s\nSignatureAlgorithm %s\nCanonicalization %s/%s\n", k.sel, k.pem, k.alg, c[0], c[1])
			for name, m := range msgs {
				f := filepath.Join(dir, name+".eml")
				os.WriteFile(f, m, 0o600)
				out := opendkim(t, bin, dir, conf, f)
				_, sig, ok := strings.Cut(out, ":\n")
				if !ok || !strings.HasPrefix(sig, "DKIM-Signature:") {
					t.Fatalf("OpenDKIM signing output: %q", out)
				}
				signed := append(toCRLF([]byte(sig)), m...)
				res := verifyOurs(t, signed)
				if len(res) != 1 || res[0].Status != dkim.Pass {
					t.Errorf("we do not verify OpenDKIM's %s %s/%s %s: %+v", k.sel, c[0], c[1], name, res)
				}
			}
		}
	}
}
