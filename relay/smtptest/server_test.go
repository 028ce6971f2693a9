package smtptest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

func newServer(t *testing.T, opts *smtptest.Options) *smtptest.Server {
	t.Helper()
	s, err := smtptest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *smtptest.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialStartTLS(t *testing.T, s *smtptest.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(s.Addr, s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func login(t *testing.T, c *smtp.Client, mech, user, password string) {
	t.Helper()
	a, err := sasl.NewClient(mech, sasl.Credentials{Username: user, Password: password, Token: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(a); err != nil {
		t.Fatalf("AUTH %s: %v", mech, err)
	}
	if err := sasl.Complete(a); err != nil {
		t.Fatalf("AUTH %s: %v", mech, err)
	}
}

// send runs one transaction and returns the error of its first failing
// step.
func send(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

func wait(t *testing.T, s *smtptest.Server, n int) []*smtptest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := s.WaitMessages(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

const body = "From: a@example.com\r\nSubject: test\r\n\r\nHello.\r\n..a line with a dot\r\n"

// STARTTLS, AUTH PLAIN and a transaction with DSN options: the server
// keeps the message, its envelope, TLS state and identity.
func TestStartTLSAuthPlain(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{Users: map[string]string{"alice": "wonderland"}})
	c := dialStartTLS(t, s)
	if ok, _ := c.Extension("AUTH"); !ok {
		t.Fatal("no AUTH after STARTTLS")
	}
	login(t, c, sasl.Plain, "alice", "wonderland")
	err := c.Mail("bounce@example.com", &smtp.MailOptions{Return: smtp.DSNReturnHeaders, EnvelopeID: "env+1", UTF8: true, RequireTLS: true, Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.org", &smtp.RcptOptions{
		Notify:                []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
		OriginalRecipientType: smtp.DSNAddressTypeRFC822,
		OriginalRecipient:     "bob@example.org",
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("carol@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(body))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	m := wait(t, s, 1)[0]
	want := relay.Envelope{
		From: "bounce@example.com",
		To: []relay.Recipient{
			{Addr: "bob@example.org", Notify: []relay.DSNNotify{relay.NotifyFailure, relay.NotifyDelay}, ORcpt: "rfc822;bob@example.org"},
			{Addr: "carol@example.org"},
		},
		SMTPUTF8:   true,
		Body:       relay.BodyEightBit,
		RequireTLS: true,
		Return:     relay.ReturnHeaders,
		EnvID:      "env+1",
	}
	if !reflect.DeepEqual(m.Envelope, want) {
		t.Errorf("envelope\n%+v, want\n%+v", m.Envelope, want)
	}
	if string(m.Data) != body {
		t.Errorf("data %q, want %q", m.Data, body)
	}
	if m.TLS == nil || !m.TLS.HandshakeComplete {
		t.Errorf("TLS state %v", m.TLS)
	}
	if m.Auth == nil || *m.Auth != (smtptest.Auth{Mechanism: "PLAIN", Username: "alice"}) {
		t.Errorf("auth %+v", m.Auth)
	}
	if m.Helo != "localhost" || m.RemoteAddr.Addr().String() != "127.0.0.1" || m.Size != int64(len(body)) || m.BDAT {
		t.Errorf("helo %q, remote %v, size %d, BDAT %v", m.Helo, m.RemoteAddr, m.Size, m.BDAT)
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.ImplicitTLS})
	c, err := smtp.DialTLS(s.Addr, s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on a TLS connection")
	}
	if ok, _ := c.Extension("REQUIRETLS"); !ok {
		t.Error("REQUIRETLS not offered on a TLS connection")
	}
	if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	if m := wait(t, s, 1)[0]; m.TLS == nil || m.TLS.ServerName != "localhost" {
		t.Errorf("TLS state %+v", m.TLS)
	}
	// A plaintext client gets no greeting it can read.
	raw, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte("EHLO x\r\n"))
	if line, err := textproto.NewReader(newBufReader(raw)).ReadLine(); err == nil && strings.HasPrefix(line, "220") {
		t.Errorf("plaintext client got %q", line)
	}
}

// AUTH is neither offered nor accepted before TLS, unless
// AllowInsecureAuth; MAIL needs it when the server has users.
func TestAuthBeforeTLS(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": "wonderland"}
	s := newServer(t, &smtptest.Options{Users: users})
	c := dial(t, s)
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before TLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered")
	}
	a, _ := sasl.NewClient(sasl.Plain, sasl.Credentials{Username: "alice", Password: "wonderland"})
	checkReply(t, c.Auth(a), 538, relay.EnhancedCode{5, 7, 11})
	checkReply(t, c.Mail("a@example.com", nil), 530, relay.EnhancedCode{5, 7, 0})

	s = newServer(t, &smtptest.Options{Users: users, AllowInsecureAuth: true, TLS: smtptest.NoTLS})
	c = dial(t, s)
	c.Hello("client.example")
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered with NoTLS")
	}
	login(t, c, sasl.Plain, "alice", "wonderland")
	if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	if m := wait(t, s, 1)[0]; m.TLS != nil || m.Auth == nil {
		t.Errorf("TLS %v, auth %v", m.TLS, m.Auth)
	}
}

// Every mechanism of relay/sasl authenticates through go-smtp's client,
// SCRAM's final server message included; a wrong password gets 535.
func TestAuthMechanisms(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{
		Users:  map[string]string{"alice": "wonderland"},
		Tokens: map[string]string{"alice": "wonderland"},
	})
	c := dialStartTLS(t, s)
	_, offered := c.Extension("AUTH")
	if want := "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN XOAUTH2"; offered != want {
		t.Errorf("AUTH %s, want %s", offered, want)
	}
	for _, mech := range strings.Fields(offered) {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c := dialStartTLS(t, s)
			a, _ := sasl.NewClient(mech, sasl.Credentials{Username: "alice", Password: "wrong", Token: "wrong"})
			checkReply(t, c.Auth(a), 535, relay.EnhancedCode{5, 7, 8})
			c = dialStartTLS(t, s)
			login(t, c, mech, "alice", "wonderland")
			if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Cleanup(func() {
		for _, m := range s.Messages() {
			if m.Auth == nil || m.Auth.Username != "alice" {
				t.Errorf("message authenticated as %v", m.Auth)
			}
		}
	})

	// Mechanisms limits and orders what is offered.
	limited := newServer(t, &smtptest.Options{Users: map[string]string{"a": "b"}, Mechanisms: []string{"login", "CRAM-MD5"}})
	c = dialStartTLS(t, limited)
	if _, got := c.Extension("AUTH"); got != "LOGIN CRAM-MD5" {
		t.Errorf("AUTH %s, want LOGIN CRAM-MD5", got)
	}
	a, _ := sasl.NewClient(sasl.Plain, sasl.Credentials{Username: "a", Password: "b"})
	checkReply(t, c.Auth(a), 504, relay.EnhancedCode{5, 7, 4})
}

func checkReply(t *testing.T, err error, code int, enh relay.EnhancedCode) {
	t.Helper()
	var e *smtp.SMTPError
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want an SMTP reply %d %v", err, code, enh)
	}
	if e.Code != code || relay.EnhancedCode(e.EnhancedCode) != enh {
		t.Errorf("reply %d %v %q, want %d %v", e.Code, e.EnhancedCode, e.Message, code, enh)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []*smtptest.Options{
		{Disable: []string{"STARTTLS"}},
		{Users: map[string]string{"u": "bell\x07"}},
		{Users: map[string]string{"u": "p"}, Mechanisms: []string{"DIGEST-MD5"}},
	} {
		if s, err := smtptest.NewServer(o); err == nil {
			s.Close()
			t.Errorf("NewServer(%+v) succeeded", o)
		}
	}
}

// Disabled extensions are not advertised, and using them anyway is
// refused where the fixture can tell.
func TestDisable(t *testing.T) {
	t.Parallel()
	all := []string{"PIPELINING", "CHUNKING", "8BITMIME", "SIZE", "SMTPUTF8", "DSN", "REQUIRETLS", "BINARYMIME"}
	s := newServer(t, &smtptest.Options{TLS: smtptest.ImplicitTLS})
	c, err := smtp.DialTLS(s.Addr, s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ext := range append(all, "ENHANCEDSTATUSCODES") {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not offered by default", ext)
		}
	}
	s = newServer(t, &smtptest.Options{TLS: smtptest.ImplicitTLS, Disable: all})
	c, err = smtp.DialTLS(s.Addr, s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ext := range all {
		if ok, _ := c.Extension(ext); ok {
			t.Errorf("%s offered though disabled", ext)
		}
	}
	if ok, _ := c.Extension("ENHANCEDSTATUSCODES"); !ok {
		t.Error("ENHANCEDSTATUSCODES went with the others")
	}

	r := dialRaw(t, newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: []string{"8BITMIME", "SIZE", "CHUNKING"}}))
	r.expect("EHLO x", 250)
	r.expect("MAIL FROM:<a@example.com> BODY=8BITMIME", 555)
	r.expect("MAIL FROM:<a@example.com> SIZE=10", 555)
	r.expect("MAIL FROM:<a@example.com>", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.write("BDAT 5 LAST\r\nHello")
	r.read(502)
	r.expect("NOOP", 250) // the chunk was not taken for commands
}

// BDAT chunks (RFC 3030) make one message; BINARYMIME is accepted.
func TestBDAT(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	r := dialRaw(t, s)
	r.expect("EHLO x", 250)
	r.expect("MAIL FROM:<a@example.com> BODY=BINARYMIME", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.write("BDAT 8\r\nSubject:")
	r.read(250)
	r.write("BDAT 13\r\n x\r\n\r\n.\r\nbin\x00")
	r.read(250)
	r.expect("BDAT 0 LAST", 250)
	m := wait(t, s, 1)[0]
	if want := "Subject: x\r\n\r\n.\r\nbin\x00"; string(m.Data) != want || !m.BDAT || m.Envelope.Body != relay.BodyBinary {
		t.Errorf("message %q BDAT %v body %q; want %q, BDAT, BINARYMIME", m.Data, m.BDAT, m.Envelope.Body, want)
	}
	// Then DATA on the same connection.
	r.expect("MAIL FROM:<a@example.com>", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.expect("DATA", 354)
	r.expect("x\r\n.", 250)
	if m := wait(t, s, 2)[1]; string(m.Data) != "x\r\n" || m.BDAT {
		t.Errorf("DATA message %q, BDAT %v", m.Data, m.BDAT)
	}
}

// A client that pipelines (RFC 2920) gets every reply, in order, and the
// fixture still sees each command.
func TestPipelining(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	r := dialRaw(t, s)
	r.expect("EHLO x", 250)
	r.write("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
	for _, code := range []int{250, 250, 250, 354} {
		r.read(code)
	}
	r.write("Hi.\r\n.\r\nRSET\r\nQUIT\r\n")
	for _, code := range []int{250, 250, 221} {
		r.read(code)
	}
	wait(t, s, 1)
	st := s.Stats()
	want := map[string]int{"EHLO": 1, "MAIL": 1, "RCPT": 2, "DATA": 1, "RSET": 1, "QUIT": 1}
	if !reflect.DeepEqual(st.Commands, want) || st.Connections != 1 || st.Transactions != 1 || st.Messages != 1 {
		t.Errorf("stats %+v, want commands %v and one of the rest", st, want)
	}
}

// Plaintext sent after STARTTLS, before TLS, is discarded (the STARTTLS
// command injection of CVE-2011-0411), and EHLO is needed again.
func TestSTARTTLSInjection(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	r := dialRaw(t, s)
	r.expect("EHLO x", 250)
	r.write("STARTTLS\r\nRSET\r\n")
	r.read(220)
	tc := tls.Client(r.c, s.TLSConfig()) // its ServerName is localhost
	tc.HandshakeContext(context.Background())
	tp := textproto.NewConn(tc)
	for _, step := range []struct {
		cmd  string
		code int
	}{{"MAIL FROM:<a@example.com>", 503}, {"EHLO x", 250}, {"MAIL FROM:<a@example.com>", 250}} {
		tp.PrintfLine("%s", step.cmd)
		if code, msg, err := tp.ReadResponse(0); code != step.code {
			t.Errorf("%s: %d %s %v, want %d", step.cmd, code, msg, err, step.code)
		}
	}
	if n := s.Stats().Commands["RSET"]; n != 0 {
		t.Errorf("the injected RSET was read (%d)", n)
	}
}

func TestWaitMessages(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if msgs, err := s.WaitMessages(ctx, 1); !errors.Is(err, context.Canceled) || len(msgs) != 0 {
		t.Errorf("WaitMessages with nothing: %v, %v", msgs, err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := smtp.Dial(s.Addr)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		for range 3 {
			if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
				done <- err
				return
			}
		}
		done <- c.Quit()
	}()
	if msgs := wait(t, s, 3); len(msgs) != 3 {
		t.Errorf("%d messages", len(msgs))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Connections != 1 || st.Transactions != 3 || st.Commands["EHLO"] != 1 {
		t.Errorf("stats %+v: want one connection reused for three transactions", st)
	}
}

// Close ends the sessions of connected clients and returns once they are
// over; what was received stays readable.
func TestClose(t *testing.T) {
	t.Parallel()
	s, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS, Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", s.Addr) // its greeting is delayed
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	s.SetDelay(0)
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.com", nil); err != nil { // a transaction under way
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", nil); err == nil {
		t.Error("the session goes on after Close")
	}
	if len(s.Messages()) != 1 || s.Stats().Connections != 2 {
		t.Errorf("after Close: %d messages, stats %+v", len(s.Messages()), s.Stats())
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The fixture finds the end of DATA where go-smtp does, wherever the
// client's writes split it: "." alone after CRLF, not after a bare LF.
func TestDataEndLine(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	r := dialRaw(t, s)
	r.expect("EHLO x", 250)
	r.expect("MAIL FROM:<a@example.com>", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.expect("DATA", 354)
	for _, part := range []string{"..dot\r\na\n.\r\nb\r", "\n.", "\r", "\n"} {
		r.write(part)
	}
	r.read(250)
	r.expect("NOOP", 250)
	if m := wait(t, s, 1)[0]; string(m.Data) != ".dot\r\na\n.\r\nb\r\n" {
		t.Errorf("message %q", m.Data)
	}
}

// A line longer than go-smtp takes is refused, and the connection closed.
func TestLongLine(t *testing.T) {
	t.Parallel()
	r := dialRaw(t, newServer(t, &smtptest.Options{TLS: smtptest.NoTLS}))
	r.write("NOOP " + strings.Repeat("x", 10000) + "\r\n")
	r.read(500)
	r.closed()
}
