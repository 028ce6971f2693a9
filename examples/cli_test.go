package examples_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// TestCLI holds every example program to the convention of README.md: it
// builds each main package under examples/ and runs it with -h, a missing
// required flag, a bad value, a missing file and an input that does not
// pass, and checks the exit status, that -h lists every flag, and that an
// error is one line on standard error with the program name as its only
// prefix, naming the flag or file at fault.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every example program")
	}
	bin := buildAll(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	secrets := filepath.Join(dir, "secrets")
	if err := os.WriteFile(secrets, []byte("tops3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		key  = "../dkim/testdata/rfc8463/ed25519-private-seed.b64"
		zone = "testdata/example.zone"
		msg  = "From: a@example.com\r\nTo: b@example.net\r\n\r\nhi\r\n"
	)
	// domainauth asks a DNS server: this one serves the zone file.
	z, err := dnstest.ReadZoneFile(zone)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dnstest.NewServer(z)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// send submits to this server, which refuses one recipient.
	smtpSrv, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer smtpSrv.Close()
	smtpSrv.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "gone@example.net", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}})
	submit := func(more ...string) []string {
		return append([]string{"-server", smtpSrv.Addr, "-tls", "none", "-from", "a@example.com"}, more...)
	}
	// request is a domainauth command with the request flags, for the
	// domain of the zone file.
	request := func(cmd string, more ...string) []string {
		return append([]string{cmd, "-domain", "example.com", "-return-path", "em1234", "-selectors", "s1",
			"-target", "u1234.rp.provider.example", "-spf-include", "_spf.provider.example"}, more...)
	}
	type row struct {
		kind   string // help, missing flag, bad value, missing file, not pass, pass
		args   []string
		stdin  string
		status int
		want   string // in standard output for help and pass, else in the one line of standard error
	}
	relayed, err := os.ReadFile("authcheck/testdata/relayed.eml")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string][]row{
		"demo": {
			{"help", []string{"-h"}, "", 0, "-o -v"},
			{"missing flag", []string{"-o"}, "", 2, "flag needs an argument: -o"},
			{"bad value", []string{"-v=maybe"}, "", 2, `invalid boolean value "maybe" for -v`},
			{"bad value", []string{"-o", zone}, "", 2, "-o " + zone + ": not a directory"},
			{"bad value", []string{"again"}, "", 2, `unexpected argument "again"`},
			{"missing file", []string{"-o", missing}, "", 2, "-o: stat " + missing},
		},
		"authcheck": {
			{"help", []string{"-h"}, "", 0, "-authserv-id -dns -helo -ip -json -mail-from -rules -time -zone"},
			{"missing flag", []string{"-zone", zone}, msg, 2, "-ip is required: the message has no Received field"},
			{"bad value", []string{"-ip", "999.1.1.1", "-helo", "h.example"}, msg, 2, `-ip "999.1.1.1": not an IP address`},
			{"bad value", []string{"-dns", "nonsense"}, msg, 2, `-dns "nonsense": want HOST:PORT`},
			{"missing file", []string{"-zone", missing}, msg, 2, "-zone: open " + missing},
			{"not pass", []string{"-zone", zone, "-ip", "203.0.113.9", "-mail-from", "a@example.com"}, msg, 1, ""},
			{"pass", []string{"-zone", "authcheck/testdata/example.zone"}, string(relayed), 0, "spf=pass smtp.mailfrom=bounces+1a2b@em1234.example.com; dkim=pass"},
		},
		"dkim-keygen": {
			{"help", []string{"-h"}, "", 0, "-a -d -o -s"},
			{"missing flag", []string{"-s", "sel", "-o", filepath.Join(dir, "k1")}, "", 2, "-d is required"},
			{"bad value", []string{"-d", "exa mple..com", "-s", "sel", "-o", filepath.Join(dir, "k2")}, "", 2, "-d: d=: syntax error"},
			{"bad value", []string{"-d", "example.com", "-s", "a b", "-o", filepath.Join(dir, "k3")}, "", 2, "-s: s=: syntax error"},
			{"missing file", []string{"-d", "example.com", "-s", "sel", "-o", filepath.Join(missing, "k")}, "", 2, "-o: open " + missing},
			{"pass", []string{"-d", "example.com", "-s", "sel", "-o", filepath.Join(dir, "k4")}, "", 0, "sel._domainkey.example.com. IN TXT"},
		},
		"dkim-sign": {
			{"help", []string{"-h"}, "", 0, "-c -d -headers -k -s"},
			{"missing flag", []string{"-s", "sel", "-k", key}, msg, 2, "-d is required"},
			{"bad value", []string{"-d", "example.com", "-s", "sel", "-k", key, "-c", "loose"}, msg, 2, `-c "loose"`},
			{"bad value", []string{"-d", "example.com", "-s", "sel", "-k", key, "-headers", "To"}, msg, 2, "-headers: "},
			{"missing file", []string{"-d", "example.com", "-s", "sel", "-k", missing}, msg, 2, "-k: open " + missing},
			{"not pass", []string{"-d", "example.com", "-s", "sel", "-k", key}, "To: b@example.net\r\n\r\nhi\r\n", 1, "standard input: no From field"},
			{"not pass", []string{"-d", "example.com", "-s", "sel", "-k", key}, "", 1, "standard input: empty message"},
			{"pass", []string{"-d", "example.com", "-s", "sel", "-k", key}, msg, 0, "DKIM-Signature: "},
		},
		"dkim-verify": {
			{"help", []string{"-h"}, "", 0, "-authserv-id -dns -time -zone"},
			{"missing flag", []string{"-dns"}, msg, 2, "flag needs an argument: -dns"},
			{"bad value", []string{"-dns", "nonsense"}, msg, 2, `-dns "nonsense": want HOST:PORT`},
			{"bad value", []string{"-time", "yesterday"}, msg, 2, `-time "yesterday"`},
			{"missing file", []string{"-zone", missing}, msg, 2, "-zone: open " + missing},
			{"not pass", []string{"-zone", zone}, msg, 1, ""},
		},
		"domainauth": {
			{"help", []string{"-h"}, "", 0, "-dkim-key -dns -domain -existing-dmarc -existing-spf -format -ip -mode -mx -ns -ns-addr -provider -report-uri -return-path -revoke -selectors -server -spf-include -subdomain -target -tsig -ttl -wait"},
			{"help", []string{"plan", "-h"}, "", 0, "-dkim-key -domain -existing-dmarc -existing-spf -format -mode -mx -ns -report-uri -return-path -selectors -spf-include -subdomain -target -ttl"},
			{"help", []string{"verify", "-h"}, "", 0, "-dkim-key -dns -domain -ip -ns-addr -provider -wait"},
			{"help", []string{"revoke", "-h"}, "", 0, "-domain -format"},
			{"help", []string{"push", "-h"}, "", 0, "-domain -revoke -server -tsig"},
			{"help", []string{"lint", "-h"}, "", 0, "-dns -ip -selectors"},
			{"missing flag", nil, "", 2, "no command"},
			{"missing flag", []string{"plan", "-selectors", "s1", "-spf-include", "_spf.provider.example"}, "", 2, "-domain is required"},
			{"missing flag", request("push", "-tsig", "update-key:c2VjcmV0"), "", 2, "-server is required"},
			{"missing flag", []string{"lint", "-dns", srv.Addr}, "", 2, "lint takes one DOMAIN"},
			{"bad value", request("plan", "-mode", "bogus"), "", 2, `-mode "bogus": want delegated, self-hosted or subdomain`},
			{"bad value", request("revoke", "-format", "xml"), "", 2, `-format "xml"`},
			{"bad value", request("verify", "-dns", "nonsense"), "", 2, `-dns "nonsense": want HOST:PORT`},
			{"bad value", request("push", "-server", srv.Addr, "-tsig", "update-key:hmac-md9:c2VjcmV0"), "", 2, "-tsig: "},
			{"bad value", []string{"lint", "-ip", "999.1.1.1", "example.com"}, "", 2, `-ip "999.1.1.1": not an IP address`},
			{"missing file", request("plan", "-dkim-key", "s1:"+missing), "", 2, "-dkim-key: open " + missing},
			{"not pass", request("verify", "-dns", srv.Addr, "-ns-addr", "ns1.example.com="+srv.Addr), "", 1, ""},
			{"not pass", []string{"lint", "-dns", srv.Addr, "-selectors", "s1", "example.com"}, "", 1, ""},
			{"pass", request("plan"), "", 0, "em1234.example.com.\t3600\tIN\tCNAME\tu1234.rp.provider.example.\n"},
			{"pass", []string{"lint", "example.com", "-dns", srv.Addr}, "", 0, "lint of example.com: 0 errors"},
		},
		"dmarc": {
			{"help", []string{"-h"}, "", 0, "-dkim -dns -from -ip -rules -spf -spf-domain -zone"},
			{"help", []string{"evaluate", "-h"}, "", 0, "-dkim -dns -from -ip -rules -spf -spf-domain -zone"},
			{"help", []string{"lookup", "-h"}, "", 0, "-dns -rules -zone"},
			{"help", []string{"report", "-h"}, "", 0, ""},
			{"missing flag", []string{"evaluate", "-zone", zone}, "", 2, "-from is required"},
			{"missing flag", nil, "", 2, "no command"},
			{"bad value", []string{"evaluate", "-zone", zone, "-from", "a@example.com", "-rules", "1234"}, "", 2, `-rules "1234"`},
			{"bad value", []string{"lookup", "-dns", "nonsense", "example.com"}, "", 2, `-dns "nonsense": want HOST:PORT`},
			{"missing file", []string{"lookup", "-zone", missing, "example.com"}, "", 2, "-zone: open " + missing},
			{"missing file", []string{"report", missing}, "", 2, "open " + missing},
			{"not pass", []string{"evaluate", "-zone", zone, "-from", "a@example.com", "-spf", "fail", "-spf-domain", "example.com"}, "", 1, ""},
			{"not pass", []string{"lookup", "-zone", zone, "nothing.example"}, "", 1, ""},
			{"pass", []string{"evaluate", "-zone", zone, "-from", "a@example.com", "-dkim", "example.com:pass"}, "", 0, "dmarc=pass"},
		},
		"send": {
			{"help", []string{"-h"}, "", 0, "-auth -ca -from -server -tls -to -user"},
			{"missing flag", []string{"-server", smtpSrv.Addr, "-from", "a@example.com", "-to", "b@example.net"}, msg, 2, "-tls is required"},
			{"missing flag", submit("-user", "apikey", "-to", "b@example.net"), msg, 2, "-user needs the password or API key in the environment variable SMARTHOST_PASSWORD"},
			{"bad value", submit("-to", "b@example.net", "-password", "secret"), msg, 2, "flag provided but not defined: -password"},
			{"bad value", submit("-to", "b@example.net", "-tls", "tls"), msg, 2, `-tls "tls": want starttls, implicit or none`},
			{"missing file", submit("-to", "b@example.net", "-ca", missing), msg, 2, "-ca: open " + missing},
			{"not pass", submit("-to", "b@example.net,gone@example.net"), msg, 1, ""},
			{"not pass", submit("-to", "b@example.net"), "", 1, "standard input: empty message"},
			{"pass", submit("-to", "b@example.net"), msg, 0, "b@example.net 250 2.0.0 OK: queued\n"},
		},
		"smarthost": {
			{"help", []string{"-h"}, "", 0, "-check -config -data -debug -dkim -events -hostname -key-domains -keys -listen -listen-tls -max-connections -max-connections-per-ip -provider-domain " +
				"-return-path -shutdown-timeout -spool -srs-domain -srs-secrets -suppressed -suppressions -tls-cert -tls-key -trusted -upstream -upstream-ca -upstream-tls -upstream-user " +
				"-name -scopes -domains -account -reason"},
			{"help", []string{"apikey", "-h"}, "", 0, "-config -domains -keys -name -scopes"},
			{"help", []string{"apikey", "revoke", "-h"}, "", 0, "-config -keys"},
			{"missing flag", []string{"apikey", "create", "-keys", filepath.Join(dir, "keys1.json"), "-domains", "example.com"}, "", 2, "-name is required"},
			{"missing flag", []string{"apikey"}, "", 2, "no command"},
			{"help", []string{"suppression", "-h"}, "", 0, "-account -config -reason -suppressions"},
			{"help", []string{"suppression", "remove", "-h"}, "", 0, "-account -config -suppressions"},
			{"missing flag", []string{"suppression", "add", "-suppressions", filepath.Join(dir, "s1.json"), "a@example.com"}, "", 2, "-account is required"},
			{"missing file", []string{"suppression", "list", "-suppressions", missing}, "", 2, "-suppressions: " + missing + ": no such file"},
			{"bad value", []string{"-data", filepath.Join(dir, "sh"), "-suppressed", "bounce"}, "", 2, `-suppressed "bounce": want refuse or drop`},
			{"bad value", []string{"-data", filepath.Join(dir, "sh"), "-listen", "nowhere"}, "", 2, `-listen "nowhere": want HOST:PORT`},
			{"bad value", []string{"-data", filepath.Join(dir, "sh"), "-upstream", "smtp.example:587", "-upstream-tls", "ssl"}, "", 2, `-upstream-tls "ssl": want starttls, implicit or none`},
			{"missing file", []string{"-data", filepath.Join(dir, "sh"), "-dkim", "example.com:s1:" + missing}, "", 2, "-dkim: open " + missing},
			{"missing file", []string{"-data", filepath.Join(dir, "sh"), "-config", missing}, "", 2, "-config: open " + missing},
			{"pass", []string{"-check", "-data", filepath.Join(dir, "sh")}, "", 0, "listen: 127.0.0.1:2525\n"},
			{"pass", []string{"apikey", "create", "-keys", filepath.Join(dir, "keys2.json"), "-name", "shop", "-domains", "example.com"}, "", 0, "\nshk_"},
			{"pass", []string{"suppression", "add", "-suppressions", filepath.Join(dir, "s2.json"), "-account", "shop", "a@example.com"}, "", 0, "added shop a@example.com\n"},
		},
		"spf-check": {
			{"help", []string{"-h"}, "", 0, "-dns -helo -ip -mail-from -receiver -trace -zone"},
			{"missing flag", []string{"-mail-from", "a@example.com", "-zone", zone}, "", 2, "-ip is required"},
			{"bad value", []string{"-ip", "999.1.1.1", "-mail-from", "a@example.com"}, "", 2, `-ip "999.1.1.1": not an IP address`},
			{"bad value", []string{"-ip", "192.0.2.25", "-mail-from", "a@example.com", "-dns", "nonsense"}, "", 2, `-dns "nonsense": want HOST:PORT`},
			{"missing file", []string{"-ip", "192.0.2.25", "-mail-from", "a@example.com", "-zone", missing}, "", 2, "-zone: open " + missing},
			{"not pass", []string{"-ip", "203.0.113.9", "-mail-from", "a@example.com", "-zone", zone}, "", 1, ""},
			{"pass", []string{"-ip", "192.0.2.25", "-mail-from", "a@example.com", "-zone", zone}, "", 0, "result=pass"},
		},
		"srs": {
			{"help", []string{"-h"}, "", 0, "-allow-long -alphabet -always-rewrite -domain -hash-len -hash-min -local-domains -max-age -now -secret-file -sep"},
			{"help", []string{"reverse", "-h"}, "", 0, "-allow-long -alphabet -domain -secret-file"},
			{"missing flag", []string{"forward", "-secret-file", secrets, "a@b.example"}, "", 2, "-domain is required"},
			{"bad value", []string{"forward", "-domain", "example.com", "-secret-file", secrets, "-alphabet", "base32", "a@b.example"}, "", 2, `-alphabet "base32"`},
			{"bad value", []string{"forward", "-domain", "exa mple", "-secret-file", secrets, "a@b.example"}, "", 2, "-domain: "},
			{"missing file", []string{"forward", "-domain", "example.com", "-secret-file", missing, "a@b.example"}, "", 2, "-secret-file: open " + missing},
			{"not pass", []string{"forward", "-domain", "example.com", "-secret-file", secrets, "a@b@orig.example"}, "", 1, ""},
			{"pass", []string{"forward", "-domain", "example.com", "-secret-file", secrets, "a@b.example"}, "", 0, "SRS0="},
		},
	}
	for prog := range bin {
		var kinds []string
		for _, r := range table[prog] {
			kinds = append(kinds, r.kind)
		}
		for _, k := range []string{"help", "missing flag", "bad value", "missing file"} {
			if !slices.Contains(kinds, k) {
				t.Errorf("%s: no %q case in the table", prog, k)
			}
		}
	}
	for prog, rows := range table {
		path, ok := bin[prog]
		if !ok {
			t.Errorf("%s: not a program under examples/", prog)
			continue
		}
		for _, r := range rows {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(path, r.args...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(r.stdin), &stdout, &stderr
			err := cmd.Run()
			status := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			name := prog + " " + strings.Join(r.args, " ")
			if status != r.status {
				t.Errorf("%s (%s): exit %d, want %d; stderr %q", name, r.kind, status, r.status, stderr.String())
			}
			switch r.kind {
			case "help":
				out := stdout.String()
				for _, w := range []string{"usage: " + prog, "Standard input: ", "Exit status:\n  0  ", "\n  1  ", "\n  2  "} {
					if !strings.Contains(out, w) {
						t.Errorf("%s: help lacks %q:\n%s", name, w, out)
					}
				}
				for _, f := range strings.Fields(r.want) {
					// A boolean flag of one letter has its help on its
					// line, after a tab.
					if !strings.Contains(out, "\n  "+f+" ") && !strings.Contains(out, "\n  "+f+"\n") && !strings.Contains(out, "\n  "+f+"\t") {
						t.Errorf("%s: help lacks the flag %s:\n%s", name, f, out)
					}
				}
				if stderr.Len() != 0 {
					t.Errorf("%s: stderr %q", name, stderr.String())
				}
			case "pass":
				if !strings.Contains(stdout.String(), r.want) || stderr.Len() != 0 {
					t.Errorf("%s: stdout %q, stderr %q; want %q", name, stdout.String(), stderr.String(), r.want)
				}
			case "not pass":
				if r.want != "" || stderr.Len() != 0 {
					checkErrorLine(t, name, prog, stderr.String(), r.want)
				}
			default:
				checkErrorLine(t, name, prog, stderr.String(), r.want)
				if stdout.Len() != 0 {
					t.Errorf("%s: stdout %q on a usage error", name, stdout.String())
				}
			}
		}
	}
}

// checkErrorLine checks that stderr is one line, "prog: message", with no
// second prefix, and that the message holds want.
func checkErrorLine(t *testing.T, name, prog, stderr, want string) {
	t.Helper()
	msg, ok := strings.CutPrefix(stderr, prog+": ")
	if !ok || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.Contains(msg, want) {
		t.Errorf("%s: stderr %q, want one line %q", name, stderr, prog+": ..."+want+"...")
	}
	for _, p := range []string{"dkim", "dmarc", "dnsauth", "dnstest", "relay", "sasl", "spf", "srs", prog} {
		if strings.HasPrefix(msg, p+": ") || strings.Contains(msg, p+": "+p+": ") {
			t.Errorf("%s: stderr %q has a second prefix %q", name, stderr, p+": ")
		}
	}
}

// buildAll builds every main package under examples/ and returns the
// binaries by program name.
func buildAll(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) == 0 {
		t.Fatal("no main package under examples/")
	}
	dir := t.TempDir()
	// Without symbol tables and DWARF: linking is most of the time here.
	cmd := exec.Command("go", append([]string{"build", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	bin := map[string]string{}
	for _, p := range pkgs {
		name := p[strings.LastIndexByte(p, '/')+1:]
		bin[name] = filepath.Join(dir, name)
	}
	return bin
}
