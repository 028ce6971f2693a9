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
	"sync/atomic"
	"testing"

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
