package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const td = "../../dkim/testdata/"

func zone(t *testing.T) *dnstest.Zone {
	z := dnstest.NewZone()
	b, err := os.ReadFile(td + "rfc8463/keys.zone")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		n, v, _ := strings.Cut(l, " ")
		z.AddTXT(n+".", v)
	}
	return z
}

func TestSignTwoSignatures(t *testing.T) {
	t.Parallel()
	msg, _ := os.ReadFile(td + "rfc8463/a3-unsigned.eml")
	var out, errb bytes.Buffer
	code := run([]string{
		"-d", "football.example.com", "-s", "brisbane", "-k", td + "rfc8463/ed25519-private-seed.b64",
		"-d", "football.example.com", "-s", "test", "-k", td + "rfc8463/rsa-private.pem",
		"-c", "simple/relaxed", "-h", "From:To:Subject",
	}, bytes.NewReader(msg), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "DKIM-Signature:"); n != 2 {
		t.Fatalf("%d signatures", n)
	}
	if !strings.Contains(out.String(), "c=simple/relaxed") || !strings.Contains(out.String(), "h=From:To:Subject;") {
		t.Errorf("flags not applied:\n%s", out.String())
	}
	z := zone(t)
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(out.Bytes()), &msgauth.VerifyOptions{
		LookupTXT: func(n string) ([]string, error) { return z.LookupTXT(context.Background(), n) }})
	if err != nil || len(vs) != 2 || vs[0].Err != nil || vs[1].Err != nil {
		t.Errorf("go-msgauth: %v %+v", err, vs)
	}
}

func TestSignUsage(t *testing.T) {
	t.Parallel()
	key := td + "rfc8463/ed25519-private-seed.b64"
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-d", "example.com", "-s", "sel"}, 2},
		{[]string{"-d", "example.com", "-s", "sel", "-k", key, "-d", "example.org"}, 2},
		{[]string{"-d", "example.com", "-s", "sel", "-k", key, "-c", "loose/relaxed"}, 2},
		{[]string{"-d", "example.com", "-s", "sel", "-k", key, "-h", "To:Subject"}, 2},
		{[]string{"-d", "example.com", "-s", "sel", "-k", filepath.Join(t.TempDir(), "missing")}, 1},
		{[]string{"-d", "example.com", "-s", "sel", "-k", td + "rfc8463/keys.zone"}, 1},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, strings.NewReader("From: a@example.com\r\n\r\nhi\r\n"), &out, &errb); code != c.code {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, c.code, errb.String())
		}
	}
	// A header line without a colon is refused with a clear error.
	var out, errb bytes.Buffer
	if code := run([]string{"-d", "example.com", "-s", "sel", "-k", key}, strings.NewReader("From a@example.com\r\n\r\nhi\r\n"), &out, &errb); code != 1 || !strings.Contains(errb.String(), "no colon") {
		t.Errorf("no-colon header: exit %d, %q", code, errb.String())
	}
}
