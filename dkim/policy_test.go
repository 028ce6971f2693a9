package dkim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const rfc8463Ed = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

func zoneWith(records map[string]string) *dnstest.Zone {
	z := dnstest.NewZone()
	for n, v := range records {
		z.AddTXT(n+".", v)
	}
	return z
}

func verifyWith(t *testing.T, msg []byte, r dkim.Resolver, o *dkim.VerifyOptions) dkim.Results {
	t.Helper()
	res, err := mustVerifier(t, r, o).Verify(context.Background(), bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// edSigner signs for football.example.com with selector brisbane and the
// Ed25519 key of RFC 8463.
func edSigner(t testing.TB, o dkim.SignOptions) *dkim.Signer {
	t.Helper()
	return edSignerFor(t, "football.example.com", "brisbane", o)
}

func edSignerFor(t testing.TB, domain, selector string, o dkim.SignOptions) *dkim.Signer {
	t.Helper()
	key, err := dkim.ParsePrivateKey(readFile(t, "testdata/rfc8463/ed25519-private-seed.b64"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := dkim.NewSigner(domain, selector, key, &o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var unsignedMsg = []byte("From: Joe <joe@football.example.com>\r\nTo: Suzie <suzie@example.net>\r\nSubject: dinner\r\n\r\nHi.\r\n")

// TestKeyRecordPolicies checks the key record tags of RFC 6376 §3.6.1 as
// the verifier applies them (§6.1.2).
func TestKeyRecordPolicies(t *testing.T) {
	t.Parallel()
	name := "brisbane._domainkey.football.example.com"
	signed := signOurs(t, unsignedMsg, edSigner(t, dkim.SignOptions{Identifier: "joe@sub.football.example.com"}))
	p := rfc8463Ed[strings.Index(rfc8463Ed, "p="):]
	for _, c := range []struct {
		record string
		want   dkim.Status
		reason string
	}{
		{rfc8463Ed, dkim.Pass, ""},
		{"k=ed25519; " + p, dkim.Pass, ""}, // v= is optional
		{"v=DKIM1; k=ed25519; h=sha256; s=email; " + p, dkim.Pass, ""},
		{"v=DKIM1; k=ed25519; h=sha1; " + p, dkim.Fail, "does not allow sha256"},
		{"v=DKIM1; k=ed25519; s=tlsrpt; " + p, dkim.PermError, "not for email"},
		{"v=DKIM1; k=ed25519; p=", dkim.Fail, "revoked"},
		{"v=DKIM1; k=rsa; " + p, dkim.PermError, "neither"},
		{"k=ed25519; v=DKIM1; " + p, dkim.PermError, "must be first"},
		{"v=DKIM2; k=ed25519; " + p, dkim.PermError, "DKIM1"},
		{"v=DKIM1; k=ed25519; t=s; " + p, dkim.PermError, "t=s"},                                             // i= is a subdomain
		{"v=DKIM1; k=ed25519; t=y; p=22qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", dkim.Neutral, "testing"}, // t=y turns fail into neutral
		{"v=DKIM1; k=ed25519; t=y; " + p, dkim.Pass, ""},
		{"v=DKIM1; k=ed25519", dkim.PermError, "no p="},
	} {
		res := verifyWith(t, signed, zoneWith(map[string]string{name: c.record}), nil)
		if len(res) != 1 || res[0].Status != c.want || !strings.Contains(reason(res[0]), c.reason) {
			t.Errorf("%q: %s (%v), want %s with %q", c.record, res[0].Status, res[0].Err, c.want, c.reason)
		}
	}
}

// TestDkimpyBadRecords: dkimpy's malformed key records are refused.
func TestDkimpyBadRecords(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"badk.txt", "badversion.txt", "test_bad.txt"} {
		if _, err := dkim.ParseKeyRecord(strings.TrimSpace(string(readFile(t, "testdata/dkimpy/"+f)))); err == nil {
			t.Errorf("%s parses", f)
		}
	}
	if _, err := dkim.ParseKeyRecord(strings.TrimSpace(string(readFile(t, "testdata/dkimpy/test.txt")))); err != nil {
		t.Errorf("test.txt: %v", err)
	}
}

func TestSignatureChecks(t *testing.T) {
	t.Parallel()
	zone := zoneWith(map[string]string{"brisbane._domainkey.football.example.com": rfc8463Ed})
	sig := func(tags string) []byte {
		return []byte("DKIM-Signature: " + tags + "\r\n" + string(unsignedMsg))
	}
	base := "v=1; a=ed25519-sha256; d=football.example.com; s=brisbane; bh=AA==; b=AA==; "
	for _, c := range []struct {
		msg    []byte
		reason string
	}{
		{sig(base + "h=to:subject"), "From is not signed"},
		{sig(base + "h=from; i=joe@example.com"), "not within"},
		{sig(strings.Replace(base, "v=1", "v=2", 1) + "h=from"), "v="},
		{sig(strings.Replace(base, "ed25519-sha256", "rsa-md5", 1) + "h=from"), "unknown algorithm"},
		{sig(strings.Replace(base, "ed25519-sha256", "rsa-sha1", 1) + "h=from"), "RFC 8301"},
		{sig(base + "h=from; q=http"), "dns/txt"},
		{sig(base + "h=from; x=5; t=10"), "before t="},
		{sig(base + "h=from; x=5"), "expired"},
		{sig(base + "h=from; l=-1"), "l="},
		{sig(base + "h=from; h=to"), "duplicate"},
		{sig("v=1; a=ed25519-sha256; d=football.example.com; h=from; bh=AA==; b=AA=="), "no s="},
		{sig(base + "h=from; c=odd/simple"), "canonicalization"},
		{sig(base + "h=from; d2=x; =y"), "bad tag name"},
		{sig(base + "h=from; novalue"), "no \"=\""},
	} {
		res := verifyWith(t, c.msg, zone, nil)
		if len(res) != 1 || res[0].Status != dkim.PermError || !strings.Contains(reason(res[0]), c.reason) {
			t.Errorf("%q: %+v, want permerror with %q", c.msg[:80], res, c.reason)
		}
	}
	if q := zone.Queries(); len(q) != 0 {
		t.Errorf("DNS queried for unusable signatures: %v", q)
	}
}

func TestSHA1(t *testing.T) {
	t.Parallel()
	msg := readFile(t, "testdata/local/rsa-sha1-dkimpy.eml")
	zone := zoneFromLines(t, string(readFile(t, "testdata/rfc8463/keys.zone")))
	if res := verifyWith(t, msg, zone, nil); res[0].Status != dkim.PermError {
		t.Errorf("rsa-sha1 by default: %+v", res)
	}
	if res := verifyWith(t, msg, zone, &dkim.VerifyOptions{AllowSHA1: true}); res[0].Status != dkim.Pass {
		t.Errorf("rsa-sha1 with AllowSHA1: %+v", res)
	}
	tampered := bytes.Replace(msg, []byte("hungry"), []byte("thirsty"), 1)
	if res := verifyWith(t, tampered, zone, &dkim.VerifyOptions{AllowSHA1: true}); res[0].Status != dkim.Fail {
		t.Errorf("tampered rsa-sha1 with AllowSHA1: %+v", res)
	}
}

// TestBodyLength: the l= policy (RFC 6376 §8.2) on dkimpy-made signatures.
func TestBodyLength(t *testing.T) {
	t.Parallel()
	zone := zoneFromLines(t, string(readFile(t, "testdata/rfc8463/keys.zone")))
	exact := readFile(t, "testdata/local/length-dkimpy.eml")
	appended := readFile(t, "testdata/local/length-appended-dkimpy.eml")
	if res := verifyWith(t, exact, zone, nil); res[0].Status != dkim.Pass || res[0].BodyLength != 54 {
		t.Errorf("l= covering the body: %+v", res)
	}
	res := verifyWith(t, appended, zone, nil)
	if res[0].Status != dkim.Policy || !strings.Contains(reason(res[0]), "l=54") {
		t.Errorf("appended, default policy: %+v", res)
	}
	res = verifyWith(t, appended, zone, &dkim.VerifyOptions{BodyLength: dkim.LengthAllow})
	if res[0].Status != dkim.Pass || res[0].BodySize <= res[0].BodyLength {
		t.Errorf("appended, LengthAllow: %+v", res)
	}
	short := bytes.Replace(exact, []byte("Joe."), nil, 1)
	if res := verifyWith(t, short, zone, nil); res[0].Status != dkim.Fail {
		t.Errorf("body shorter than l=: %+v", res)
	}
	// Our own l= is the full canonical body and verifies.
	ours := signOurs(t, unsignedMsg, edSigner(t, dkim.SignOptions{BodyLength: true}))
	if !strings.Contains(string(ours), "l=5;") {
		t.Errorf("l= of \"Hi.\\r\\n\" is 5:\n%s", ours)
	}
	if res := verifyWith(t, ours, zone, nil); res[0].Status != dkim.Pass {
		t.Errorf("our l=: %+v", res)
	}
}

func TestKeySizeAndDNS(t *testing.T) {
	t.Parallel()
	msg := readFile(t, "testdata/rfc8463/a3-signed.eml")
	zone := zoneFromLines(t, string(readFile(t, "testdata/rfc8463/keys.zone")))
	res := verifyWith(t, msg, zone, &dkim.VerifyOptions{MinRSABits: 2048})
	if res[0].Status != dkim.Pass || res[1].Status != dkim.Policy || !strings.Contains(reason(res[1]), "1024 bits") {
		t.Errorf("MinRSABits 2048: %+v", res)
	}
	zone.Fail("brisbane._domainkey.football.example.com.", dns.TypeTXT, dnstest.ServFail)
	res = verifyWith(t, msg, zone, nil)
	if res[0].Status != dkim.TempError || !errors.Is(res[0].Err, dkim.ErrDNS) || res[1].Status != dkim.Pass {
		t.Errorf("SERVFAIL: %+v", res)
	}
	res = verifyWith(t, msg, dnstest.NewZone(), nil)
	if res[0].Status != dkim.PermError || !errors.Is(res[0].Err, dkim.ErrNoRecord) {
		t.Errorf("no key: %+v", res)
	}
	// A 512-bit key in the record: refused (RFC 8301 §3.2).
	small := zoneWith(map[string]string{"brisbane._domainkey.football.example.com": "v=DKIM1; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBALEBWy7RXOuDpggzftbmTaGyYFfpCcBvNrrECEMPbEem60b7BtljahRNR+hkmZJ7GXHyh1bpwQKAiPGPTEvAx7MCAwEAAQ=="})
	sm := []byte(strings.Replace(string(msg), "a=ed25519-sha256", "a=rsa-sha256", 1))
	if res := verifyWith(t, sm, small, nil); res[0].Status != dkim.PermError {
		t.Errorf("512-bit key: %+v", res)
	}
}

func TestMaxSignatures(t *testing.T) {
	t.Parallel()
	zone := zoneFromLines(t, string(readFile(t, "testdata/rfc8463/keys.zone")))
	var signers []*dkim.Signer
	for range 7 {
		signers = append(signers, edSigner(t, dkim.SignOptions{}))
	}
	msg := signOurs(t, unsignedMsg, signers...)
	res := verifyWith(t, msg, zone, nil)
	if len(res) != 7 {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		want := dkim.Pass
		if i >= 5 {
			want = dkim.Policy
		}
		if r.Status != want {
			t.Errorf("signature %d: %s (%v)", i, r.Status, r.Err)
		}
	}
	if n := len(zone.Queries()); n != 5 {
		t.Errorf("%d DNS queries, want 5", n)
	}
	if res := verifyWith(t, msg, zone, &dkim.VerifyOptions{MaxSignatures: 7}); res[6].Status != dkim.Pass {
		t.Errorf("cap 7: %+v", res[6])
	}
}

// TestSigningWriterStreams: byte-by-byte writes give the same signatures as
// Sign, and two signers with the same canonicalization share one body hash.
func TestSigningWriterStreams(t *testing.T) {
	t.Parallel()
	at := func() time.Time { return time.Unix(1700000000, 0) }
	a := edSigner(t, dkim.SignOptions{Now: at})
	b := edSignerFor(t, "sub.football.example.com", "brisbane", dkim.SignOptions{Now: at, BodyCanonicalization: dkim.Simple})
	msg := readFile(t, "testdata/rfc8463/a3-unsigned.eml")
	w := dkim.NewSigningWriter(a, b)
	for i := range msg {
		w.Write(msg[i : i+1])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	whole := signOurs(t, msg, a, b)
	if !bytes.Equal([]byte(w.Header()), whole[:len(whole)-len(msg)]) {
		t.Errorf("streamed:\n%s\nwhole:\n%s", w.Header(), whole)
	}
	if len(w.Signatures()) != 2 {
		t.Fatal(w.Signatures())
	}
	// bh= of RFC 8463 A.3 for relaxed, and sha256 of the simple body.
	if got := tagValue(t, w.Signatures()[0], "bh"); got != "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=" {
		t.Errorf("relaxed bh=%s", got)
	}
}

func TestSignerOptions(t *testing.T) {
	t.Parallel()
	ed, _ := dkim.ParsePrivateKey(readFile(t, "testdata/rfc8463/ed25519-private-seed.b64"))
	// A 512-bit key may load, but no Signer uses it (RFC 8301 §3.2).
	if k, err := dkim.ParsePrivateKey(readFile(t, "testdata/local/rsa512-private.pem")); err == nil {
		if _, err := dkim.NewSigner("example.com", "s", k, nil); !errors.Is(err, dkim.ErrKey) {
			t.Errorf("512-bit key: %v", err)
		}
	}
	rk, _ := dkim.ParsePrivateKey(readFile(t, "testdata/rfc8463/rsa-private.pem"))
	if rk.(*rsa.PrivateKey).N.BitLen() != 1024 {
		t.Fatal("rfc8463 RSA key is 1024 bits")
	}
	for _, c := range []struct {
		domain, selector string
		key              crypto.Signer
		o                dkim.SignOptions
	}{
		{"", "s", ed, dkim.SignOptions{}},
		{"example.com", "", ed, dkim.SignOptions{}},
		{"exa mple.com", "s", ed, dkim.SignOptions{}},
		{"example.com", "s", nil, dkim.SignOptions{}},
		{"example.com", "s", ed, dkim.SignOptions{Headers: []string{"To"}}},
		{"example.com", "s", ed, dkim.SignOptions{Identifier: "joe@example.org"}},
		{"example.com", "s", ed, dkim.SignOptions{HeaderCanonicalization: "loose"}},
	} {
		if _, err := dkim.NewSigner(c.domain, c.selector, c.key, &c.o); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// Default: relaxed/relaxed, oversigned default headers, fixed tag order.
	s, _ := dkim.NewSigner("example.com", "s", rk, &dkim.SignOptions{Expiration: time.Hour, Identifier: "@mail.example.com", Now: func() time.Time { return time.Unix(1000, 0) }})
	out := string(signOurs(t, []byte("From: a@example.com\r\nList-Foo: x\r\nTo: b@example.org\r\nTo: c@example.org\r\n\r\nbody\r\n"), s))
	field := strings.Join(strings.Fields(out[:strings.Index(out, "\r\nFrom:")]), "")
	for _, want := range []string{
		"DKIM-Signature:v=1;a=rsa-sha256;c=relaxed/relaxed;d=example.com;s=s;t=1000;x=4600;i=@mail.example.com;h=From:From:To:To:To:Cc:",
		":List-Foo:List-Foo;bh=",
	} {
		if !strings.Contains(field, want) {
			t.Errorf("signature %s\nlacks %s", field, want)
		}
	}
}

// TestSignerHidesKey: printing a Signer shows no key material.
func TestSignerHidesKey(t *testing.T) {
	t.Parallel()
	s := edSigner(t, dkim.SignOptions{})
	seed := strings.TrimSpace(string(readFile(t, "testdata/rfc8463/ed25519-private-seed.b64")))
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if out != "dkim.Signer{d=football.example.com s=brisbane a=ed25519-sha256}" || strings.Contains(out, seed) {
			t.Errorf("printed as %q", out)
		}
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	// PKCS#1, PKCS#8 and seed forms of the RFC 8463 keys.
	for _, f := range []string{"rfc8463/rsa-private.pem", "rfc8463/ed25519-private-pkcs8.pem", "rfc8463/ed25519-private-seed.b64", "rfc6376/appendix-c-private.pem"} {
		if _, err := dkim.ParsePrivateKey(readFile(t, "testdata/"+f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	a, _ := dkim.ParsePrivateKey(readFile(t, "testdata/rfc8463/ed25519-private-pkcs8.pem"))
	b, _ := dkim.ParsePrivateKey(readFile(t, "testdata/rfc8463/ed25519-private-seed.b64"))
	if !bytes.Equal(a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey)) {
		t.Error("PKCS#8 and seed forms differ")
	}
	for _, bad := range []string{"", "not a key", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", "AAAA"} {
		if _, err := dkim.ParsePrivateKey([]byte(bad)); err == nil {
			t.Errorf("%q loads", bad)
		}
	}
	rk, err := dkim.GenerateKey("rsa4096", nil)
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := dkim.KeyRecordText(rk, &dkim.RecordOptions{Testing: true})
	zoneText := dnsauth.QuoteTXT(txt)
	rr, err := dns.NewRR("k._domainkey.example.com. TXT " + zoneText)
	if err != nil {
		t.Fatal(err)
	}
	parts := rr.(*dns.TXT).Txt
	if len(parts) < 3 || strings.Join(parts, "") != txt {
		t.Fatalf("QuoteTXT: %d parts", len(parts))
	}
	for _, p := range parts {
		if len(p) > 255 {
			t.Errorf("part of %d octets", len(p))
		}
	}
	rec, err := dkim.ParseKeyRecord(txt)
	if err != nil || !rec.Testing() || rec.PublicKey.(*rsa.PublicKey).N.BitLen() != 4096 {
		t.Errorf("round trip: %+v %v", rec, err)
	}
	pemBytes, _ := dkim.MarshalPrivateKey(rk)
	if k, err := dkim.ParsePrivateKey(pemBytes); err != nil || !k.(*rsa.PrivateKey).Equal(rk) {
		t.Errorf("PEM round trip: %v", err)
	}
	if _, err := dkim.GenerateKey("rsa1024", nil); !errors.Is(err, dkim.ErrKey) {
		t.Errorf("rsa1024: %v", err)
	}
	if n := dkim.RecordName("s1.2026", "example.com."); n != "s1.2026._domainkey.example.com" {
		t.Error(n)
	}
}

// TestBadInput: malformed or huge headers give errors or results quickly.
func TestBadInput(t *testing.T) {
	t.Parallel()
	zone := zoneFromLines(t, string(readFile(t, "testdata/rfc8463/keys.zone")))
	signed := readFile(t, "testdata/rfc8463/a3-signed.eml")
	var many strings.Builder
	for i := range 10000 {
		many.WriteString("X-Field-" + strings.Repeat("a", i%7) + ": value\r\n")
	}
	folded := "Subject: start" + strings.Repeat("\r\n folded text", (1<<20)/14) + "\r\n"
	for _, c := range []struct {
		name string
		msg  string
		err  error
	}{
		{"no colon", "From joe@example.com\r\n\r\nbody\r\n", dkim.ErrSyntax},
		{"starts folded", " folded\r\nFrom: a\r\n\r\n", dkim.ErrSyntax},
		{"1 MiB folded header", folded + string(signed), dkim.ErrTooLarge},
		{"10,000 headers", many.String() + string(signed), nil},
		{"no body", "From: a@example.com\r\nSubject: x", nil},
		{"empty", "", nil},
	} {
		start := time.Now()
		res, err := mustVerifier(t, zone, nil).Verify(context.Background(), strings.NewReader(c.msg))
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
		}
		if c.name == "10,000 headers" && (len(res) != 2 || res[0].Status != dkim.Pass) {
			t.Errorf("%s: %+v", c.name, res)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", c.name, d)
		}
		w := dkim.NewSigningWriter(edSigner(t, dkim.SignOptions{}))
		_, werr := io.Copy(w, strings.NewReader(c.msg))
		if cerr := w.Close(); c.err != nil && !errors.Is(errors.Join(werr, cerr), c.err) {
			t.Errorf("%s: signing: %v %v", c.name, werr, cerr)
		}
	}
	// A larger cap admits the folded header.
	res, err := mustVerifier(t, zone, &dkim.VerifyOptions{MaxHeaderBytes: 4 << 20}).Verify(context.Background(), strings.NewReader(folded+string(signed)))
	if err != nil || len(res) != 2 {
		t.Errorf("folded header with a 4 MiB cap: %v %v", res, err)
	}
}
