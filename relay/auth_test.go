package relay_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

var (
	users  = map[string]string{"alice": "wonderland"}
	tokens = map[string]string{"alice": "ya29.token"}
	alice  = &sasl.Credentials{Username: "alice", Password: "wonderland"}
)

// Every mechanism, forced, against a server offering them all.
func TestAuthMechanisms(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{Users: users, Tokens: tokens})
	for _, mech := range []string{sasl.SCRAMSHA256, sasl.SCRAMSHA1, sasl.CRAMMD5, sasl.Plain, sasl.Login, sasl.XOAuth2} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			cred := alice
			if mech == sasl.XOAuth2 {
				cred = &sasl.Credentials{Username: "alice", Token: "ya29.token"}
			}
			c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: cred, Mechanism: mech})
			env := envelope(mech+"@example.com", "b@example.org")
			send(t, c, env, hello)
			for _, m := range srv.Messages() {
				if m.Envelope.From == env.From && (m.Auth == nil || m.Auth.Mechanism != mech || m.Auth.Username != "alice") {
					t.Errorf("authenticated as %+v, want alice with %s", m.Auth, mech)
				}
			}
		})
	}
}

// Without Mechanism, the strongest both sides have.
func TestAuthChoice(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		offered []string
		cred    *sasl.Credentials
		want    string
	}{
		{nil, alice, sasl.SCRAMSHA256},
		{[]string{sasl.Plain, sasl.Login, sasl.SCRAMSHA1}, alice, sasl.SCRAMSHA1},
		{[]string{sasl.Login, sasl.CRAMMD5}, alice, sasl.CRAMMD5},
		{[]string{sasl.Login, sasl.Plain}, alice, sasl.Plain},
		{[]string{sasl.Login}, alice, sasl.Login},
		{nil, &sasl.Credentials{Username: "alice", Token: "ya29.token"}, sasl.XOAuth2},
	} {
		srv := newServer(t, &smtptest.Options{Users: users, Tokens: tokens, Mechanisms: tt.offered})
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: tt.cred})
		send(t, c, envelope("a@example.com", "b@example.org"), hello)
		if got := srv.Messages()[0].Auth.Mechanism; got != tt.want {
			t.Errorf("offered %v: chose %s, want %s", tt.offered, got, tt.want)
		}
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{Users: users, Mechanisms: []string{sasl.Plain, sasl.SCRAMSHA256}})
	env := envelope("a@example.com", "b@example.org")

	// Wrong password: the server's refusal, permanent.
	for _, mech := range []string{sasl.Plain, sasl.SCRAMSHA256} {
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Mechanism: mech,
			Credentials: &sasl.Credentials{Username: "alice", Password: "looking-glass"}})
		_, err := c.Send(ctx(t), env, hello)
		if r := replyOf(err); r == nil || !r.Permanent() || r.Code != 535 {
			t.Errorf("%s with a wrong password: %v, want a permanent 535 reply", mech, err)
		}
	}
	// A mechanism the server does not offer.
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: alice, Mechanism: sasl.CRAMMD5})
	if _, err := c.Send(ctx(t), env, hello); err == nil || !strings.Contains(err.Error(), "does not offer AUTH CRAM-MD5") {
		t.Errorf("CRAM-MD5 not offered: %v", err)
	}
	// No mechanism the credentials can use.
	c = newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: &sasl.Credentials{Username: "alice", Token: "t"}})
	if _, err := c.Send(ctx(t), env, hello); !errors.Is(err, sasl.ErrNoMechanism) {
		t.Errorf("token without XOAUTH2: %v, want sasl.ErrNoMechanism", err)
	}
	// A server without AUTH, to a client with credentials.
	open := newServer(t, nil)
	c = newClient(t, open.Addr, &relay.ClientOptions{RootCAs: open.CertPool(), Credentials: alice})
	if _, err := c.Send(ctx(t), env, hello); err == nil || !strings.Contains(err.Error(), "does not offer AUTH") {
		t.Errorf("no AUTH: %v", err)
	}
	if srv.Stats().Messages+open.Stats().Messages != 0 {
		t.Error("a message went unauthenticated")
	}
}

// Credentials never go in plaintext, nor over opportunistic TLS that is
// not verified, except to loopback with AllowInsecureAuth.
func TestAuthNeedsTLS(t *testing.T) {
	t.Parallel()
	// A plaintext server that would take AUTH.
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Users: users, AllowInsecureAuth: true})
	env := envelope("a@example.com", "b@example.org")

	if _, err := relay.NewClient(srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Credentials: alice}); err == nil {
		t.Error("NewClient took credentials with TLS mode none")
	}
	// Opportunistic TLS to a server without STARTTLS: no AUTH.
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS, Credentials: alice})
	if _, err := c.Send(ctx(t), env, hello); err == nil || !strings.Contains(err.Error(), "never sent before TLS") {
		t.Errorf("opportunistic, no STARTTLS: %v", err)
	}
	// Opportunistic TLS with a certificate that is not verified: no
	// AUTH; verified, AUTH.
	tlsSrv := newServer(t, &smtptest.Options{Users: users})
	c = newClient(t, tlsSrv.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS, Credentials: alice})
	if _, err := c.Send(ctx(t), env, hello); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Errorf("opportunistic, unverified: %v", err)
	}
	if n := tlsSrv.Stats().Commands["AUTH"]; n != 0 {
		t.Errorf("AUTH sent %d times over unverified TLS", n)
	}
	c = newClient(t, tlsSrv.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS, Credentials: alice, RootCAs: tlsSrv.CertPool()})
	send(t, c, env, hello)
	if m := tlsSrv.Messages()[0]; m.Auth == nil || m.TLS == nil {
		t.Errorf("opportunistic, verified: auth %+v", m.Auth)
	}
	// AllowInsecureAuth, to an address that is not loopback.
	w := &wire{remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.25"), Port: 587}}
	c = newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Credentials: alice, AllowInsecureAuth: true, Dial: w.dial})
	if _, err := c.Send(ctx(t), env, hello); err == nil || !strings.Contains(err.Error(), "never sent before TLS") {
		t.Errorf("AllowInsecureAuth to 192.0.2.25: %v", err)
	}
	if n := srv.Stats().Commands["AUTH"]; n != 0 {
		t.Errorf("AUTH sent %d times in plaintext", n)
	}

	// A server that offers AUTH before STARTTLS gets it after, even
	// from a client that would allow it in plaintext: the fixture
	// refuses STARTTLS after AUTH, so the other order fails the Send.
	both := newServer(t, &smtptest.Options{Users: users, AllowInsecureAuth: true})
	for _, insecure := range []bool{false, true} {
		c = newClient(t, both.Addr, &relay.ClientOptions{RootCAs: both.CertPool(), Credentials: alice, AllowInsecureAuth: insecure})
		send(t, c, env, hello)
	}
	for _, m := range both.Messages() {
		if m.Auth == nil || m.TLS == nil {
			t.Errorf("STARTTLS and AUTH offered: auth %+v, TLS %v", m.Auth, m.TLS != nil)
		}
	}

	// To loopback, with AllowInsecureAuth, it goes.
	c = newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Credentials: alice, AllowInsecureAuth: true})
	send(t, c, env, hello)
	if m := srv.Messages()[0]; m.Auth == nil || m.TLS != nil {
		t.Errorf("auth %+v, TLS %v: want AUTH in plaintext", m.Auth, m.TLS != nil)
	}
}

// The log has one record per Send, and never the password, in clear or
// as PLAIN sends it.
func TestLogHasNoSecrets(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{Users: users, Mechanisms: []string{sasl.Plain}})
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: alice, Logger: log})
	send(t, c, envelope("a@example.com", "b@example.org"), hello)
	bad := &sasl.Credentials{Username: "alice", Password: "looking-glass"}
	c = newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: bad, Logger: log})
	c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello)

	out := buf.String()
	for _, secret := range []string{"wonderland", "looking-glass",
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wonderland")),
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00looking-glass"))} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	if n := strings.Count(out, "msg=\"relay: send\""); n != 2 {
		t.Errorf("%d records, want one per Send:\n%s", n, out)
	}
	if !strings.Contains(out, "auth=PLAIN") || !strings.Contains(out, "535") {
		t.Errorf("the log lacks the mechanism or the refusal:\n%s", out)
	}
}
