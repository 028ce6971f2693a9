package dkim_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"testing"

	"github.com/smarthost-go/smarthost/dkim"
)

func FuzzKeyRecord(f *testing.F) {
	for _, p := range []string{
		"testdata/rfc8463/keys.zone", "testdata/go-msgauth/keys.zone", "testdata/dkimpy/badk.txt",
		"testdata/dkimpy/badversion.txt", "testdata/dkimpy/test_bad.txt", "testdata/negative/revoked-ed25519-key.zone",
	} {
		for _, l := range bytes.Split(readFile(f, p), []byte("\n")) {
			if _, v, ok := bytes.Cut(l, []byte(" ")); ok && bytes.Contains(v, []byte("p=")) {
				f.Add(string(v))
			} else if len(l) > 0 {
				f.Add(string(l))
			}
		}
	}
	f.Add("v=DKIM1; k=rsa; h=sha1:sha256; s=email; t=y:s; n=note; p=")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := dkim.ParseKeyRecord(s)
		if err != nil {
			if k != nil {
				t.Fatal("record and error")
			}
			return
		}
		switch pub := k.PublicKey.(type) {
		case nil:
			if !k.Revoked {
				t.Fatal("no key and not revoked")
			}
		case *rsa.PublicKey:
			if k.KeyType != "rsa" || pub.N.BitLen() > 8192 {
				t.Fatalf("rsa key with k=%s, %d bits", k.KeyType, pub.N.BitLen())
			}
		case ed25519.PublicKey:
			if k.KeyType != "ed25519" || len(pub) != ed25519.PublicKeySize {
				t.Fatal("bad ed25519 key")
			}
		default:
			t.Fatalf("key of type %T", pub)
		}
	})
}

func FuzzVerify(f *testing.F) {
	for _, p := range []string{
		"testdata/rfc8463/a3-signed.eml", "testdata/dkimpy/rfc6376.signed.msg", "testdata/negative/body-altered.eml",
		"testdata/go-msgauth/sign-ed25519-expected-crlf.eml", "testdata/rfc6376/a2-signed.eml",
	} {
		f.Add(readFile(f, p))
	}
	f.Add([]byte("DKIM-Signature: v=1; a=ed25519-sha256; d=football.example.com; s=brisbane; h=from; bh=; b=AA==\r\nFrom: x\r\n\r\n"))
	f.Add([]byte("no colon\r\n\r\n"))
	zone := zoneFromLines(f, string(readFile(f, "testdata/rfc8463/keys.zone")))
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := mustVerifier(t, zone, &dkim.VerifyOptions{MaxHeaderBytes: 64 << 10, Now: fixedClock(1700000000)}).Verify(context.Background(), bytes.NewReader(msg))
		if err != nil {
			if res != nil {
				t.Fatal("results and error")
			}
			return
		}
		if len(res) > bytes.Count(msg, []byte(":")) {
			t.Fatalf("%d results", len(res))
		}
		for _, r := range res {
			switch r.Status {
			case dkim.Pass, dkim.Fail, dkim.Neutral, dkim.TempError, dkim.PermError, dkim.Policy:
			default:
				t.Fatalf("status %q", r.Status)
			}
			if (r.Err == nil) != (r.Status == dkim.Pass) {
				t.Fatalf("status %s with err %v", r.Status, r.Err)
			}
		}
	})
}
