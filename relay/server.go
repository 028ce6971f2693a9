package relay

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/srs"
)

// ErrServerClosed is returned by Serve and ServeTLS once Shutdown or Close
// was called.
var ErrServerClosed = errors.New("relay: server closed")

// The defaults of ServerOptions.
const (
	defaultMaxMessageBytes     = 32 << 20
	defaultMaxRecipients       = 100 // RFC 5321 §4.5.3.1.8: at least 100
	defaultMaxConnections      = 1000
	defaultMaxConnectionsPerIP = 20
	defaultMaxAuthFailures     = 5
	defaultAuthFailureWindow   = 10 * time.Minute
	defaultServerTimeout       = 5 * time.Minute // RFC 5321 §4.5.3.2.7
	defaultMaxLineLength       = 2000
	defaultMaxHeaderBytes      = 128 << 10
	maxAuthClients             = 10000
	maxRefusing                = 32
)

// ServerOptions are the optional settings of a Server. nil means every
// default; a zero field means its default. For MaxMessageBytes,
// MaxRecipients, MaxConnections, MaxConnectionsPerIP, MaxAuthFailures,
// ReadTimeout and WriteTimeout, a negative value means no limit.
type ServerOptions struct {
	// Hostname names the relay in its greeting (RFC 5321 §4.3.1), in the
	// Received fields it adds (§4.4) and in the Message-IDs it makes.
	// Default: os.Hostname.
	Hostname string

	// TLSConfig is the relay's TLS: offered with STARTTLS (RFC 3207) on
	// the listeners of Serve (ports 587 and 2525), from the first byte
	// (RFC 8314 §3) on those of ServeTLS (port 465). Its MinVersion
	// defaults to TLS 1.2 (RFC 8996). Default nil: no TLS, so no AUTH,
	// and only Trusted networks can relay.
	TLSConfig *tls.Config

	// Authenticator checks the credentials of AUTH PLAIN and LOGIN (RFC
	// 4954, RFC 4616), which are offered and accepted only over TLS.
	// Default nil: no AUTH.
	Authenticator Authenticator

	// Trusted are the networks whose clients may relay without AUTH, in
	// plaintext too: legacy senders on a private network. Default none.
	Trusted []netip.Prefix

	// DomainSigners are the customers' DKIM keys (RFC 6376), by the
	// domain of the message's From field: a message whose From domain has
	// one is signed with it. Domains are compared without regard to
	// case. Default none.
	DomainSigners map[string]*dkim.Signer

	// ProviderSigner signs every message a second time, with the relay
	// operator's own domain. Default nil: none.
	ProviderSigner *dkim.Signer

	// ReturnPaths are the return-path domains the customers authenticated
	// (their SPF and bounce MX point at the relay), by the domain of the
	// message's From field, such as "example.com": "em1234.example.com".
	// The envelope sender of a message whose From domain has one becomes
	// bounces+ID@that domain (see ReturnPathID), so that SPF passes and
	// aligns with the From domain under relaxed DMARC alignment (RFC 7489
	// §3.1.2). Default none.
	ReturnPaths map[string]string

	// SRS rewrites the envelope sender of the other messages into the
	// relay's own domain (package srs), so that SPF passes there. Default
	// nil: the envelope sender is kept as the client gave it.
	SRS *srs.Rewriter

	// Events receives an accepted event per recipient of each message
	// queued, and a dropped event per recipient left out of one (see
	// SuppressedAction). Default nil: none.
	Events Events

	// Suppressions is the list of recipients each account must not mail
	// again: RCPT of a recipient on the list of the authenticated
	// account is refused or dropped, as SuppressedAction says. Only
	// authenticated clients are checked: a client of a Trusted network
	// has no account, so no list applies to it. When the list cannot be
	// read, RCPT is answered 451 4.3.0, and the client tries again later.
	// Default nil: none.
	Suppressions Suppressions
	// SuppressedAction is what RCPT of a suppressed recipient gets:
	// SuppressedRefuse (550 5.1.1, RFC 3463 §3.2, with the text saying
	// it is suppressed for the account, and why) or SuppressedDrop (250,
	// and the recipient is left out of the message queued, with a
	// dropped event; a message whose every recipient is dropped gets 250
	// and nothing is queued). Default SuppressedRefuse.
	SuppressedAction SuppressedAction
	// Tracker records each message whose envelope sender became a
	// return-path address (see ReturnPaths), for a BounceServer to map the
	// bounces sent to that address back to it. The record is written once
	// the queue has committed the message and before the 250 reply, so a
	// bounce can never come back for a message the tracker does not know;
	// when writing it fails, the message (already durable) is accepted all
	// the same, and its bounces will be refused as unknown. Default nil:
	// none.
	Tracker Tracker
	// Metrics counts the messages accepted and refused and the failed
	// authentications. Default nil: none.
	Metrics Metrics

	// Logger receives debug records: connections, authentications,
	// messages accepted and refused. Never a password, key or message
	// content. Default nil: none.
	Logger *slog.Logger

	// MaxMessageBytes is the message size limit, advertised with SIZE (RFC
	// 1870); a larger message is refused with 552 5.3.4. Default 32 MiB.
	MaxMessageBytes int64
	// MaxRecipients is the number of recipients per message; RCPT beyond
	// it gets 452 4.5.3 (RFC 5321 §4.5.3.1.10). Default 100.
	MaxRecipients int
	// MaxConnections and MaxConnectionsPerIP limit the open connections,
	// in all and per client (an IPv4 address or an IPv6 /64); a
	// connection over either is answered 421 4.7.0 and closed. Clients in
	// Trusted networks are held to MaxConnections only, as Postfix
	// exempts $mynetworks (smtpd_client_event_limit_exceptions): one
	// application server may hold many sessions. Defaults 1000 and 20.
	MaxConnections, MaxConnectionsPerIP int
	// MaxAuthFailures failed AUTH attempts of a client (an IPv4 address or
	// an IPv6 /64) within AuthFailureWindow, a sliding window, block it:
	// the failure that reaches the limit, and any AUTH or connection of
	// the client until the oldest failure leaves the window, are answered
	// 421 4.7.0 and the connection is closed. Defaults 5 and 10 minutes.
	MaxAuthFailures   int
	AuthFailureWindow time.Duration
	// ReadTimeout is how long the relay waits for each read from the
	// client, during a command or the message content alike; WriteTimeout
	// for each write. Default 5 minutes (RFC 5321 §4.5.3.2.7).
	ReadTimeout, WriteTimeout time.Duration
	// MaxLineLength is the longest line, its CRLF included, of a command
	// or of the message content (RFC 5321 §4.5.3.1.6 allows 1000 octets;
	// twice that is tolerated, as go-smtp does). Default 2000.
	MaxLineLength int
	// MaxHeaderBytes is the size limit of the message's header block, the
	// one part of a message held in memory; a larger one is refused with
	// 552 5.3.4. At most dkim.DefaultMaxHeaderBytes less 16 KiB, kept for
	// the fields the relay adds. Default 128 KiB.
	MaxHeaderBytes int

	// Now is the clock of Received, Date, and the auth-failure window.
	// Default time.Now.
	Now func() time.Time
	// Rand is the source of message IDs and return-path IDs. Default
	// crypto/rand.
	Rand io.Reader
}

// Server is the relay's SMTP server, for submission (RFC 6409): clients
// authenticate with an API key, or are in a trusted network, and each
// message they send is checked, given a Received field (and a Message-ID
// and Date when it has none), signed with DKIM as it streams to the Queue,
// and given a new envelope sender; the client's 250 reply comes only once
// Queue has made the message durable (QueueWriter.Commit).
//
// It is built on github.com/emersion/go-smtp's server, with the relay's
// own reading of the client's bytes beneath it (strict CRLF, against SMTP
// smuggling, and TLS), and its own policy above it (see ServerOptions):
//
//   - AUTH PLAIN and LOGIN only after TLS: before it, AUTH is not
//     advertised and is refused with 538 5.7.11 (RFC 4954 §4, §6).
//   - No recipient without AUTH, unless the client is in a Trusted
//     network: 530 5.7.0 at RCPT (RFC 4954 §6). An account needs the
//     ScopeSend scope, and may use only its own sender domains, in MAIL
//     FROM and in the From field: else 550 5.7.1, and nothing is queued.
//   - Line ends: CR and LF only as CRLF, no NUL, in commands and in DATA and
//     BDAT content alike; anything else is refused with 550 5.5.2 (Postfix's
//     reply to a bare LF when smtpd_forbid_bare_newline = reject), nothing
//     after it is read, and the connection is closed, so that no fake end
//     of data can make the relay see a second message.
//   - Limits: SIZE, recipients, connections in all and per client, failed
//     AUTH per client, timeouts, line length.
//   - Suppressions: a recipient on the list of the authenticated account
//     is refused at RCPT with 550 5.1.1, or accepted and left out of the
//     message (SuppressedAction); a client of a Trusted network has no
//     account, and no list applies to it.
//
// The message a Server queues is what the client sent, preceded by a
// Received field and followed, at the end of the header, by the
// Message-ID and Date fields it lacked; the DKIM-Signature fields, made
// while it was written, are in Entry.Header. The Entry's Envelope.From is
// the new envelope sender: bounces+ID@ the return-path domain configured
// for the From domain, else the SRS form of the client's, else the
// client's; Entry.Sender is the client's, to which DSNs go. The null
// sender stays null.
type Server struct {
	queue       Queue
	smtp        *smtp.Server
	log         *slog.Logger
	hostname    string
	tlsConfig   *tls.Config
	auth        Authenticator
	trusted     []netip.Prefix
	signers     map[string]*dkim.Signer
	provider    *dkim.Signer
	returnPaths map[string]string
	srs         *srs.Rewriter
	events      Events
	suppress    Suppressions
	suppressed  SuppressedAction
	tracker     Tracker
	bounce      *BounceServer // set when the server receives bounces
	metrics     Metrics

	maxLine      int
	maxMessage   int64 // octets of DATA content, 0 for no limit
	maxHeader    int
	readTimeout  time.Duration
	writeTimeout time.Duration
	now          func() time.Time
	rand         io.Reader

	conns     connLimits
	authFails authFailures
	refusing  chan struct{} // refusals under way

	ctx     context.Context // of queue and authenticator calls; ends with Close
	cancel  context.CancelFunc
	connIDs atomic.Uint64
	closing atomic.Bool
	readers sync.Pool // *bufio.Reader of message content

	mu   sync.Mutex
	live map[*serverConn]struct{}
}

// NewServer returns a Server that queues the messages it accepts in q.
// opts may be nil. Serve and ServeTLS start it on listeners.
func NewServer(q Queue, opts *ServerOptions) (*Server, error) {
	if q == nil {
		return nil, errors.New("relay: NewServer: Queue is nil")
	}
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	s := &Server{
		queue:      q,
		log:        o.Logger,
		hostname:   o.Hostname,
		auth:       o.Authenticator,
		trusted:    make([]netip.Prefix, 0, len(o.Trusted)),
		provider:   o.ProviderSigner,
		srs:        o.SRS,
		events:     o.Events,
		suppress:   o.Suppressions,
		suppressed: o.SuppressedAction,
		tracker:    o.Tracker,
		metrics:    o.Metrics,
		now:        o.Now,
		rand:       o.Rand,
		refusing:   make(chan struct{}, maxRefusing),
		live:       make(map[*serverConn]struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.metrics == nil {
		s.metrics = NopMetrics{}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("relay: NewServer: no Hostname, and the system's: %w", err)
		}
		s.hostname = h
	}
	s.hostname = strings.TrimSuffix(s.hostname, ".")
	if !isDomainName(s.hostname) {
		return nil, fmt.Errorf("relay: NewServer: Hostname %q is not a domain name", s.hostname)
	}
	switch s.suppressed {
	case "":
		s.suppressed = SuppressedRefuse
	case SuppressedRefuse, SuppressedDrop:
	default:
		return nil, fmt.Errorf("relay: NewServer: SuppressedAction %q is not %q or %q", s.suppressed, SuppressedRefuse, SuppressedDrop)
	}
	if o.TLSConfig != nil {
		c := o.TLSConfig
		if len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
			return nil, errors.New("relay: NewServer: TLSConfig has no certificate")
		}
		c = c.Clone()
		if c.MinVersion == 0 {
			c.MinVersion = tls.VersionTLS12
		}
		s.tlsConfig = c
	}
	for _, p := range o.Trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("relay: NewServer: Trusted network %v is not valid", p)
		}
		s.trusted = append(s.trusted, p.Masked())
	}
	var err error
	if s.signers, err = domainMap("DomainSigners", o.DomainSigners, func(sg *dkim.Signer) error {
		if sg == nil {
			return errors.New("is nil")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if s.returnPaths, err = domainMap("ReturnPaths", o.ReturnPaths, func(d string) error {
		if !isDomainName(strings.TrimSuffix(d, ".")) {
			return fmt.Errorf("%q is not a domain name", d)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for d, rp := range s.returnPaths {
		s.returnPaths[d] = strings.ToLower(strings.TrimSuffix(rp, "."))
	}

	limit := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	maxRcpts := limit(o.MaxRecipients, defaultMaxRecipients)
	s.conns.max = limit(o.MaxConnections, defaultMaxConnections)
	s.conns.perClient = limit(o.MaxConnectionsPerIP, defaultMaxConnectionsPerIP)
	s.authFails.max = limit(o.MaxAuthFailures, defaultMaxAuthFailures)
	s.authFails.window = cmpDefault(o.AuthFailureWindow, defaultAuthFailureWindow)
	s.authFails.clients = maxAuthClients
	if s.authFails.window < 0 {
		return nil, errors.New("relay: NewServer: AuthFailureWindow is negative")
	}
	maxMessage := o.MaxMessageBytes
	switch {
	case maxMessage == 0:
		maxMessage = defaultMaxMessageBytes
	case maxMessage < 0:
		maxMessage = 0
	}
	s.readTimeout = max(cmpDefault(o.ReadTimeout, defaultServerTimeout), 0)
	s.writeTimeout = max(cmpDefault(o.WriteTimeout, defaultServerTimeout), 0)
	s.maxLine = cmpDefault(o.MaxLineLength, defaultMaxLineLength)
	if s.maxLine < 100 {
		return nil, fmt.Errorf("relay: NewServer: MaxLineLength %d is under 100", s.maxLine)
	}
	s.maxHeader = cmpDefault(o.MaxHeaderBytes, defaultMaxHeaderBytes)
	if s.maxHeader <= 0 || s.maxHeader > dkim.DefaultMaxHeaderBytes-16<<10 {
		return nil, fmt.Errorf("relay: NewServer: MaxHeaderBytes %d is not between 1 and %d", s.maxHeader, dkim.DefaultMaxHeaderBytes-16<<10)
	}

	gs := smtp.NewServer(serverBackend{s})
	gs.Domain = s.hostname
	gs.MaxRecipients = maxRcpts
	gs.MaxMessageBytes = maxMessage
	s.maxMessage = maxMessage
	// The serverConn checks lines first; go-smtp's limit is a backstop.
	gs.MaxLineLength = s.maxLine + 2
	// go-smtp never sees TLS (the serverConn does it), so its own check
	// would refuse AUTH always: the session offers and accepts AUTH only
	// when the serverConn says the connection is encrypted.
	gs.AllowInsecureAuth = true
	// Only for go-smtp to advertise STARTTLS; the serverConn answers it
	// and hides the advertisement once TLS is on.
	gs.TLSConfig = s.tlsConfig
	gs.EnableDSN = true
	gs.ErrorLog = smtpLog{s.log}
	s.smtp = gs
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.readers.New = func() any { return bufio.NewReaderSize(nil, 32<<10) }
	return s, nil
}

func cmpDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// domainMap copies a map keyed by domain, with the keys in lower case and
// without a final dot, checking each key and value.
func domainMap[V any](field string, m map[string]V, check func(V) error) (map[string]V, error) {
	out := make(map[string]V, len(m))
	for d, v := range m {
		k := strings.ToLower(strings.TrimSuffix(d, "."))
		if !isDomainName(k) {
			return nil, fmt.Errorf("relay: NewServer: %s: %q is not a domain name", field, d)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("relay: NewServer: %s: domain %q given twice", field, d)
		}
		if err := check(v); err != nil {
			return nil, fmt.Errorf("relay: NewServer: %s[%q]: %w", field, d, err)
		}
		out[k] = v
	}
	return out, nil
}

// Serve accepts connections on l and serves them, offering STARTTLS when
// the server has a TLSConfig: the submission ports 587 (RFC 6409) and
// 2525. It returns ErrServerClosed after Shutdown or Close, or the error
// of l.Accept.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeTLS accepts connections on l and serves them with TLS from their
// first byte (RFC 8314 §3), the submission port 465. The server needs a
// TLSConfig.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.tlsConfig == nil {
		return errors.New("relay: ServeTLS: the server has no TLSConfig")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicit bool) error {
	if s.closing.Load() {
		return ErrServerClosed
	}
	err := s.smtp.Serve(&serverListener{Listener: l, s: s, implicit: implicit})
	if s.closing.Load() {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops the server gracefully: it closes the listeners, ends
// each connection that waits for a command with 421 4.3.2, lets each
// message being received finish (and get its reply) before its connection
// ends the same way, and returns once every connection has ended. When ctx
// ends first, it closes the remaining connections (their messages not
// accepted, so their clients send them again) and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for c := range s.live {
		c.interrupt()
	}
	s.mu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if ctx.Err() != nil {
		s.abortAll()
	}
	s.cancel()
	if errors.Is(err, smtp.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Close stops the server at once: it closes the listeners and every
// connection. Messages whose 250 was not sent are not accepted.
func (s *Server) Close() error {
	s.closing.Store(true)
	err := s.smtp.Close()
	s.abortAll()
	s.cancel()
	if errors.Is(err, smtp.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

func (s *Server) abortAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.live {
		c.abort()
	}
}

// forget removes a closed connection from the counts.
func (s *Server) forget(c *serverConn) {
	s.mu.Lock()
	delete(s.live, c)
	s.mu.Unlock()
	s.conns.release(c.key)
}

// serverListener applies the connection limits before go-smtp sees a
// connection, and gives go-smtp serverConns.
type serverListener struct {
	net.Listener
	s        *Server
	implicit bool
}

func (l *serverListener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c := l.s.admit(raw, l.implicit); c != nil {
			return c, nil
		}
	}
}

// admit returns the serverConn of a new connection, or refuses it.
func (s *Server) admit(raw net.Conn, implicit bool) *serverConn {
	var remote netip.AddrPort
	if a, ok := raw.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	k := clientKey(remote.Addr())
	if s.authFails.blocked(k, s.now()) {
		s.refuse(raw, remote, implicit, "Too many failed authentications, try again later")
		return nil
	}
	if ok, why := s.conns.acquire(k, s.isTrusted(remote.Addr())); !ok {
		s.refuse(raw, remote, implicit, why)
		return nil
	}
	c := s.newServerConn(raw, remote, implicit)
	s.mu.Lock()
	s.live[c] = struct{}{}
	s.mu.Unlock()
	c.log.Debug("relay: connection", "remote", remote, "implicit_tls", implicit, "trusted", s.isTrusted(remote.Addr()))
	return c
}

// refuse answers a connection over a limit with 421 4.7.0 (RFC 5321
// §3.1) and closes it, on a goroutine of its own, with the TLS handshake
// first on an implicit-TLS listener. At most maxRefusing refusals are
// under way; beyond, a connection is closed without a word.
func (s *Server) refuse(raw net.Conn, remote netip.AddrPort, implicit bool, why string) {
	s.log.Debug("relay: connection refused", "remote", remote, "reason", why)
	select {
	case s.refusing <- struct{}{}:
	default:
		_ = raw.Close()
		return
	}
	go func() {
		defer func() { <-s.refusing }()
		const limit = 10 * time.Second
		_ = raw.SetDeadline(time.Now().Add(limit))
		t := raw
		if implicit {
			tc := tls.Server(raw, s.tlsConfig)
			if err := tc.Handshake(); err != nil {
				_ = raw.Close()
				return
			}
			t = tc
		}
		_, _ = fmt.Fprintf(t, "421 4.7.0 %s %s\r\n", s.hostname, why)
		lingerClose(raw, t)
	}()
}

// isTrusted reports whether a is in a Trusted network.
func (s *Server) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// serverBackend makes go-smtp's sessions.
type serverBackend struct{ s *Server }

func (b serverBackend) NewSession(gc *smtp.Conn) (smtp.Session, error) {
	c, ok := gc.Conn().(*serverConn)
	if !ok {
		return nil, errors.New("relay: connection not made by the relay")
	}
	if b.s.bounce != nil {
		return b.s.bounce.newSession(c, gc), nil
	}
	return b.s.newSession(c, gc), nil
}

// smtpLog gives go-smtp's reports of failed connections to the logger, at
// debug level.
type smtpLog struct{ l *slog.Logger }

func (g smtpLog) Printf(format string, v ...any) {
	g.l.Debug("relay: go-smtp: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (g smtpLog) Println(v ...any) {
	g.l.Debug("relay: go-smtp: " + strings.TrimSpace(fmt.Sprintln(v...)))
}
