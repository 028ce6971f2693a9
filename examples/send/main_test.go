package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

const message = "From: alice@example.com\nTo: bob@example.org\nSubject: hi\n\nHello.\n"

func newServer(t *testing.T, opts *smtptest.Options) *smtptest.Server {
	t.Helper()
	s, err := smtptest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// caFile writes the server's certificate as PEM, for -ca.
func caFile(t *testing.T, s *smtptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// env is an environment with the password variable set to password, or
// not set when it is "".
func env(password string) func(string) string {
	return func(name string) string {
		if name == passwordVar {
			return password
		}
		return ""
	}
}

// runSend runs the program and returns its exit status, its standard
// output as lines, and its standard error.
func runSend(t *testing.T, getenv func(string) string, stdin string, args ...string) (int, []string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	var lines []string
	if out.Len() > 0 {
		lines = strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	}
	return code, lines, errb.String()
}

// Every recipient accepted: exit 0, a line each with the reply to the end
// of the data, and the message on the server with CRLF line ends.
func TestSendAccepted(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	code, lines, stderr := runSend(t, env(""), message,
		"-server", srv.Addr, "-tls", "none", "-from", "alice@example.com", "-to", "bob@example.org,carol@example.org")
	want := []string{"bob@example.org 250 2.0.0 OK: queued", "carol@example.org 250 2.0.0 OK: queued"}
	if code != 0 || strings.Join(lines, "\n") != strings.Join(want, "\n") || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and %q", code, lines, stderr, want)
	}
	m := srv.Messages()[0]
	if m.Envelope.From != "alice@example.com" || len(m.Envelope.To) != 2 || string(m.Data) != strings.ReplaceAll(message, "\n", "\r\n") {
		t.Errorf("the server got %+v, %q", m.Envelope, m.Data)
	}
	if m.Auth != nil || m.TLS != nil {
		t.Errorf("auth %+v, TLS %v: want neither", m.Auth, m.TLS != nil)
	}
}

// One recipient refused: exit 1, its line has the server's refusal, and
// the other got the message.
func TestSendOneRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	srv.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "gone@example.org", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}})
	code, lines, stderr := runSend(t, env(""), message,
		"-server", srv.Addr, "-tls", "none", "-from", "alice@example.com", "-to", "bob@example.org,gone@example.org")
	want := []string{"bob@example.org 250 2.0.0 OK: queued", "gone@example.org 550 5.1.1 No such user"}
	if code != 1 || strings.Join(lines, "\n") != strings.Join(want, "\n") || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and %q", code, lines, stderr, want)
	}
	if to := srv.Messages()[0].Envelope.To; len(to) != 1 || to[0].Addr != "bob@example.org" {
		t.Errorf("the server delivered to %+v", to)
	}
}

// A transaction that fails: every recipient has the reply that failed
// it, exit 1, and the error on standard error. A server that cannot be
// reached: no line, exit 1.
func TestSendFails(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	srv.Fail(smtptest.Fault{On: smtptest.MAIL, Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 7, 1}, Message: "Sender refused"}})
	code, lines, stderr := runSend(t, env(""), message,
		"-server", srv.Addr, "-tls", "none", "-from", "alice@example.com", "-to", "bob@example.org,carol@example.org")
	want := []string{"bob@example.org 550 5.7.1 Sender refused", "carol@example.org 550 5.7.1 Sender refused"}
	if code != 1 || strings.Join(lines, "\n") != strings.Join(want, "\n") || !strings.HasPrefix(stderr, "send: ") || !strings.Contains(stderr, "MAIL FROM: 550 5.7.1 Sender refused") {
		t.Errorf("MAIL refused: exit %d, stdout %q, stderr %q", code, lines, stderr)
	}

	closed := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	closed.Close()
	code, lines, stderr = runSend(t, env(""), message,
		"-server", closed.Addr, "-tls", "none", "-from", "alice@example.com", "-to", "bob@example.org")
	if code != 1 || lines != nil || !strings.Contains(stderr, "connect") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("no server: exit %d, stdout %q, stderr %q", code, lines, stderr)
	}
}

// STARTTLS verified with -ca, AUTH as -user with the password from the
// environment, the mechanism of -auth or the strongest; a wrong password
// fails without being printed.
func TestSendAuth(t *testing.T) {
	t.Parallel()
	const key = "shk_example_api_key"
	srv := newServer(t, &smtptest.Options{Users: map[string]string{"apikey": key}})
	ca := caFile(t, srv)
	args := []string{"-server", srv.Addr, "-tls", "starttls", "-ca", ca, "-user", "apikey", "-from", "alice@example.com", "-to", "bob@example.org"}
	for _, tt := range []struct {
		more []string
		mech string
	}{
		{nil, "SCRAM-SHA-256"},
		{[]string{"-auth", "plain"}, "PLAIN"},
		{[]string{"-auth", "LOGIN"}, "LOGIN"},
	} {
		code, lines, stderr := runSend(t, env(key), message, append(args, tt.more...)...)
		if code != 0 || len(lines) != 1 || stderr != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", tt.more, code, lines, stderr)
		}
		msgs := srv.Messages()
		m := msgs[len(msgs)-1]
		if m.Auth == nil || m.Auth.Username != "apikey" || m.Auth.Mechanism != tt.mech || m.TLS == nil {
			t.Errorf("%v: auth %+v, TLS %v; want apikey with %s over TLS", tt.more, m.Auth, m.TLS != nil, tt.mech)
		}
	}

	code, lines, stderr := runSend(t, env("shk_wrong_key"), message, args...)
	if code != 1 || strings.Join(lines, "\n") != "bob@example.org 535 5.7.8 Authentication failed" || !strings.Contains(stderr, "AUTH SCRAM-SHA-256: 535") || strings.Contains(stderr, "shk_wrong_key") {
		t.Errorf("wrong key: exit %d, stdout %q, stderr %q", code, lines, stderr)
	}
	// Without -ca the test certificate is not trusted, and nothing is sent.
	code, _, stderr = runSend(t, env(key), message, "-server", srv.Addr, "-tls", "starttls", "-user", "apikey", "-from", "alice@example.com", "-to", "bob@example.org")
	if code != 1 || !strings.Contains(stderr, "certificate") {
		t.Errorf("untrusted certificate: exit %d, stderr %q", code, stderr)
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("%d messages, want the 3 authenticated", n)
	}
}

// Usage errors exit 2 with one line naming the flag, before any
// connection; the password is never a flag.
func TestSendUsage(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	base := func(more ...string) []string {
		return append([]string{"-server", srv.Addr, "-tls", "none", "-from", "a@example.com", "-to", "b@example.org"}, more...)
	}
	for _, tt := range []struct {
		args   []string
		getenv func(string) string
		want   string
	}{
		{base("-password", "secret"), env(""), "flag provided but not defined: -password"},
		{base("-user", "apikey", "-password", "secret"), env(""), "flag provided but not defined: -password"},
		{base("-user", "apikey"), env(""), "-user needs the password or API key in the environment variable SMARTHOST_PASSWORD"},
		{base("-auth", "PLAIN"), env("k"), "-auth needs -user"},
		{base("-user", "apikey", "-auth", "GSSAPI"), env("k"), `-auth: no usable mechanism: "GSSAPI" is not a mechanism of this package`},
		{[]string{"-tls", "none", "-from", "a@example.com", "-to", "b@example.org"}, env(""), "-server is required"},
		{[]string{"-server", srv.Addr, "-from", "a@example.com", "-to", "b@example.org"}, env(""), "-tls is required"},
		{base("-tls", "opportunistic"), env(""), `-tls "opportunistic": want starttls, implicit or none`},
		{[]string{"-server", "nonsense", "-tls", "none", "-from", "a@example.com", "-to", "b@example.org"}, env(""), `-server "nonsense": want HOST:PORT`},
		{base("-to", "b@example.org,c d@example.org"), env(""), `-to "c d@example.org"`},
		{base("-from", "alice"), env(""), `-from "alice": want local-part@domain`},
		{base("-ca", missing), env(""), "-ca: open " + missing},
		{base("-ca", notPEM), env(""), "-ca " + notPEM + ": no PEM certificate"},
		{base("extra"), env(""), `unexpected argument "extra"`},
	} {
		code, lines, stderr := runSend(t, tt.getenv, message, tt.args...)
		if code != 2 || lines != nil || stderr != "send: "+tt.want+"\n" && !(strings.HasPrefix(stderr, "send: "+tt.want) && strings.Count(stderr, "\n") == 1) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tt.args, code, lines, stderr, tt.want)
		}
	}
	if n := srv.Stats().Connections; n != 0 {
		t.Errorf("%d connections on usage errors", n)
	}

	// The help names the variable, and no password flag.
	_, lines, _ := runSend(t, env(""), "", "-h")
	help := strings.Join(lines, "\n")
	if !strings.Contains(help, "SMARTHOST_PASSWORD") || strings.Contains(help, "-password") || strings.Contains(help, "-pass ") {
		t.Errorf("help:\n%s", help)
	}
}

// Standard input: an empty message is refused (exit 1); "<>" is the null
// sender; non-ASCII addresses go with SMTPUTF8, 8-bit content with
// BODY=8BITMIME.
func TestSendInput(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	args := func(from, to string) []string {
		return []string{"-server", srv.Addr, "-tls", "none", "-from", from, "-to", to}
	}
	if code, _, stderr := runSend(t, env(""), "", args("a@example.com", "b@example.org")...); code != 1 || stderr != "send: standard input: empty message\n" {
		t.Errorf("empty: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runSend(t, env(""), message, args("<>", "postmaster@example.org")...); code != 0 {
		t.Fatalf("null sender: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runSend(t, env(""), "Subject: Grüße\n\nÜber.\n", args("jöran@example.com", "b@example.org")...); code != 0 {
		t.Fatalf("UTF-8: exit %d, stderr %q", code, stderr)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].Envelope.From != "" || msgs[1].Envelope.From != "jöran@example.com" || !msgs[1].Envelope.SMTPUTF8 || msgs[1].Envelope.Body != relay.BodyEightBit {
		t.Errorf("envelopes %+v", msgs)
	}
}
