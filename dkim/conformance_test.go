package dkim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
)

type manifestEntry struct {
	Message  string            `json:"message"`
	Zone     string            `json:"zone"`
	Note     string            `json:"note"`
	Dkimpy   [][]any           `json:"dkimpy_1_1_4"`
	OpenDKIM [][]string        `json:"opendkim_2_11_0"`
	Mailauth [][]string        `json:"mailauth_4_9_5"`
	VerifyAt string            `json:"verify_at_utc"`
	Extra    map[string]string `json:"-"`
}

// Where the three verifiers of the conformance data disagree, this package
// follows the RFC text; each choice is pinned here.
var rfcChoices = map[string]map[string]dkim.Status{
	// RFC 6376 §3.6.1 defines p= for k=rsa as "an ASN.1 DER-encoded
	// RSAPublicKey": a bare PKCS#1 key is valid, as dkimpy finds (OpenDKIM
	// says permerror, mailauth neutral).
	"go-msgauth/raw-rsa-pkcs1-signed.eml|go-msgauth/keys.zone":     {"newengland": dkim.Pass},
	"stalwart-mail-auth/002.txt|(embedded at top of message file)": {"newengland": dkim.Pass},
	// RFC 6376 §6.1.2 step 6: a key whose h= does not list the a= hash is
	// refused (PERMFAIL, inappropriate hash algorithm), as OpenDKIM does;
	// dkimpy and mailauth pass it.
	"rfc8463/a3-signed.eml|negative/rsa-key-h-sha1-only.zone": {"test": dkim.Fail},
}

func TestConformance(t *testing.T) {
	t.Parallel()
	var entries []manifestEntry
	if err := json.Unmarshal(readFile(t, "testdata/MANIFEST.json"), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) < 20 {
		t.Fatalf("only %d manifest entries", len(entries))
	}
	for _, e := range entries {
		t.Run(e.Message+"|"+e.Zone, func(t *testing.T) {
			t.Parallel()
			msg := readFile(t, "testdata/"+e.Message)
			var zoneText string
			if strings.HasPrefix(e.Zone, "(embedded") {
				z, m, ok := bytes.Cut(msg, []byte("\n\n"))
				if !ok {
					t.Fatal("no blank line after the zone lines")
				}
				zoneText, msg = string(z), toCRLF(m)
			} else {
				zoneText = string(readFile(t, "testdata/"+e.Zone))
			}
			opts := &dkim.VerifyOptions{}
			if e.VerifyAt != "" {
				at, err := time.Parse(time.DateTime, e.VerifyAt)
				if err != nil {
					t.Fatal(err)
				}
				opts.Now = func() time.Time { return at }
			}
			res, err := mustVerifier(t, zoneFromLines(t, zoneText), opts).Verify(context.Background(), bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(e.Dkimpy) {
				t.Fatalf("%d results, manifest lists %d signatures", len(res), len(e.Dkimpy))
			}
			choice := rfcChoices[e.Message+"|"+e.Zone]
			for i, r := range res {
				sel := e.Dkimpy[i][0].(string)
				if r.Selector != sel {
					t.Errorf("signature %d: s=%q, manifest %q", i, r.Selector, sel)
				}
				want := dkim.Fail
				if e.Dkimpy[i][2] == true {
					want = dkim.Pass
				}
				if st, ok := choice[sel]; ok {
					want = st
				}
				if r.Status != want {
					t.Errorf("signature %d (s=%s): %s (%v), want %s; opendkim said %v", i, sel, r.Status, r.Err, want, e.OpenDKIM[i])
				}
				if (r.Err == nil) != (r.Status == dkim.Pass) {
					t.Errorf("signature %d: status %s with Err %v", i, r.Status, r.Err)
				}
			}
		})
	}
}

// TestExpiredStalwart005 checks x= with the clock seam: the signature of
// stalwart 005 passes at its verification time and is expired a day later.
func TestExpiredStalwart005(t *testing.T) {
	t.Parallel()
	z, m, _ := bytes.Cut(readFile(t, "testdata/stalwart-mail-auth/005.txt"), []byte("\n\n"))
	zone := zoneFromLines(t, string(z))
	for _, c := range []struct {
		at   int64
		want dkim.Status
	}{{1667843664, dkim.Pass}, {1667930064, dkim.Pass}, {1667930065, dkim.PermError}, {time.Now().Unix(), dkim.PermError}} {
		res, err := mustVerifier(t, zone, &dkim.VerifyOptions{Now: fixedClock(c.at)}).Verify(context.Background(), bytes.NewReader(toCRLF(m)))
		if err != nil || len(res) != 1 {
			t.Fatal(res, err)
		}
		if res[0].Status != c.want {
			t.Errorf("at %d: %s (%v), want %s", c.at, res[0].Status, res[0].Err, c.want)
		}
		if c.want != dkim.Pass && !strings.Contains(reason(res[0]), "expired") {
			t.Errorf("at %d: reason %q does not say expired", c.at, reason(res[0]))
		}
	}
}

// TestGoMsgauthVectors re-signs the unsigned go-msgauth message with the
// same key, tags and canonicalization: bh= must equal the one of the
// expected output (any correct signer gives the same body hash), and both
// signed files must verify.
func TestGoMsgauthVectors(t *testing.T) {
	t.Parallel()
	unsigned := readFile(t, "testdata/go-msgauth/unsigned-crlf.eml")
	zone := zoneFromLines(t, string(readFile(t, "testdata/go-msgauth/keys.zone")))
	for _, c := range []struct{ file, keyFile, domain string }{
		{"sign-rsa-expected-crlf.eml", "testdata/rfc6376/appendix-c-private.pem", "example.org"},
		{"sign-ed25519-expected-crlf.eml", "testdata/rfc8463/ed25519-private-seed.b64", "football.example.com"},
	} {
		want := readFile(t, "testdata/go-msgauth/"+c.file)
		key, err := dkim.ParsePrivateKey(readFile(t, c.keyFile))
		if err != nil {
			t.Fatal(err)
		}
		s, err := dkim.NewSigner(c.domain, "brisbane", key, &dkim.SignOptions{HeaderCanonicalization: dkim.Simple, BodyCanonicalization: dkim.Simple, Headers: []string{"From", "To", "Subject", "Date", "Message-ID"}, Now: fixedClock(424242)})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := dkim.Sign(context.Background(), &out, bytes.NewReader(unsigned), s); err != nil {
			t.Fatal(err)
		}
		if got, w := tagValue(t, out.String(), "bh"), tagValue(t, string(want), "bh"); got != w {
			t.Errorf("%s: bh=%s, go-msgauth bh=%s", c.file, got, w)
		}
		for name, msg := range map[string][]byte{"theirs": want, "ours": out.Bytes()} {
			res, err := mustVerifier(t, zone, nil).Verify(context.Background(), bytes.NewReader(msg))
			if err != nil || len(res) != 1 || res[0].Status != dkim.Pass {
				t.Errorf("%s %s: %+v %v", c.file, name, res, err)
			}
		}
		if !bytes.HasSuffix(out.Bytes(), unsigned) {
			t.Errorf("%s: signed output does not end with the message", c.file)
		}
	}
}

// tagValue returns a tag of the first DKIM-Signature field, FWS removed.
func tagValue(t testing.TB, msg, name string) string {
	t.Helper()
	i := strings.Index(msg, "DKIM-Signature:")
	if i < 0 {
		t.Fatal("no DKIM-Signature")
	}
	f := msg[i+len("DKIM-Signature:"):]
	// the field ends at a line break not followed by WSP
	end := 0
	for {
		k := strings.Index(f[end:], "\n")
		if k < 0 {
			end = len(f)
			break
		}
		end += k + 1
		if end >= len(f) || (f[end] != ' ' && f[end] != '\t') {
			break
		}
	}
	for _, spec := range strings.Split(f[:end], ";") {
		n, v, _ := strings.Cut(spec, "=")
		if strings.TrimSpace(n) == name {
			return strings.Join(strings.Fields(v), "")
		}
	}
	t.Fatalf("no %s= in %q", name, f[:end])
	return ""
}
