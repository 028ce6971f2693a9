package relay

import (
	"bytes"
	"errors"
	"strings"
	"sync"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The session's replies (RFC 5321 §4.2, RFC 3463, RFC 4954 §6).
var (
	errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required for requested authentication mechanism"}
	errAuthRequired       = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errAuthInTransaction  = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "AUTH not permitted during a mail transaction"}
	errAuthTemporary      = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	errAuthMalformed      = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed authentication response"}
	errAuthFlood          = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed authentications, closing connection"}
	errSuppressionsFailed = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: the suppression list cannot be read, try again later"}
	errNoSendScope        = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "This key may not send mail (it lacks the " + ScopeSend + " scope)"}
)

// serverSession is go-smtp's session of one connection: AUTH, the relay
// policy of MAIL and RCPT, and (in pipeline.go) DATA.
//
// go-smtp calls its methods on the connection's goroutine, but for Data
// after BDAT, which runs on a goroutine of its own while the next commands
// are read: mu guards the fields Data reads, which go-smtp's goroutine
// writes only with mu held.
type serverSession struct {
	srv     *Server
	c       *serverConn
	gc      *smtp.Conn
	trusted bool

	mu      sync.Mutex
	account *Account // after AUTH
	tx      transaction
}

// setTx sets the transaction.
func (ss *serverSession) setTx(tx transaction) {
	ss.mu.Lock()
	ss.tx = tx
	ss.mu.Unlock()
}

// transaction is what MAIL and RCPT gave, for the message.
type transaction struct {
	open bool
	from string // the reverse-path as the client gave it
	env  Envelope
	helo string // the client's EHLO name when MAIL came
	// dropped are the recipients accepted and left out, suppressed
	// (SuppressedDrop).
	dropped []droppedRcpt
}

// droppedRcpt is a recipient dropped from a transaction, and why.
type droppedRcpt struct {
	addr string
	why  string
}

func (s *Server) newSession(c *serverConn, gc *smtp.Conn) *serverSession {
	return &serverSession{srv: s, c: c, gc: gc, trusted: s.isTrusted(c.remote.Addr())}
}

// AuthMechanisms offers PLAIN and LOGIN, on a TLS connection only (RFC
// 4954 §4: mechanisms that send the password in clear need an encrypted
// connection).
func (ss *serverSession) AuthMechanisms() []string {
	if ss.srv.auth == nil || ss.c.tlsState() == nil {
		return nil
	}
	return []string{"PLAIN", "LOGIN"}
}

// Auth starts an AUTH exchange (RFC 4954).
func (ss *serverSession) Auth(mech string) (gosasl.Server, error) {
	switch {
	case ss.srv.auth == nil:
		return nil, smtp.ErrAuthUnsupported
	case ss.c.tlsState() == nil:
		return nil, errEncryptionRequired
	case ss.tx.open:
		return nil, errAuthInTransaction
	case ss.srv.authFails.blocked(ss.c.key, ss.srv.now()):
		ss.c.log.Debug("relay: AUTH refused: too many failures", "remote", ss.c.remote)
		return nil, errAuthFlood
	}
	switch mech {
	case "PLAIN":
		return &plainServer{check: ss.authenticate, fail: ss.authFailed}, nil
	case "LOGIN":
		return &loginServer{check: ss.authenticate}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// authenticate checks credentials with the Authenticator. A failure
// counts against the client; the one that reaches the limit is answered
// 421, and the connection closes.
func (ss *serverSession) authenticate(user, password string) error {
	s := ss.srv
	acct, err := s.auth.Authenticate(s.ctx, user, password)
	if err == nil && acct != nil {
		ss.mu.Lock()
		ss.account = acct
		ss.mu.Unlock()
		ss.c.log.Debug("relay: authenticated", "remote", ss.c.remote, "account", acct.Name)
		return nil
	}
	if err != nil && !errors.Is(err, ErrAuthFailed) {
		ss.c.log.Debug("relay: authenticator failed", "remote", ss.c.remote, "err", err)
		return errAuthTemporary
	}
	return ss.authFailed()
}

// authFailed counts a failed authentication.
func (ss *serverSession) authFailed() error {
	ss.srv.metrics.AuthFailed()
	blocked := ss.srv.authFails.fail(ss.c.key, ss.srv.now())
	ss.c.log.Debug("relay: authentication failed", "remote", ss.c.remote, "blocked", blocked)
	if blocked {
		return errAuthFlood
	}
	return smtp.ErrAuthFailed
}

// Mail starts a transaction: an account may use only its own sender
// domains.
func (ss *serverSession) Mail(from string, opts *smtp.MailOptions) error {
	ss.setTx(transaction{})
	if a := ss.account; a != nil {
		if !a.Can(ScopeSend) {
			ss.srv.metrics.MessageRefused(smtpReason(errNoSendScope))
			return errNoSendScope
		}
		if from != "" {
			if d := addrDomain(from); !a.MaySendFrom(d) {
				ss.srv.metrics.MessageRefused("5.7.1")
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
					Message: "<" + printable(from) + ">: Sender address rejected: this key may not send mail from " + printable(d)}
			}
		}
	}
	tx := transaction{open: true, from: from, helo: ss.gc.Hostname()}
	if opts != nil {
		tx.env.SMTPUTF8 = opts.UTF8
		tx.env.RequireTLS = opts.RequireTLS
		if opts.Body == smtp.Body8BitMIME {
			tx.env.Body = BodyEightBit
		}
		tx.env.Return = DSNReturn(opts.Return)
		tx.env.EnvID = opts.EnvelopeID
	}
	ss.setTx(tx)
	return nil
}

// Rcpt adds a recipient: only for an authenticated client or one in a
// trusted network (no open relay).
func (ss *serverSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if ss.account == nil && !ss.trusted {
		ss.c.log.Debug("relay: recipient refused: not authenticated", "remote", ss.c.remote)
		ss.srv.metrics.MessageRefused(smtpReason(errAuthRequired))
		return errAuthRequired
	}
	if ss.account != nil && ss.srv.suppress != nil {
		sup, err := ss.srv.suppress.Suppressed(ss.srv.ctx, ss.account.Name, to)
		switch {
		case err != nil:
			ss.c.log.Debug("relay: suppression list failed", "account", ss.account.Name, "rcpt", to, "err", err)
			ss.srv.metrics.MessageRefused(smtpReason(errSuppressionsFailed))
			return errSuppressionsFailed
		case sup == nil:
		case ss.srv.suppressed == SuppressedDrop:
			ss.c.log.Debug("relay: recipient suppressed, dropped", "account", ss.account.Name, "rcpt", to)
			ss.mu.Lock()
			ss.tx.dropped = append(ss.tx.dropped, droppedRcpt{addr: to, why: "suppressed for this account: " + sup.why()})
			ss.mu.Unlock()
			return nil
		default:
			ss.c.log.Debug("relay: recipient suppressed, refused", "account", ss.account.Name, "rcpt", to)
			ss.srv.metrics.MessageRefused("5.1.1")
			// RFC 3463 §3.2: X.1.1, bad destination mailbox address.
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
				Message: "<" + printable(to) + ">: Recipient address rejected: suppressed for this account: " + printable(sup.why())}
		}
	}
	r := Recipient{Addr: to}
	if opts != nil {
		for _, n := range opts.Notify {
			r.Notify = append(r.Notify, DSNNotify(n))
		}
		if opts.OriginalRecipient != "" {
			r.ORcpt = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
	}
	ss.mu.Lock()
	ss.tx.env.To = append(ss.tx.env.To, r)
	ss.mu.Unlock()
	return nil
}

// Reset ends the transaction.
func (ss *serverSession) Reset() { ss.setTx(transaction{}) }

// Logout ends the session.
func (ss *serverSession) Logout() error { return nil }

// addrDomain returns the domain of an address, after its last "@", in
// lower case.
func addrDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

// printable returns s with what may not appear in a reply or a header
// field (controls, non-ASCII) replaced by "?", at most 256 octets of it.
func printable(s string) string {
	if len(s) > 256 {
		s = s[:256]
	}
	b := []byte(s)
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?'
		}
	}
	return string(b)
}

// plainServer is the server side of PLAIN (RFC 4616 §2): one message,
// authzid NUL authcid NUL passwd. An authzid other than the user itself is
// refused: a key does not act for another.
type plainServer struct {
	check func(user, password string) error
	fail  func() error
	done  bool
}

func (p *plainServer) Next(resp []byte) ([]byte, bool, error) {
	if p.done {
		return nil, true, errAuthMalformed
	}
	if resp == nil {
		return []byte{}, false, nil // no initial response: an empty challenge
	}
	p.done = true
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 {
		return nil, true, errAuthMalformed
	}
	user := string(parts[1])
	if len(parts[0]) > 0 && string(parts[0]) != user {
		return nil, true, p.fail()
	}
	return nil, true, p.check(user, string(parts[2]))
}

// loginServer is the server side of LOGIN (draft-murchison-sasl-login):
// the user name, then the password, each asked for; the user name may
// come as the initial response.
type loginServer struct {
	check func(user, password string) error
	user  string
	step  int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		if resp == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, true, errAuthMalformed
}
