package relay_test

// Helpers for the tests of the Senders that stack on another: a minimal SMTP
// client that is a relay.Sender, messages that count their readings, and a
// clock that tests move by hand.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// smtpSender is the least SMTP client that is a relay.Sender: one
// connection per message, STARTTLS when the server offers it and tls is set
// (opportunistic, RFC 3207), each recipient's RCPT reply kept, DATA when one
// was accepted. It writes the message through net/smtp's DATA writer, which
// writes a bare LF as CRLF, as any SMTP client must.
type smtpSender struct {
	addr string
	tls  *tls.Config
}

func (c smtpSender) Send(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cl, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		conn.Close()
		return nil, smtpReply(err)
	}
	defer cl.Close()
	if err := cl.Hello("client.test"); err != nil {
		return nil, smtpReply(err)
	}
	if ok, _ := cl.Extension("STARTTLS"); ok && c.tls != nil {
		if err := cl.StartTLS(c.tls); err != nil {
			return nil, smtpReply(err)
		}
	}
	if err := cl.Mail(env.From); err != nil {
		return nil, smtpReply(err)
	}
	rcpt := &relay.Receipt{Host: c.addr, Rcpts: make([]relay.RcptResult, len(env.To))}
	var accepted []int
	for i, to := range env.To {
		rcpt.Rcpts[i].Addr = to.Addr
		if err := cl.Rcpt(to.Addr); err != nil {
			r := smtpReply(err)
			var reply *relay.Reply
			if !errors.As(r, &reply) {
				return nil, r
			}
			rcpt.Rcpts[i].Reply = reply
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		cl.Quit()
		return rcpt, nil
	}
	w, err := cl.Data()
	if err != nil {
		return nil, smtpReply(err)
	}
	rc, err := msg.Open()
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(w, rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, smtpReply(err)
	}
	ok := &relay.Reply{Code: 250, Message: "OK"}
	for _, i := range accepted {
		rcpt.Rcpts[i].Reply = ok
	}
	cl.Quit()
	return rcpt, nil
}

// smtpReply makes a *relay.Reply of a server's reply; other errors are
// returned as they are.
func smtpReply(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	r := &relay.Reply{Code: te.Code, Message: te.Msg}
	if code, text, ok := strings.Cut(te.Msg, " "); ok {
		if e, err := relay.ParseEnhancedCode(code); err == nil {
			r.Enhanced, r.Message = e, text
		}
	}
	return r
}

// newSMTPServer starts an smtptest server for the test.
func newSMTPServer(t *testing.T, opts *smtptest.Options) *smtptest.Server {
	t.Helper()
	srv, err := smtptest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// countedMessage is a relay.Message that counts its Opens.
type countedMessage struct {
	relay.Message
	opens atomic.Int32
}

func (m *countedMessage) Open() (io.ReadCloser, error) {
	m.opens.Add(1)
	return m.Message.Open()
}

// readAll reads a whole Message.
func readAll(t *testing.T, m relay.Message) []byte {
	t.Helper()
	rc, err := m.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// accept is a Sender that accepts every recipient, reading the message,
// with host as Receipt.Host.
func accept(host string) relay.SenderFunc {
	return func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		if rc, err := msg.Open(); err != nil {
			return nil, err
		} else {
			_, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
		}
		r := &relay.Receipt{Host: host}
		for _, to := range env.To {
			r.Rcpts = append(r.Rcpts, relay.RcptResult{Addr: to.Addr, Reply: &relay.Reply{Code: 250, Enhanced: relay.EnhancedCode{2, 0, 0}, Message: "OK " + host}})
		}
		return r, nil
	}
}

// fail is a Sender that fails every transaction with err.
func fail(err error) relay.SenderFunc {
	return func(context.Context, *relay.Envelope, relay.Message) (*relay.Receipt, error) {
		return nil, err
	}
}

// calls records the names of the Senders called, in order.
type calls struct {
	mu    sync.Mutex
	names []string
}

// wrap returns s recording name on each call.
func (c *calls) wrap(name string, s relay.Sender) relay.SenderFunc {
	return func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		c.mu.Lock()
		c.names = append(c.names, name)
		c.mu.Unlock()
		return s.Send(ctx, env, msg)
	}
}

// take returns the names recorded since the last take.
func (c *calls) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.Join(c.names, " ")
	c.names = nil
	return s
}

// manualClock is a clock that moves only when told.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// constReader is an io.Reader of one repeated byte, a randomness source
// whose choices tests know.
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// closedAddr returns a loopback address where nothing listens: a
// connection to it is refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// normalizeCRLF writes every line end as CRLF and ends non-empty text with
// one: the reference for what an SMTP client sends.
func normalizeCRLF(b []byte) []byte {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// hasBareLineEnd reports a CR or LF that is not part of a CRLF.
func hasBareLineEnd(b []byte) bool {
	return bytes.Count(b, []byte("\r")) != bytes.Count(b, []byte("\r\n")) ||
		bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n"))
}
