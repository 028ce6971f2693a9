package relay_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// StartTLS is the default, and it is required: a server without STARTTLS
// gets no message, not even a MAIL FROM.
func TestStartTLSRequired(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	for _, mode := range []relay.TLSMode{"", relay.StartTLS} {
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: mode})
		_, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello)
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
			t.Errorf("mode %q: Send = %v, want a refusal to send without STARTTLS", mode, err)
		}
	}
	if st := srv.Stats(); st.Commands["MAIL"] != 0 || st.Messages != 0 {
		t.Errorf("the server saw %v", st.Commands)
	}

	// Offered but refused (RFC 3207 §4: 454), or failing in the
	// handshake: the Send fails, on its one connection, before MAIL.
	refused := newServer(t, nil)
	refused.Fail(smtptest.Fault{On: smtptest.STARTTLS, Reply: relay.Reply{Code: 454, Enhanced: relay.EnhancedCode{4, 7, 0}, Message: "TLS not available due to temporary reason"}})
	c := newClient(t, refused.Addr, &relay.ClientOptions{RootCAs: refused.CertPool()})
	_, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello)
	if r := replyOf(err); r == nil || r.Code != 454 || !r.Temporary() || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("STARTTLS refused: Send = %v, want the 454", err)
	}
	untrusted := newServer(t, nil)
	c = newClient(t, untrusted.Addr, nil) // the system's roots do not know it
	var unknown x509.UnknownAuthorityError
	if _, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello); !errors.As(err, &unknown) {
		t.Errorf("handshake fails: Send = %v, want x509.UnknownAuthorityError", err)
	}
	for name, s := range map[string]*smtptest.Server{"refused": refused, "handshake fails": untrusted} {
		if st := s.Stats(); st.Connections != 1 || st.Commands["MAIL"] != 0 || st.Messages != 0 {
			t.Errorf("%s: %d connections, commands %v: want one, and no MAIL", name, st.Connections, st.Commands)
		}
	}
}

func TestStartTLS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
	rec := send(t, c, envelope("a@example.com", "b@example.org"), hello)
	if rec.TLS == nil || len(rec.TLS.VerifiedChains) == 0 || rec.TLS.Version < tls.VersionTLS12 {
		t.Errorf("Receipt.TLS = %+v, want verified TLS 1.2 or later", rec.TLS)
	}
	m := srv.Messages()[0]
	if m.TLS == nil {
		t.Error("the server got the message in plaintext")
	}
	if st := srv.Stats(); st.Commands["STARTTLS"] != 1 || st.Commands["EHLO"] != 2 {
		t.Errorf("commands %v, want STARTTLS and EHLO again after it", st.Commands)
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.ImplicitTLS})
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.ImplicitTLS, RootCAs: srv.CertPool()})
	rec := send(t, c, envelope("a@example.com", "b@example.org"), hello)
	if rec.TLS == nil || len(rec.TLS.VerifiedChains) == 0 {
		t.Errorf("Receipt.TLS = %+v, want verified TLS", rec.TLS)
	}
	if srv.Messages()[0].TLS == nil {
		t.Error("the server got the message in plaintext")
	}
	if n := srv.Stats().Commands["STARTTLS"]; n != 0 {
		t.Errorf("STARTTLS sent %d times on implicit TLS", n)
	}

	// Implicit TLS to a plaintext server fails in the handshake.
	plain := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	c = newClient(t, plain.Addr, &relay.ClientOptions{TLS: relay.ImplicitTLS, RootCAs: srv.CertPool()})
	if _, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("implicit TLS to plaintext: %v, want a handshake error", err)
	}
	if st := plain.Stats(); st.Messages != 0 || st.Connections != 1 {
		t.Errorf("%d messages on %d connections: want no plaintext retry", st.Messages, st.Connections)
	}
}

// Opportunistic TLS: TLS when offered, verified or not; plaintext when not
// offered; plaintext on a new connection when the handshake fails. The
// Receipt says which.
func TestOpportunisticTLS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	plain := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	env := envelope("a@example.com", "b@example.org")

	t.Run("verified", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS, RootCAs: srv.CertPool()})
		rec := send(t, c, env, hello)
		if rec.TLS == nil || len(rec.TLS.VerifiedChains) == 0 {
			t.Errorf("Receipt.TLS = %+v, want verified TLS", rec.TLS)
		}
	})
	t.Run("unverified", func(t *testing.T) {
		t.Parallel()
		// The system's roots do not know the test certificate.
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS})
		rec := send(t, c, env, hello)
		if rec.TLS == nil || len(rec.TLS.VerifiedChains) != 0 {
			t.Errorf("Receipt.TLS = %+v, want TLS without a verified chain", rec.TLS)
		}
	})
	t.Run("not offered", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, plain.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS})
		rec := send(t, c, env, hello)
		if rec.TLS != nil {
			t.Errorf("Receipt.TLS = %+v over a plaintext server", rec.TLS)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, nil)
		s.Fail(smtptest.Fault{On: smtptest.STARTTLS, Reply: relay.Reply{Code: 454, Enhanced: relay.EnhancedCode{4, 7, 0}, Message: "TLS not available due to temporary reason"}})
		c := newClient(t, s.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS, RootCAs: s.CertPool()})
		rec := send(t, c, env, hello)
		if rec.TLS != nil {
			t.Errorf("Receipt.TLS = %+v after a refused STARTTLS", rec.TLS)
		}
		// The same connection goes on in plaintext.
		if st := s.Stats(); st.Connections != 1 || st.Commands["STARTTLS"] != 1 || s.Messages()[0].TLS != nil {
			t.Errorf("%d connections, commands %v", st.Connections, st.Commands)
		}
	})
	t.Run("handshake fails", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, nil)
		refuse := &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return errors.New("no") }}
		c := newClient(t, s.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS, TLSConfig: refuse})
		rec := send(t, c, env, hello)
		if rec.TLS != nil {
			t.Errorf("Receipt.TLS = %+v, want plaintext after the failed handshake", rec.TLS)
		}
		if st := s.Stats(); st.Connections != 2 || s.Messages()[0].TLS != nil {
			t.Errorf("%d connections, want a second one in plaintext", st.Connections)
		}
	})
}

// NoTLS is plaintext, and never tries STARTTLS even when offered.
func TestNoTLS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS})
	rec := send(t, c, envelope("a@example.com", "b@example.org"), hello)
	if rec.TLS != nil || srv.Messages()[0].TLS != nil {
		t.Error("TLS with mode none")
	}
	if n := srv.Stats().Commands["STARTTLS"]; n != 0 {
		t.Errorf("STARTTLS sent %d times", n)
	}
}

func TestCertificateVerification(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	env := envelope("a@example.com", "b@example.org")
	sendErr := func(addr string, opts *relay.ClientOptions) error {
		_, err := newClient(t, addr, opts).Send(ctx(t), env, hello)
		return err
	}

	// The system's roots do not know the server's CA.
	var unknown x509.UnknownAuthorityError
	if err := sendErr(srv.Addr, nil); !errors.As(err, &unknown) {
		t.Errorf("unknown CA: %v, want x509.UnknownAuthorityError", err)
	}
	// A certificate valid for another name.
	var wrongName x509.HostnameError
	err := sendErr(srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), TLSConfig: &tls.Config{ServerName: "mail.example.com"}})
	if !errors.As(err, &wrongName) {
		t.Errorf("another name: %v, want x509.HostnameError", err)
	}
	// The CA given by RootCAs, or in TLSConfig.
	if err := sendErr(srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()}); err != nil {
		t.Errorf("RootCAs: %v", err)
	}
	if err := sendErr(srv.Addr, &relay.ClientOptions{TLSConfig: &tls.Config{RootCAs: srv.CertPool()}}); err != nil {
		t.Errorf("TLSConfig.RootCAs: %v", err)
	}
	if srv.Stats().Messages != 2 {
		t.Errorf("%d messages, want those of the two verified connections", srv.Stats().Messages)
	}
}

// The server name is the host of the address: sent in SNI and checked
// against the certificate.
func TestServerNameFromHost(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	w := &wire{target: srv.Addr}
	_, port, _ := strings.Cut(srv.Addr, ":")
	c := newClient(t, "localhost:"+port, &relay.ClientOptions{RootCAs: srv.CertPool(), Dial: w.dial})
	send(t, c, envelope("a@example.com", "b@example.org"), hello)
	if sni := srv.Messages()[0].TLS.ServerName; sni != "localhost" {
		t.Errorf("SNI %q, want localhost", sni)
	}

	c = newClient(t, "mail.example.com:"+port, &relay.ClientOptions{RootCAs: srv.CertPool(), Dial: w.dial})
	var wrongName x509.HostnameError
	if _, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello); !errors.As(err, &wrongName) {
		t.Errorf("mail.example.com: %v, want x509.HostnameError", err)
	}
}

// TLS 1.2 is the minimum, whatever the configuration says.
func TestTLSMinVersion(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLSConfig: &tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12}})
	rec := send(t, c, envelope("a@example.com", "b@example.org"), hello)
	if rec.TLS.Version != tls.VersionTLS12 {
		t.Errorf("version %s", tls.VersionName(rec.TLS.Version))
	}
	if _, err := relay.NewClient(srv.Addr, &relay.ClientOptions{TLSConfig: &tls.Config{MaxVersion: tls.VersionTLS11}}); err == nil {
		t.Error("NewClient took a MaxVersion below TLS 1.2")
	}
}
