package smtptest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
)

// TLSMode is how a Server offers TLS.
type TLSMode int

const (
	// StartTLS: the connection starts in plaintext and STARTTLS is offered
	// after EHLO (RFC 3207), as on the submission port 587.
	StartTLS TLSMode = iota
	// ImplicitTLS: the connection is TLS from the first byte (RFC 8314
	// §3), as on port 465.
	ImplicitTLS
	// NoTLS: plaintext only, STARTTLS not offered.
	NoTLS
)

// The extensions Options.Disable may name. PIPELINING, CHUNKING, 8BITMIME
// and SIZE go-smtp always advertises: the fixture removes them from the
// EHLO reply, refuses BDAT without CHUNKING and BODY=8BITMIME or SIZE=
// without theirs; it cannot refuse a client that pipelines anyway.
// Without CHUNKING, BINARYMIME goes too (RFC 3030 §3).
var extensions = []string{"PIPELINING", "CHUNKING", "8BITMIME", "SIZE", "SMTPUTF8", "DSN", "REQUIRETLS", "BINARYMIME"}

// Options configure a Server. The zero value (or nil) is a sink on
// 127.0.0.1 that offers STARTTLS and every extension, without AUTH.
type Options struct {
	// TLS is how TLS is offered; the default is StartTLS.
	TLS TLSMode
	// Hostname is the server's name in its greeting; "" is "localhost".
	Hostname string
	// Users are user names and passwords. With Users or Tokens the server
	// offers AUTH, and MAIL needs it first (530 5.7.0, RFC 4954 §6), as a
	// submission server does.
	Users map[string]string
	// Tokens are user names and their OAuth 2.0 tokens, for XOAUTH2.
	Tokens map[string]string
	// Mechanisms are the AUTH mechanisms offered, in that order (names of
	// package relay/sasl). nil offers all that Users and Tokens allow:
	// SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN, then XOAUTH2.
	Mechanisms []string
	// AllowInsecureAuth offers and accepts AUTH before TLS. Without it,
	// AUTH is offered only on a TLS connection and refused before with
	// 538 5.7.11 (RFC 4954 §6).
	AllowInsecureAuth bool
	// Disable names extensions not to advertise, among PIPELINING,
	// CHUNKING, 8BITMIME, SIZE, SMTPUTF8, DSN, REQUIRETLS, BINARYMIME,
	// to test a client's fallbacks.
	Disable []string
	// MaxMessageBytes is the SIZE limit (RFC 1870); 0 is none, and SIZE
	// is advertised without a number.
	MaxMessageBytes int64
	// MaxRecipients limits recipients per transaction (452 4.5.3 beyond);
	// 0 is none.
	MaxRecipients int
	// Delay delays every reply of the server, the TLS handshake excepted;
	// see Server.SetDelay.
	Delay time.Duration
	// Logger receives go-smtp's reports of failed connections, at debug
	// level; nil discards them.
	Logger *slog.Logger
}

// Message is a message the server received and kept, with what it knew of
// the client. It must not be modified.
type Message struct {
	// Envelope is the envelope with its options: DSN (RET, ENVID,
	// NOTIFY, ORCPT), SMTPUTF8, BODY and REQUIRETLS.
	Envelope relay.Envelope
	// Size is the SIZE= of MAIL FROM (RFC 1870), 0 when not sent.
	Size int64
	// Data is the message as received, without the final "." line and
	// with dots unstuffed.
	Data []byte
	// BDAT reports that the message came in BDAT chunks (RFC 3030), not
	// DATA.
	BDAT bool
	// TLS is the state of the connection's TLS, nil for plaintext.
	TLS *tls.ConnectionState
	// Auth is who the client authenticated as, nil if it did not.
	Auth *Auth
	// Helo is the name the client gave in EHLO or HELO.
	Helo string
	// RemoteAddr is the client's address.
	RemoteAddr netip.AddrPort
}

// Auth is the identity a client authenticated as.
type Auth struct {
	Mechanism string
	Username  string
}

// Stats are counters of what the server saw since it started, for tests
// and benchmarks that count round trips and connection reuse.
type Stats struct {
	// Connections is the number of connections accepted.
	Connections int
	// Commands counts the commands received by verb, in upper case
	// ("EHLO", "MAIL", ...), faulted and refused ones included; SASL
	// responses and message content are not commands.
	Commands map[string]int
	// Transactions is the number of MAIL commands the server accepted.
	Transactions int
	// Messages is the number of messages kept.
	Messages int
}

// Server is an SMTP server on 127.0.0.1 for tests, built on go-smtp: it
// keeps every message it receives, counts what it sees, and misbehaves on
// demand (Fail, SetDelay). Its methods are safe for concurrent use.
//
// It stands between the client and go-smtp as a thin layer that reads
// each command line before go-smtp does: that layer does the TLS (so that
// it sees the commands of TLS sessions too), counts commands, answers
// faults, and edits the EHLO reply for the extensions disabled. After
// STARTTLS it wants EHLO again (RFC 3207 §4.2) and discards what the
// client sent before the handshake; STARTTLS after AUTH (possible with
// AllowInsecureAuth) is refused.
type Server struct {
	// Addr is the server's address, "127.0.0.1:port".
	Addr string

	opts       Options
	disabled   map[string]bool
	tlsConfig  *tls.Config
	cert       tls.Certificate
	users      *sasl.Users
	mechs      []string
	needAuth   bool
	smtp       *smtp.Server
	ln         net.Listener
	serveDone  chan struct{}
	closing    chan struct{}
	closeOnce  sync.Once
	delay      atomic.Int64
	closeError error

	mu       sync.Mutex
	closed   bool
	live     map[*conn]struct{}
	messages []*Message
	changed  chan struct{} // closed and replaced when a message is kept
	faults   []*fault
	stats    Stats
}

// NewServer starts a server on 127.0.0.1, on a port the system chooses,
// with a self-signed certificate made for it (see TLSConfig). Close it
// when done. Like dnstest.NewServer, and unlike httptest, it returns an
// error rather than panicking, so that it can serve examples and programs
// as well as tests.
func NewServer(opts *Options) (*Server, error) {
	s := &Server{
		disabled:  map[string]bool{},
		serveDone: make(chan struct{}),
		closing:   make(chan struct{}),
		live:      map[*conn]struct{}{},
		changed:   make(chan struct{}),
		stats:     Stats{Commands: map[string]int{}},
	}
	if opts != nil {
		s.opts = *opts
	}
	for _, ext := range s.opts.Disable {
		ext = strings.ToUpper(ext)
		if !slices.Contains(extensions, ext) {
			return nil, fmt.Errorf("smtptest: cannot disable %q: not one of %s", ext, strings.Join(extensions, " "))
		}
		s.disabled[ext] = true
	}
	if s.disabled["CHUNKING"] {
		s.disabled["BINARYMIME"] = true
	}
	if err := s.setUsers(); err != nil {
		return nil, err
	}
	var err error
	if s.cert, err = newCertificate(time.Now()); err != nil {
		return nil, err
	}
	s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12}
	s.delay.Store(int64(s.opts.Delay))

	hostname := s.opts.Hostname
	if hostname == "" {
		hostname = "localhost"
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = hostname
	srv.AllowInsecureAuth = true // the session decides, knowing the TLS state
	srv.MaxMessageBytes = s.opts.MaxMessageBytes
	srv.MaxRecipients = s.opts.MaxRecipients
	srv.EnableSMTPUTF8 = !s.disabled["SMTPUTF8"]
	srv.EnableREQUIRETLS = !s.disabled["REQUIRETLS"]
	srv.EnableBINARYMIME = !s.disabled["BINARYMIME"]
	srv.EnableDSN = !s.disabled["DSN"]
	srv.ErrorLog = logger{s.opts.Logger}
	s.smtp = srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	s.ln, s.Addr = ln, ln.Addr().String()
	go func() {
		defer close(s.serveDone)
		srv.Serve(listener{ln, s}) // returns when ln is closed
	}()
	return s, nil
}

// setUsers fills the credential store and the mechanisms offered.
func (s *Server) setUsers() error {
	s.users = &sasl.Users{Hostname: s.opts.Hostname}
	for user, pw := range s.opts.Users {
		if err := s.users.SetPassword(user, pw); err != nil {
			return fmt.Errorf("smtptest: user %q: %w", user, err)
		}
	}
	for user, token := range s.opts.Tokens {
		if err := s.users.SetToken(user, token); err != nil {
			return fmt.Errorf("smtptest: user %q: %w", user, err)
		}
	}
	s.needAuth = len(s.opts.Users)+len(s.opts.Tokens) > 0
	s.mechs = s.users.Mechanisms()
	if s.opts.Mechanisms != nil {
		s.mechs = nil
		for _, m := range s.opts.Mechanisms {
			m = strings.ToUpper(m)
			if _, err := s.users.NewServer(m); err != nil {
				return fmt.Errorf("smtptest: mechanism %q: %w", m, err)
			}
			s.mechs = append(s.mechs, m)
		}
	}
	return nil
}

// listener hands go-smtp the fixture's connections.
type listener struct {
	net.Listener
	s *Server
}

func (l listener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.s.newConn(raw), nil
}

// Close stops the server: it closes the listener and every connection,
// and returns once every session has ended. Messages and Stats stay
// readable.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.closeError = s.ln.Close()
		<-s.serveDone
		s.mu.Lock()
		s.closed = true
		for c := range s.live {
			c.hangup()
		}
		s.mu.Unlock()
		// go-smtp's Shutdown waits for its connection goroutines, which
		// the hang-ups end.
		s.smtp.Shutdown(context.Background())
	})
	return s.closeError
}

// TLSConfig returns a new client configuration that trusts the server's
// certificate, with ServerName "localhost"; the certificate is also valid
// for 127.0.0.1 and ::1.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// Certificate returns the server's certificate, for clients that read
// it as PEM (encoding/pem, block type "CERTIFICATE", of its Raw bytes).
func (s *Server) Certificate() *x509.Certificate { return s.cert.Leaf }

// CertPool returns a new pool holding the server's certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.cert.Leaf)
	return p
}

// SetDelay makes the server wait d before each reply it sends from now on,
// the greeting included; 0 stops delaying.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Messages returns the messages kept so far, in the order received.
func (s *Server) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Message(nil), s.messages...)
}

// WaitMessages waits until the server has kept n messages and returns
// them all, or returns ctx's error with those it has.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]*Message, error) {
	for {
		s.mu.Lock()
		msgs, changed := append([]*Message(nil), s.messages...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return msgs, fmt.Errorf("smtptest: %d of %d messages: %w", len(msgs), n, ctx.Err())
		}
	}
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Commands = maps.Clone(s.stats.Commands)
	return st
}

// keep stores a message; after Close it refuses it.
func (s *Server) keep(m *Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Server shutting down"}
	}
	s.messages = append(s.messages, m)
	s.stats.Messages++
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// logger gives go-smtp's error log to a slog.Logger at debug level.
type logger struct{ l *slog.Logger }

func (l logger) Printf(format string, v ...any) {
	if l.l != nil {
		l.l.Debug("smtptest: " + fmt.Sprintf(format, v...))
	}
}

func (l logger) Println(v ...any) {
	if l.l != nil {
		l.l.Debug("smtptest: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
	}
}
