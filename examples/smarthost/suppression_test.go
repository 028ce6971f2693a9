package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// rcptReply opens a session with the relay at addr as the key's account
// (STARTTLS verified with certFile, AUTH PLAIN) and returns the reply to
// RCPT TO:<rcpt> after MAIL FROM:<from> (nil for 250).
func rcptReply(t *testing.T, addr, certFile, key, from, rcpt string) error {
	t.Helper()
	c, err := dialKey(t, addr, certFile, key)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	return c.Rcpt(rcpt, nil)
}

// TestSuppressions: suppression add, list and remove change the list of a
// running relay, which refuses a suppressed recipient of the account at
// RCPT with 550 5.1.1 and the reason given (the domain compared without
// case, the local part with), takes it for another account, and takes it
// again once it is removed. Usage errors exit 2 and make no
// file; removing a suppression that does not exist exits 1.
func TestSuppressions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := filepath.Join(dir, "suppressions.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "-suppressions", list, "bob@example.org"}, "-account is required"},
		{[]string{"add", "-suppressions", list, "-account", "shop"}, "add takes one RCPT"},
		{[]string{"add", "-suppressions", list, "-account", "shop", "bob"}, `"bob" is not an address`},
		{[]string{"add", "-suppressions", list, "-account", "shop", "bob@exa mple.org"}, `is not an address`},
		{[]string{"list", "-suppressions", list}, "-suppressions: " + list + ": no such file"},
		{[]string{"remove", "-suppressions", list, "-account", "shop", "bob@example.org"}, "no such file"},
		{[]string{"list", "-suppressions", list, "extra"}, `unexpected argument "extra"`},
		{[]string{"purge"}, `unknown command "purge"`},
		{nil, "no command"},
	} {
		code, out, errOut := runMain(t, nil, append([]string{"suppression"}, tc.args...)...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "smarthost: ") || !strings.Contains(errOut, tc.want) {
			t.Errorf("suppression %q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if _, err := os.Stat(list); err == nil {
		t.Fatal("a usage error made the suppression file")
	}

	keys := filepath.Join(dir, "keys.json")
	code, out, errOut := runMain(t, nil, "apikey", "create", "-keys", keys, "-name", "shop", "-domains", "shop.example")
	if code != 0 {
		t.Fatalf("apikey create: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	key := lines[len(lines)-1]
	code, out, errOut = runMain(t, nil, "apikey", "create", "-keys", keys, "-name", "news", "-domains", "news.example")
	if code != 0 {
		t.Fatalf("apikey create: exit %d, stderr %q", code, errOut)
	}
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	newsKey := lines[len(lines)-1]

	before := time.Now().UTC().Truncate(time.Second)
	code, out, errOut = runMain(t, nil, "suppression", "add", "-suppressions", list, "-account", "shop", "bob@Example.ORG", "-reason", "asked to stop")
	if code != 0 || out != "added shop bob@Example.ORG\n" || errOut != "" {
		t.Fatalf("add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := runMain(t, nil, "suppression", "add", "-suppressions", list, "-account", "news", "carol@example.org"); code != 0 || out != "added news carol@example.org\n" {
		t.Fatalf("add: exit %d, stdout %q", code, out)
	}
	code, out, errOut = runMain(t, nil, "suppression", "list", "-suppressions", list, "-account", "shop")
	f := strings.Split(strings.TrimSuffix(out, "\n"), "\t")
	if code != 0 || errOut != "" || len(f) != 5 || f[0] != "shop" || f[1] != "bob@Example.ORG" || f[3] != "manual" || f[4] != "asked to stop" {
		t.Fatalf("list -account shop: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if at, err := time.Parse(time.RFC3339, f[2]); err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("list: created %q (%v), want a time since %v", f[2], err, before)
	}
	if code, out, _ := runMain(t, nil, "suppression", "list", "-suppressions", list); code != 0 || strings.Count(out, "\n") != 2 ||
		!regexp.MustCompile(`(?m)^news\tcarol@example.org\t`).MatchString(out) {
		t.Errorf("list: exit %d, stdout %q; want both", code, out)
	}

	d := startDaemon(t, dir, nil, "-listen", "127.0.0.1:0", "-hostname", "relay.test", "-keys", keys, "-suppressions", list)
	cert := filepath.Join(dir, "smarthost-data", "tls-cert.pem")
	var se *smtp.SMTPError
	err := rcptReply(t, d.addr, cert, key, "orders@shop.example", "bob@example.org")
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) ||
		!strings.Contains(se.Message, "suppressed for this account") || !strings.Contains(se.Message, "asked to stop") {
		t.Errorf("RCPT of the suppressed recipient: %v; want 550 5.1.1 with the reason", err)
	}
	if err := rcptReply(t, d.addr, cert, key, "orders@shop.example", "Bob@example.org"); err != nil {
		t.Errorf("RCPT of another local part (RFC 5321 §2.4: case-sensitive): %v, want 250", err)
	}
	if err := rcptReply(t, d.addr, cert, newsKey, "letters@news.example", "bob@example.org"); err != nil {
		t.Errorf("RCPT for another account: %v, want 250", err)
	}

	code, out, errOut = runMain(t, nil, "suppression", "remove", "-account", "shop", "-suppressions", list, "bob@EXAMPLE.org")
	if code != 0 || out != "removed shop bob@EXAMPLE.org\n" || errOut != "" {
		t.Errorf("remove: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if err := rcptReply(t, d.addr, cert, key, "orders@shop.example", "bob@Example.ORG"); err != nil {
		t.Errorf("RCPT after remove: %v, want 250", err)
	}
	code, out, errOut = runMain(t, nil, "suppression", "remove", "-suppressions", list, "-account", "shop", "bob@example.org")
	if code != 1 || out != "" || !strings.Contains(errOut, "no suppression of bob@example.org") {
		t.Errorf("removing it again: exit %d, stdout %q, stderr %q; want 1", code, out, errOut)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, d.stderr)
	}

	// A file that cannot be read is a usage error of the relay, and of
	// the commands, naming it.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version": 1, "suppressions": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-check", "-data", filepath.Join(dir, "d2"), "-suppressions", bad},
		{"suppression", "list", "-suppressions", bad},
	} {
		code, out, errOut := runMain(t, nil, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "-suppressions: suppression file "+bad+": unexpected EOF") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 naming the file", args, code, out, errOut)
		}
	}
}
