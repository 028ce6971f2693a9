package relay_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// NewClient refuses options that cannot work, before any connection.
func TestNewClientErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr string
		opts *relay.ClientOptions
		want string
	}{
		{"smtp.example.com", nil, "missing port"},
		{":587", nil, "no host"},
		{"smtp.example.com:smtp", nil, "port"},
		{"smtp.example.com:0", nil, "port"},
		{"smtp.example.com:587", &relay.ClientOptions{TLS: "tls"}, `TLS mode "tls"`},
		{"smtp.example.com:587", &relay.ClientOptions{LocalName: "me\r\nMAIL FROM:<x>"}, "LocalName"},
		{"smtp.example.com:587", &relay.ClientOptions{LocalName: "me x"}, "LocalName"},
		{"smtp.example.com:587", &relay.ClientOptions{Mechanism: sasl.Plain}, "without Credentials"},
		{"smtp.example.com:587", &relay.ClientOptions{Credentials: &sasl.Credentials{Username: "apikey"}}, "a Password or a Token"},
		{"smtp.example.com:587", &relay.ClientOptions{Credentials: &sasl.Credentials{Username: "u", Password: "p"}, Mechanism: "GSSAPI"}, "GSSAPI"},
		{"smtp.example.com:587", &relay.ClientOptions{Credentials: &sasl.Credentials{Username: "u", Password: "p"}, Mechanism: sasl.XOAuth2}, "token"},
		{"smtp.example.com:25", &relay.ClientOptions{TLS: relay.NoTLS, Credentials: &sasl.Credentials{Username: "u", Password: "p"}}, "plaintext"},
		{"smtp.example.com:587", &relay.ClientOptions{ChunkSize: -1}, "ChunkSize"},
	} {
		_, err := relay.NewClient(tt.addr, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewClient(%q, %+v) = %v, want an error about %q", tt.addr, tt.opts, err, tt.want)
		}
	}
	for _, addr := range []string{"smtp.example.com:587", "[2001:db8::25]:465", "192.0.2.1:25"} {
		if _, err := relay.NewClient(addr, nil); err != nil {
			t.Errorf("NewClient(%q): %v", addr, err)
		}
	}
}

// A server's limit on recipients: those over it are refused for now (452),
// the others get the message.
func TestTooManyRecipients(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{MaxRecipients: 3})
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
	var to []string
	for i := range 5 {
		to = append(to, fmt.Sprintf("r%d@example.org", i))
	}
	rec := send(t, c, envelope("a@example.com", to...), hello)
	for i, r := range rec.Rcpts {
		if accepted := i < 3; r.Accepted() != accepted || !accepted && !r.Reply.Temporary() {
			t.Errorf("%s: %+v", r.Addr, r.Reply)
		}
	}
	if n := len(srv.Messages()[0].Envelope.To); n != 3 {
		t.Errorf("the server delivered to %d", n)
	}
}

// The EHLO name: the local address as an address literal, or LocalName.
func TestLocalName(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	send(t, newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()}), envelope("a@example.com", "b@example.org"), hello)
	send(t, newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), LocalName: "mail.example.com"}), envelope("a@example.com", "b@example.org"), hello)
	msgs := srv.Messages()
	if msgs[0].Helo != "[127.0.0.1]" || msgs[1].Helo != "mail.example.com" {
		t.Errorf("EHLO %q and %q", msgs[0].Helo, msgs[1].Helo)
	}
}
