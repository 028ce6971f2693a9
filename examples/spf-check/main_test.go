package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const zoneText = `
example.com.      TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all exp=why.example.com"
_spf.example.net. TXT "v=spf1 ip6:2001:db8::/32 ~all"
why.example.com.  TXT "%{i} may not send for %{d}"
helo.example.org. TXT "v=spf1 a -all"
helo.example.org. A   198.51.100.9
`

func writeZone(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(p, []byte(zoneText), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runArgs(t *testing.T, args ...string) (int, []string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, nil, &out, &errb)
	return code, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"), errb.String()
}

func TestRunZone(t *testing.T) {
	t.Parallel()
	zone := writeZone(t)
	code, lines, stderr := runArgs(t, "-ip", "192.0.2.7", "-mail-from", "a@example.com", "-helo", "mx.example.com", "-zone", zone, "-receiver", "mx.test")
	if code != 0 || len(lines) != 2 || lines[0] != "result=pass" {
		t.Fatalf("exit %d, output %q, stderr %q", code, lines, stderr)
	}
	want := `Received-SPF: pass (mx.test: domain of a@example.com designates 192.0.2.7 as permitted sender) client-ip=192.0.2.7; envelope-from="a@example.com"; helo=mx.example.com; mechanism="ip4:192.0.2.0/24"; receiver=mx.test; identity=mailfrom`
	if lines[1] != want {
		t.Errorf("header\n%s\nwant\n%s", lines[1], want)
	}

	// A fail with its explanation, and the trace.
	code, lines, _ = runArgs(t, "-ip", "203.0.113.5", "-mail-from", "a@example.com", "-helo", "mx.example.com", "-zone", zone, "-receiver", "mx.test", "-trace")
	if code != 1 || lines[0] != "result=fail" || !strings.HasPrefix(lines[1], "Received-SPF: fail (mx.test: domain of a@example.com does not designate 203.0.113.5") ||
		lines[2] != "explanation=203.0.113.5 may not send for example.com" {
		t.Fatalf("exit %d, output %q", code, lines)
	}
	// problem= is for temperror and permerror only (RFC 7208 §9.1).
	if strings.Contains(lines[1], "problem=") {
		t.Errorf("fail header has problem=: %q", lines[1])
	}
	trace := strings.Join(lines[3:], "\n")
	for _, w := range []string{"lookup TXT example.com -> 1 records", "  lookup TXT _spf.example.net -> 1 records", "term include:_spf.example.net -> no match", "term -all -> match"} {
		if !strings.Contains(trace, w) {
			t.Errorf("trace lacks %q:\n%s", w, trace)
		}
	}

	// The null sender is checked as postmaster@helo.
	code, lines, _ = runArgs(t, "-ip", "198.51.100.9", "-mail-from", "", "-helo", "helo.example.org", "-zone", zone, "-receiver", "mx.test")
	if code != 0 || lines[0] != "result=pass" || !strings.Contains(lines[1], `envelope-from="postmaster@helo.example.org"`) {
		t.Errorf("null sender: exit %d, %q", code, lines)
	}
	// No record: none, which is not a pass: exit 1.
	code, lines, _ = runArgs(t, "-ip", "198.51.100.9", "-mail-from", "a@nothing.example", "-helo", "h.example", "-zone", zone)
	if code != 1 || lines[0] != "result=none" || len(lines) != 2 || strings.Contains(lines[1], "problem=") {
		t.Errorf("none: exit %d, %q", code, lines)
	}
}

func TestRunDNS(t *testing.T) {
	t.Parallel()
	srv, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, lines, stderr := runArgs(t, "-ip", "2001:db8::5", "-mail-from", "a@example.com", "-helo", "mx.example.com", "-dns", srv.Addr, "-receiver", "mx.test")
	if code != 0 || lines[0] != "result=pass" || !strings.Contains(lines[1], `mechanism="include:_spf.example.net"`) {
		t.Fatalf("exit %d, output %q, stderr %q", code, lines, stderr)
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	zone := writeZone(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		args []string
		want string // in the one line of stderr
	}{
		{[]string{}, "-ip is required"},
		{[]string{"-mail-from", "a@example.com", "-helo", "h.example"}, "-ip is required"},
		{[]string{"-ip", "999.1.1.1", "-mail-from", "a@example.com", "-helo", "h.example"}, `-ip "999.1.1.1": not an IP address`},
		{[]string{"-ip", "192.0.2.1", "-mail-from", "", "-helo", ""}, "-helo is required when -mail-from is empty"},
		{[]string{"-ip", "192.0.2.1", "-mail-from", "a@example.com", "-zone", zone, "-dns", "127.0.0.1:53"}, "-zone and -dns exclude each other"},
		{[]string{"-ip", "192.0.2.1", "-mail-from", "a@example.com", "extra"}, `unexpected argument "extra"`},
		{[]string{"-nosuchflag"}, "-nosuchflag"},
		// -dns is HOST:PORT, checked before any lookup; a zone file that
		// cannot be read is a usage error.
		{[]string{"-ip", "192.0.2.1", "-mail-from", "a@example.com", "-dns", "nonsense"}, `-dns "nonsense": want HOST:PORT`},
		{[]string{"-ip", "192.0.2.1", "-mail-from", "a@example.com", "-zone", missing}, "-zone: open " + missing},
	} {
		code, lines, stderr := runArgs(t, c.args...)
		if code != 2 || !strings.HasPrefix(stderr, "spf-check: ") || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 || lines[0] != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 2 and one line with %q", c.args, code, stderr, lines, c.want)
		}
	}
}

// The exit status is 0 for pass only: a DNS that cannot be used gives
// temperror, exit 1 (the doc said so; the program exited 0).
func TestRunTempError(t *testing.T) {
	t.Parallel()
	srv, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr
	srv.Close() // nothing answers there now
	code, lines, _ := runArgs(t, "-ip", "192.0.2.7", "-mail-from", "a@example.com", "-helo", "mx.example.com", "-dns", addr, "-receiver", "mx.test")
	if code != 1 || lines[0] != "result=temperror" {
		t.Errorf("exit %d, %q", code, lines)
	}
}
