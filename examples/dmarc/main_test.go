package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const zoneText = `
_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"
_dmarc.test.example. TXT "v=DMARC1; p=quarantine; t=y"
`

func writeZone(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(f, []byte(zoneText), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLookup(t *testing.T) {
	zone := writeZone(t)
	code, out, _ := runCmd("lookup", "-zone", zone, "news.example.com")
	if code != 0 || !strings.Contains(out, "found at: _dmarc.example.com\n") || !strings.Contains(out, "record: v=DMARC1; p=reject; sp=quarantine;") {
		t.Errorf("%d %s", code, out)
	}
	code, out, _ = runCmd("lookup", "-zone", zone, "nothing.example")
	if code != 1 || !strings.Contains(out, "record: none") {
		t.Errorf("%d %s", code, out)
	}
}

func TestEvaluate(t *testing.T) {
	zone := writeZone(t)
	for _, c := range []struct {
		args  []string
		first string
		more  string
	}{
		{[]string{"-from", "Alice <alice@example.com>", "-spf", "pass", "-spf-domain", "example.com"}, "dmarc=pass policy=none", "spf alignment: pass (example.com)"},
		{[]string{"-from", "alice@news.example.com", "-spf", "pass", "-spf-domain", "esp.example", "-dkim", "esp.example:pass,example.com:fail"}, "dmarc=fail policy=quarantine", "applicable policy: sp=quarantine"},
		{[]string{"-from", "bob@test.example", "-dkim", "test.example:fail"}, "dmarc=fail policy=none", "test mode t=y"},
		{[]string{"-from", "bob@test.example", "-rules", "7489"}, "dmarc=fail policy=quarantine", "applicable policy: p=quarantine"},
		{[]string{"-from", "alice@news.example.com", "-spf", "pass", "-spf-domain", "esp.example"}, "dmarc=fail policy=quarantine",
			"reason: dmarc: no aligned pass for news.example.com: spf pass for esp.example not aligned, no dkim pass"},
		{[]string{"-from", "x@nodmarc.example"}, "dmarc=none policy=none", "reason: dmarc: no DMARC record"},
		{[]string{"-from", "not an address"}, "dmarc=permerror policy=none", "no usable RFC5322.From"},
	} {
		code, out, errs := runCmd(append([]string{"evaluate", "-zone", zone}, c.args...)...)
		first, _, _ := strings.Cut(out, "\n")
		if code != 0 || first != c.first || !strings.Contains(out, c.more) {
			t.Errorf("%v: exit %d, first line %q, want %q and %q in\n%s%s", c.args, code, first, c.first, c.more, out, errs)
		}
	}
}

// TestEvaluateDNS asks a real DNS server on the loopback interface.
func TestEvaluateDNS(t *testing.T) {
	srv, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, out, errs := runCmd("evaluate", "-dns", srv.Addr, "-from", "a@example.com", "-dkim", "example.com:pass")
	if code != 0 || !strings.HasPrefix(out, "dmarc=pass policy=none\n") {
		t.Errorf("%d %s %s", code, out, errs)
	}
	code, out, _ = runCmd("lookup", "-dns", srv.Addr, "example.com")
	if code != 0 || !strings.Contains(out, "found at: _dmarc.example.com") {
		t.Errorf("%d %s", code, out)
	}
}

func TestReport(t *testing.T) {
	dir := "../../dmarc/testdata/"
	code, out, errs := runCmd("report", dir+"stalwart/dmarc-feedback/003.xml", dir+"stalwart/dmarc-feedback/100.eml", dir+"stalwart/dmarc-feedback/102.eml")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	// 003: 3+4+1+1 messages, 100: 1, 102: 1; passes: 54.240.8.13 (dkim) and 2a01:... (both).
	for _, want := range []string{"reports: 3 from Fastmail Pty Ltd, google.com, Mail.Ru", "messages: 11, DMARC pass 2, fail 9",
		"173.228.157.66 +4 +fail", "2a01:4f9:c011:b43c::1 +1 +pass"} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	code, _, errs = runCmd("report", dir+"README.md")
	if code != 1 || !strings.Contains(errs, "README.md") {
		t.Errorf("%d %s", code, errs)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil, {"frobnicate"}, {"lookup"}, {"lookup", "a", "b"}, {"evaluate"}, {"evaluate", "-from", "a@b.c", "-spf", "great"},
		{"evaluate", "-from", "a@b.c", "-dkim", "nocolon"}, {"evaluate", "-from", "a@b.c", "-zone", "x", "-dns", "127.0.0.1:53"},
		{"lookup", "-rules", "1234", "example.com"}, {"lookup", "-dns", "nohostport", "example.com"}, {"report"}, {"lookup", "-bogus", "x"},
	} {
		if code, _, errs := runCmd(args...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}
