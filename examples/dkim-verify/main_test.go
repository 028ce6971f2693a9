package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const td = "../../dkim/testdata/"

// zoneText turns "name TXT-value" lines into zone-file text.
func zoneText(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		n, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		fmt.Fprintf(&out, "%s. 300 IN TXT %q\n", n, v)
	}
	return out.String()
}

func writeZone(t *testing.T, text string) string {
	f := filepath.Join(t.TempDir(), "keys.zone")
	os.WriteFile(f, []byte(text), 0o600)
	return f
}

func TestVerifyZone(t *testing.T) {
	t.Parallel()
	zf := writeZone(t, zoneText(t, td+"rfc8463/keys.zone"))
	msg, _ := os.ReadFile(td + "rfc8463/a3-signed.eml")
	var out, errb bytes.Buffer
	if code := run([]string{"-zone", zf}, bytes.NewReader(msg), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	want := "d=football.example.com s=brisbane result=pass reason=\n" +
		"d=football.example.com s=test result=pass reason=\n" +
		// header.b values: the first 8 characters of each b= in RFC 8463 Appendix A.3.
		"Authentication-Results: localhost; dkim=pass header.d=football.example.com" +
		" header.i=@football.example.com header.s=brisbane header.a=ed25519-sha256 header.b=/gCrinpc;" +
		" dkim=pass header.d=football.example.com header.i=@football.example.com header.s=test header.a=rsa-sha256 header.b=F45dVWDf\n"
	if out.String() != want {
		t.Errorf("output:\n%q\nwant\n%q", out.String(), want)
	}

	bad, _ := os.ReadFile(td + "negative/body-altered.eml")
	out.Reset()
	if code := run([]string{"-zone", zf}, bytes.NewReader(bad), &out, &errb); code != 1 || !strings.Contains(out.String(), "result=fail reason=body hash did not verify") {
		t.Errorf("tampered: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-zone", zf}, strings.NewReader("From: a@example.com\r\n\r\nunsigned\r\n"), &out, &errb); code != 1 || !strings.Contains(out.String(), "dkim=none") {
		t.Errorf("unsigned: exit %d\n%s", code, out.String())
	}
}

func TestVerifyTime(t *testing.T) {
	t.Parallel()
	b, _ := os.ReadFile(td + "stalwart-mail-auth/005.txt")
	z, m, _ := strings.Cut(string(b), "\n\n")
	zf := writeZone(t, zoneText(t, writeZone(t, z)))
	msg := strings.ReplaceAll(m, "\n", "\r\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-zone", zf, "-time", "1667843664"}, 0, "result=pass"},
		{[]string{"-zone", zf}, 1, "result=permerror reason=signature expired"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, strings.NewReader(msg), &out, &errb); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: exit %d\n%s%s", c.args, code, out.String(), errb.String())
		}
	}
}

func TestVerifyDNS(t *testing.T) {
	t.Parallel()
	z, err := dnstest.ParseZone(zoneText(t, td+"rfc8463/keys.zone"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dnstest.NewServer(z)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	msg, _ := os.ReadFile(td + "rfc8463/a3-signed.eml")
	var out, errb bytes.Buffer
	if code := run([]string{"-dns", srv.Addr}, bytes.NewReader(msg), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if strings.Count(out.String(), "result=pass") != 2 {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestVerifyUsage(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		args []string
		want string // in the one line of stderr
	}{
		{[]string{"-zone", "a", "-dns", "127.0.0.1:53"}, "-zone and -dns exclude each other"},
		{[]string{"-time", "yesterday"}, `-time "yesterday"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-nope"}, "-nope"},
		// -dns is HOST:PORT, checked before any lookup.
		{[]string{"-dns", "nonsense"}, `-dns "nonsense": want HOST:PORT`},
		// A zone file that cannot be read is a usage error.
		{[]string{"-zone", missing}, "-zone: open " + missing},
		{[]string{"-zone", writeZone(t, "this is not a zone\n")}, "-zone: "},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader(""), &out, &errb)
		if code != 2 || !strings.HasPrefix(errb.String(), "dkim-verify: ") || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 || out.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2 and one line with %q", c.args, code, errb.String(), out.String(), c.want)
		}
	}
}
