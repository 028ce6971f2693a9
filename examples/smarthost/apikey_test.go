package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
)

// authenticate opens a session with the relay at addr, STARTTLS verified
// with the certificate in certFile for relay.test, and AUTH PLAIN with
// the key; it returns the reply to AUTH (nil for 235).
func authenticate(t *testing.T, addr, certFile, key string) error {
	t.Helper()
	c, err := dialKey(t, addr, certFile, key)
	if err == nil {
		c.Close()
	}
	return err
}

// TestAPIKeys: apikey create prints the key alone on its last line, list
// shows it without the secret, revoke removes it; the running relay takes
// the key at AUTH until it is revoked, and refuses it at the next AUTH
// after, with 535 5.7.8 (RFC 4954 §6).
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	// Usage errors make no file.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "-keys", keys, "-domains", "shop.example"}, "-name is required"},
		{[]string{"create", "-keys", keys, "-name", "shop"}, "-domains is required"},
		{[]string{"create", "-keys", keys, "-name", "shop", "-domains", "shop..example"}, `-domains "shop..example"`},
		{[]string{"create", "-keys", keys, "-name", "shop", "-domains", "shop.example", "-scopes", "mail.read"}, `unknown scope "mail.read"`},
		{[]string{"create", "-keys", keys, "-name", " shop", "-domains", "shop.example"}, `-name " shop"`},
		{[]string{"list", "-keys", keys}, "-keys: " + keys + ": no such file"},
		{[]string{"revoke", "-keys", keys}, "revoke takes one NAME"},
		{[]string{"rotate"}, `unknown command "rotate"`},
		{nil, "no command"},
	} {
		code, out, errOut := runMain(t, nil, append([]string{"apikey"}, tc.args...)...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "smarthost: ") || !strings.Contains(errOut, tc.want) {
			t.Errorf("apikey %q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if _, err := os.Stat(keys); err == nil {
		t.Fatal("a usage error made the key file")
	}

	// create makes the directory of a key file in a data directory that
	// does not exist yet (a relay not started).
	nested := filepath.Join(dir, "new-data", "keys.json")
	if code, _, errOut := runMain(t, nil, "apikey", "create", "-keys", nested, "-name", "first", "-domains", "shop.example"); code != 0 || !fileExists(nested) {
		t.Errorf("apikey create in a new directory: exit %d, stderr %q, file made: %v", code, errOut, fileExists(nested))
	}

	code, out, errOut := runMain(t, nil, "apikey", "create", "-keys", keys, "-name", "shop", "-scopes", "mail.send", "-domains", "shop.example,*.shop.example")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	key := lines[len(lines)-1]
	if code != 0 || errOut != "" || !regexp.MustCompile(`^shk_[a-z2-7]{16}_[a-z2-7]{56}$`).MatchString(key) {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id := key[4:20]
	code, out, _ = runMain(t, nil, "apikey", "create", "-keys", keys, "-name", "shop", "-domains", "shop.example")
	if code != 1 || out != "" {
		t.Errorf("a second key named shop: exit %d, stdout %q; want 1", code, out)
	}
	code, out, errOut = runMain(t, nil, "apikey", "list", "-keys", keys)
	f := strings.Split(strings.TrimSuffix(out, "\n"), "\t")
	if code != 0 || errOut != "" || len(f) != 5 || f[0] != "shop" || f[1] != id || f[3] != "mail.send" || f[4] != "*.shop.example,shop.example" ||
		strings.Contains(out, key[21:]) {
		t.Errorf("list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The key authenticates as the account it was made for.
	kf, err := relay.OpenKeyFile(context.Background(), keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := kf.Authenticate(context.Background(), relay.KeyUser, key)
	kf.Close()
	if err != nil || acct.Name != "shop" || !acct.MaySendFrom("news.shop.example") || acct.MaySendFrom("other.example") {
		t.Fatalf("the key authenticates as %+v, %v", acct, err)
	}

	// A relay on that key file: it makes no first key, since the file
	// exists, and takes the key at AUTH.
	d := startDaemon(t, dir, nil, "-listen", "127.0.0.1:0", "-hostname", "relay.test", "-keys", keys)
	if out := d.stdout.String(); out != "" {
		t.Errorf("the relay printed %q with an existing key file", out)
	}
	cert := filepath.Join(dir, "smarthost-data", "tls-cert.pem")
	if err := authenticate(t, d.addr, cert, key); err != nil {
		t.Fatalf("AUTH with the new key: %v", err)
	}
	code, out, errOut = runMain(t, nil, "apikey", "revoke", "shop", "-keys", keys)
	if code != 0 || out != "revoked shop\n" || errOut != "" {
		t.Errorf("revoke: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var se *smtp.SMTPError
	if err := authenticate(t, d.addr, cert, key); !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) {
		t.Errorf("AUTH with the revoked key: %v, want 535 5.7.8", err)
	}
	code, out, _ = runMain(t, nil, "apikey", "revoke", "-keys", keys, "shop")
	if code != 1 || out != "" {
		t.Errorf("revoking it again: exit %d, stdout %q; want 1", code, out)
	}
	if code, out, _ = runMain(t, nil, "apikey", "list", "-keys", keys); code != 0 || out != "" {
		t.Errorf("list after revoke: exit %d, stdout %q; want 0 and nothing", code, out)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
}

// TestFirstStart: a relay started without a key file, certificate or
// spool makes them under ./smarthost-data, prints a first key that sends
// from -key-domains, and listens with a self-signed certificate for its
// hostname and 127.0.0.1; started again, it keeps them all and prints
// nothing.
func TestFirstStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := startDaemon(t, dir, nil, "-listen", "127.0.0.1:0", "-hostname", "relay.test", "-key-domains", "shop.example")
	key := d.firstKey()
	if !strings.Contains(d.stdout.String(), `API key "default", scopes mail.send, sender domains shop.example;`) {
		t.Errorf("stdout %q", d.stdout.String())
	}
	data := filepath.Join(dir, "smarthost-data")
	for _, f := range []string{"keys.json", "keys.json.hashkey", "spool", "tls-cert.pem", "tls-key.pem"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Error(err)
		}
	}
	for _, f := range []string{"keys.json.hashkey", "tls-key.pem"} {
		if st, err := os.Stat(filepath.Join(data, f)); err == nil && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	certPEM, err := os.ReadFile(filepath.Join(data, "tls-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// authenticate verifies the certificate for relay.test.
	if err := authenticate(t, d.addr, filepath.Join(data, "tls-cert.pem"), key); err != nil {
		t.Fatalf("AUTH with the first key: %v", err)
	}
	if code := d.stop(syscall.SIGINT); code != 0 {
		t.Errorf("exit %d after SIGINT\n%s", code, d.stderr)
	}

	d = startDaemon(t, dir, nil, "-listen", "127.0.0.1:0", "-hostname", "relay.test", "-key-domains", "shop.example")
	if out := d.stdout.String(); out != "" {
		t.Errorf("the second start printed %q", out)
	}
	again, err := os.ReadFile(filepath.Join(data, "tls-cert.pem"))
	if err != nil || string(again) != string(certPEM) {
		t.Errorf("the certificate was made again (%v)", err)
	}
	if err := authenticate(t, d.addr, filepath.Join(data, "tls-cert.pem"), key); err != nil {
		t.Errorf("AUTH with the first key after a restart: %v", err)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
}
