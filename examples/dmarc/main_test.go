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
	code := run(args, nil, &out, &errb)
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
		want := 1 // exit 0 for dmarc=pass only
		if strings.HasPrefix(c.first, "dmarc=pass ") {
			want = 0
		}
		if code != want || first != c.first || !strings.Contains(out, c.more) {
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
	// A file that is not a report: exit 1, and the others are summarized.
	code, out, errs = runCmd("report", dir+"README.md", dir+"stalwart/dmarc-feedback/003.xml")
	if code != 1 || !strings.HasPrefix(errs, "dmarc: "+dir+"README.md: ") || strings.Count(errs, "\n") != 1 || !strings.Contains(out, "reports: 1 from") {
		t.Errorf("%d %s %s", code, errs, out)
	}
}

func TestUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		args []string
		want string // in the one line of stderr
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"lookup"}, "lookup takes one DOMAIN"},
		{[]string{"lookup", "a", "b"}, "lookup takes one DOMAIN"},
		{[]string{"evaluate"}, "-from is required"},
		{[]string{"evaluate", "-from", "a@b.c", "-spf", "great"}, `-spf "great"`},
		{[]string{"evaluate", "-from", "a@b.c", "-dkim", "nocolon"}, `-dkim "nocolon"`},
		{[]string{"evaluate", "-from", "a@b.c", "-ip", "1.2.3"}, `-ip "1.2.3"`},
		{[]string{"evaluate", "-from", "a@b.c", "-zone", "x", "-dns", "127.0.0.1:53"}, "-zone and -dns exclude each other"},
		{[]string{"evaluate", "-from", "a@b.c", "extra"}, `unexpected argument "extra"`},
		{[]string{"lookup", "-rules", "1234", "example.com"}, `-rules "1234"`},
		{[]string{"lookup", "-dns", "nohostport", "example.com"}, `-dns "nohostport": want HOST:PORT`},
		{[]string{"lookup", "-zone", missing, "example.com"}, "-zone: open " + missing},
		{[]string{"report"}, "report takes one or more FILEs"},
		// A report file that cannot be opened is a usage error, found
		// before any file is read.
		{[]string{"report", "../../dmarc/testdata/stalwart/dmarc-feedback/003.xml", missing}, "open " + missing},
		{[]string{"lookup", "-bogus", "x"}, "-bogus"},
	} {
		code, out, errs := runCmd(c.args...)
		if code != 2 || !strings.HasPrefix(errs, "dmarc: ") || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") != 1 || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 2 and one line with %q", c.args, code, errs, out, c.want)
		}
	}
}

// -h prints the help of every command, or of one, and exits 0.
func TestHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"usage: dmarc lookup", "usage: dmarc evaluate", "usage: dmarc report", "-from ADDR", "-rules RULES"}},
		{[]string{"evaluate", "-h"}, []string{"usage: dmarc evaluate", "-from ADDR", "-dkim D:RESULT", "Exit status:"}},
		{[]string{"report", "-help"}, []string{"usage: dmarc report FILE...", "Flags: none"}},
	} {
		code, out, errs := runCmd(c.args...)
		if code != 0 || errs != "" {
			t.Errorf("%q: exit %d, stderr %q", c.args, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: no %q in\n%s", c.args, w, out)
			}
		}
	}
}
