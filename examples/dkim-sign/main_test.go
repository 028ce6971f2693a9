package main

import (
	"bytes"
	"context"
	"io"
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
		"-c", "simple/relaxed", "-headers", "From:To:Subject",
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
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		args []string
		code int
		want string // in the one line of stderr
	}{
		{[]string{"-d", "example.com", "-s", "sel"}, 2, "-k given 0 times for 1 -d"},
		{[]string{"-d", "example.com", "-s", "sel", "-k", key, "-d", "example.org"}, 2, "-s given 1 times for 2 -d"},
		{[]string{"-s", "sel", "-k", key}, 2, "-d is required"},
		{[]string{"-d", "example.com", "-s", "sel", "-k", key, "-c", "loose/relaxed"}, 2, `-c "loose/relaxed"`},
		{[]string{"-d", "example.com", "-s", "sel", "-k", key, "-headers", "To:Subject"}, 2, "-headers: syntax error: Headers must include From"},
		// Flags are checked before files: the bad -d is named, not the
		// missing key file.
		{[]string{"-d", "exa mple", "-s", "sel", "-k", missing}, 2, "-d: d=: syntax error"},
		// A key file that cannot be read or used is a usage error.
		{[]string{"-d", "example.com", "-s", "sel", "-k", missing}, 2, "-k: open " + missing},
		{[]string{"-d", "example.com", "-s", "sel", "-k", td + "rfc8463/keys.zone"}, 2, "-k ../../dkim/testdata/rfc8463/keys.zone: syntax error"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader("From: a@example.com\r\n\r\nhi\r\n"), &out, &errb)
		if code != c.code || !strings.HasPrefix(errb.String(), "dkim-sign: ") || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, want %d; stderr %q, want one line with %q", c.args, code, c.code, errb.String(), c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q", c.args, out.String())
		}
	}
}

// A message the signatures could not cover as RFC 6376 wants is refused,
// with exit 1: the input is at fault, not a flag.
func TestSignRefusesMessage(t *testing.T) {
	t.Parallel()
	key := td + "rfc8463/ed25519-private-seed.b64"
	for _, c := range []struct {
		msg, want string
	}{
		{"", "standard input: empty message"},
		{"To: b@example.com\r\nSubject: no from\r\n\r\nhi\r\n", "standard input: no From field"},
		{"\r\nFrom: a@example.com\r\n", "standard input: no From field"},           // a body only
		{"X-From: a@example.com\r\n From: b@example.com\r\n\r\n", "no From field"}, // a continuation line is not a field
		{"From a@example.com\r\n\r\nhi\r\n", "standard input: header line 1 has no colon"},
		{"Subject: x\nFrom a@example.com\n\nhi\n", "header line 2 has no colon"},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"-d", "example.com", "-s", "sel", "-k", key}, strings.NewReader(c.msg), &out, &errb)
		if code != 1 || !strings.HasPrefix(errb.String(), "dkim-sign: ") || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and %q", c.msg, code, out.String(), errb.String(), c.want)
		}
	}
}

// LF input comes out with CRLF line ends throughout, signature lines and
// message lines alike, and the signatures verify over what is written.
func TestSignLF(t *testing.T) {
	t.Parallel()
	msg, err := os.ReadFile(td + "rfc8463/a3-unsigned.eml")
	if err != nil {
		t.Fatal(err)
	}
	crlf := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	crlf = bytes.ReplaceAll(crlf, []byte("\n"), []byte("\r\n"))
	lf := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n"))
	mixed := bytes.Replace(crlf, []byte("\r\n"), []byte("\n"), 3)
	args := []string{"-d", "football.example.com", "-s", "brisbane", "-k", td + "rfc8463/ed25519-private-seed.b64"}
	z := zone(t)
	for name, in := range map[string][]byte{"crlf": crlf, "lf": lf, "mixed": mixed} {
		var out, errb bytes.Buffer
		// A reader that is not a bytes.Reader, and that returns a few
		// bytes at a time, so that CR and LF arrive in different reads.
		if code := run(args, iotestHalf{bytes.NewReader(in)}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errb.String())
		}
		signed := out.Bytes()
		if n := bytes.Count(signed, []byte("\n")); n != bytes.Count(signed, []byte("\r\n")) {
			t.Errorf("%s: %d LF, %d CRLF in\n%q", name, n, bytes.Count(signed, []byte("\r\n")), signed)
		}
		i := bytes.Index(signed, []byte("\r\nFrom: ")) + 2
		if !bytes.HasPrefix(signed, []byte("DKIM-Signature:")) || i < 2 || string(signed[i:]) != string(crlf) {
			t.Errorf("%s: the message written is not the CRLF message:\n%q", name, signed)
		}
		vs, err := msgauth.VerifyWithOptions(bytes.NewReader(signed), &msgauth.VerifyOptions{
			LookupTXT: func(n string) ([]string, error) { return z.LookupTXT(context.Background(), n) }})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Errorf("%s: go-msgauth: %v %+v", name, err, vs)
		}
	}
}

// iotestHalf reads at most 7 bytes at a time.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:min(len(p), 7)]) }
