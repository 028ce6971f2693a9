package smtptest

import (
	"errors"
	"io"
	"slices"
	"strings"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
)

// session is go-smtp's session of one connection: it checks AUTH and the
// options of MAIL, and keeps messages.
type session struct {
	s    *Server
	c    *conn
	sc   *smtp.Conn
	env  relay.Envelope
	size int64
}

func (s *Server) newSession(sc *smtp.Conn) (smtp.Session, error) {
	c, ok := sc.Conn().(*conn)
	if !ok {
		return nil, errors.New("smtptest: connection not from the fixture")
	}
	return &session{s: s, c: c, sc: sc}, nil
}

func smtpError(code int, enh relay.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enh), Message: msg}
}

// authAllowed: AUTH is offered on TLS, or before it if the options say so.
func (ss *session) authAllowed() bool {
	return len(ss.s.mechs) > 0 && (ss.c.tlsState() != nil || ss.s.opts.AllowInsecureAuth)
}

func (ss *session) AuthMechanisms() []string {
	if !ss.authAllowed() {
		return nil
	}
	return ss.s.mechs
}

func (ss *session) Auth(mech string) (gosasl.Server, error) {
	if !slices.Contains(ss.s.mechs, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if !ss.authAllowed() {
		return nil, smtpError(538, relay.EnhancedCode{5, 7, 11}, "Encryption required for requested authentication mechanism")
	}
	srv, err := ss.s.users.NewServer(mech)
	if err != nil {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return &authServer{srv: srv, c: ss.c}, nil
}

// authServer turns the errors of relay/sasl into SMTP replies (RFC 4954
// §6) and records who authenticated.
type authServer struct {
	srv *sasl.Server
	c   *conn
}

func (a *authServer) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := a.srv.Next(response)
	switch {
	case errors.Is(err, sasl.ErrAuthFailed):
		return nil, false, smtp.ErrAuthFailed
	case errors.Is(err, sasl.ErrSyntax), errors.Is(err, sasl.ErrUnexpected):
		return nil, false, smtpError(501, relay.EnhancedCode{5, 5, 2}, "Malformed authentication data")
	case err != nil:
		return nil, false, smtpError(454, relay.EnhancedCode{4, 7, 0}, "Temporary authentication failure")
	}
	if done {
		a.c.setIdentity(&Auth{Mechanism: a.srv.Mechanism(), Username: a.srv.Username()})
	}
	return challenge, done, nil
}

func (ss *session) Reset() { ss.env, ss.size = relay.Envelope{}, 0 }

func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	ss.Reset()
	switch {
	case ss.s.needAuth && ss.c.identity() == nil:
		return smtpError(530, relay.EnhancedCode{5, 7, 0}, "Authentication required")
	case opts.RequireTLS && ss.c.tlsState() == nil:
		return smtpError(530, relay.EnhancedCode{5, 7, 10}, "REQUIRETLS needs a TLS connection")
	case opts.Body == smtp.Body8BitMIME && ss.s.disabled["8BITMIME"]:
		return smtpError(555, relay.EnhancedCode{5, 5, 4}, "BODY=8BITMIME is not offered")
	case opts.Size != 0 && ss.s.disabled["SIZE"]:
		return smtpError(555, relay.EnhancedCode{5, 5, 4}, "SIZE is not offered")
	}
	ss.env = relay.Envelope{
		From:       from,
		SMTPUTF8:   opts.UTF8,
		RequireTLS: opts.RequireTLS,
		Return:     relay.DSNReturn(opts.Return),
		EnvID:      opts.EnvelopeID,
	}
	switch opts.Body {
	case smtp.Body8BitMIME:
		ss.env.Body = relay.BodyEightBit
	case smtp.BodyBinaryMIME:
		ss.env.Body = relay.BodyBinary
	}
	ss.size = opts.Size
	ss.s.count(func(st *Stats) { st.Transactions++ })
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	r := relay.Recipient{Addr: to}
	for _, n := range opts.Notify {
		r.Notify = append(r.Notify, relay.DSNNotify(n))
	}
	if opts.OriginalRecipient != "" {
		r.ORcpt = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	ss.env.To = append(ss.env.To, r)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if f := ss.s.take(EndOfData, ""); f != nil {
		if f.Hangup {
			ss.c.hangup()
			return io.ErrUnexpectedEOF
		}
		return faultError(f.Reply)
	}
	env := ss.env
	env.To = slices.Clone(env.To)
	return ss.s.keep(&Message{
		Envelope:   env,
		Size:       ss.size,
		Data:       data,
		BDAT:       ss.c.chunked(),
		TLS:        ss.c.tlsState(),
		Auth:       ss.c.identity(),
		Helo:       ss.sc.Hostname(),
		RemoteAddr: ss.c.remote,
	})
}

// faultError is a fault's reply for go-smtp to send, written as the conn
// writes its own: no enhanced code when it has none, else one on every
// line (go-smtp puts it on the last).
func faultError(r relay.Reply) *smtp.SMTPError {
	if r.Enhanced == (relay.EnhancedCode{}) {
		return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.NoEnhancedCode, Message: r.Message}
	}
	lines := strings.Split(r.Message, "\n")
	for i := range lines[:len(lines)-1] {
		lines[i] = r.Enhanced.String() + " " + lines[i]
	}
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: strings.Join(lines, "\n")}
}
