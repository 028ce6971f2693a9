package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

// TLSMode is how a Client secures its connections.
type TLSMode string

// The TLS modes. The names are those of configuration files and flags.
const (
	// StartTLS (the default, also ""): plaintext first, then STARTTLS
	// (RFC 3207), required: a server that does not offer it, or refuses
	// it, gets nothing, and the client never falls back to plaintext. The
	// submission port 587 (RFC 6409), or 2525.
	StartTLS TLSMode = "starttls"
	// ImplicitTLS: TLS from the first byte (RFC 8314 §3), port 465.
	ImplicitTLS TLSMode = "implicit"
	// OpportunisticTLS is for delivery to an MX on port 25 (RFC 7435):
	// STARTTLS when the server offers it, plaintext when it does not, or
	// when the handshake fails (the client connects again without it).
	// The certificate is verified, but a failure does not stop delivery:
	// encryption without authentication still defeats a passive
	// eavesdropper. Receipt.TLS says whether TLS was used, and its
	// VerifiedChains whether the certificate was verified. Credentials
	// need verified TLS (see ClientOptions.Credentials).
	OpportunisticTLS TLSMode = "opportunistic"
	// NoTLS: plaintext only, for a relay on a trusted network or a test;
	// never the default.
	NoTLS TLSMode = "none"
)

// ClientOptions configure a Client. The zero value (or nil) submits over
// STARTTLS, verified with the system's roots, without AUTH.
type ClientOptions struct {
	// TLS is the TLS mode; "" is StartTLS.
	TLS TLSMode
	// TLSConfig is the base TLS configuration; nil is the system's roots.
	// It is cloned; ServerName, when empty, becomes the host of the
	// address (for SNI, RFC 6066 §3, and for verification), and
	// MinVersion is raised to TLS 1.2 (RFC 8996; RFC 8314 §4.1).
	TLSConfig *tls.Config
	// RootCAs, when set, are the CAs to verify the server with, in place
	// of TLSConfig.RootCAs and the system's.
	RootCAs *x509.CertPool

	// Credentials, when set, authenticate every connection with SASL
	// (RFC 4954). A provider that authenticates with an API key takes the
	// user name "apikey" and the key as the password:
	//
	//	&sasl.Credentials{Username: "apikey", Password: key}
	//
	// Credentials are sent only over TLS: never before STARTTLS, and not
	// to a server that does not offer it; in OpportunisticTLS mode, not
	// to a server whose certificate is not verified either (the Send
	// fails rather than authenticate); unless AllowInsecureAuth is set
	// and the server is on a loopback address.
	Credentials *sasl.Credentials
	// Mechanism is the SASL mechanism to use, one of package sasl's; ""
	// is the strongest both sides have (sasl.Choose: SCRAM-SHA-256,
	// SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN; XOAUTH2 for a token). A server
	// that does not offer it is an error.
	Mechanism string
	// AllowInsecureAuth permits AUTH on a plaintext connection to a
	// loopback address (a relay on the same host); elsewhere it changes
	// nothing.
	AllowInsecureAuth bool

	// LocalName is the client's name in EHLO (RFC 5321 §4.1.1.1); "" is
	// the address literal of the connection's local address ("[192.0.2.1]",
	// §4.1.3), which a smart host accepts. Delivery to MX hosts should set
	// the host's fully qualified domain name.
	LocalName string
	// Timeout bounds each wait for the server: the connection, every
	// reply, every write. 0 is 5 minutes, the shortest of the timeouts of
	// RFC 5321 §4.5.3.2 but the 2-minute one for the 354; negative is no
	// limit. The context of the call bounds them all too.
	Timeout time.Duration
	// Dial opens connections; nil is a net.Dialer's DialContext. A
	// proxy, or a test's counting connection, goes here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// MaxConns is the most connections in use at once (sending a
	// message); a Send waits for one, as long as its context allows. 0
	// is 10; negative is no limit.
	MaxConns int
	// MaxIdleConns is the most connections kept open between messages for
	// reuse. 0 is 2; negative keeps none.
	MaxIdleConns int
	// MaxMessagesPerConn is the most transactions on one connection,
	// after which it is closed. 0 is 100; negative is no limit.
	MaxMessagesPerConn int
	// MaxConnAge is the longest a connection is used, from its opening.
	// 0 is 5 minutes; negative is no limit.
	MaxConnAge time.Duration
	// IdleTimeout closes a connection unused that long. 0 is 30 seconds,
	// well within the 5 minutes a server waits for a command (RFC 5321
	// §4.5.3.2.7); negative is no limit.
	IdleTimeout time.Duration

	// ChunkSize is the size of the BDAT chunks (RFC 3030) when the server
	// offers CHUNKING. A message up to this size after normalization
	// goes in one BDAT LAST, written with MAIL and RCPT: one round trip
	// with PIPELINING, and should every recipient be refused, the server
	// discards it (§2). 0 is 256 KiB.
	ChunkSize int

	// Logger receives one record per Send at debug level: the server,
	// the envelope's addresses, the replies' codes, TLS, and the error.
	// Never credentials, nor anything of the AUTH exchange. nil discards.
	Logger *slog.Logger
}

// Defaults of ClientOptions.
const (
	defaultTimeout     = 5 * time.Minute
	defaultMaxConns    = 10
	defaultMaxIdle     = 2
	defaultMaxMessages = 100
	defaultMaxAge      = 5 * time.Minute
	defaultIdleTimeout = 30 * time.Second
	defaultChunkSize   = 256 << 10
)

// ErrClientClosed is the error of a Send after Close.
var ErrClientClosed = errors.New("relay: client closed")

// Client submits mail to one SMTP server, a smart host: it is a Sender.
// It keeps a pool of connections, set up once (TLS, EHLO, AUTH) and reused
// for message after message, and is safe for concurrent use.
//
// A message on a reused connection costs two round trips with PIPELINING
// (RFC 2920): RSET, MAIL FROM, every RCPT TO and DATA in one write, the
// content in another; one with CHUNKING too, when it fits in one chunk (RFC
// 3030: BDAT LAST with the content in the same write). A pooled connection
// that turns out dead before any of the message was sent (its first reply
// fails, or is 421) is replaced by a new one once. Replies are read with
// limits (a line of 1000 octets, 100 lines or 64 KiB per reply), so that a
// server sending garbage or endless lines ends in an error wrapping
// ErrProtocol.
//
// Send bounds everything with its context: the context's deadline is the
// connection's, and cancelling it stops what is under way. A transaction
// cancelled between commands is reset (RSET) and the connection kept; one
// cancelled while a command awaits its reply, or during the content, is
// ended by closing the connection, so that the server discards the message
// (RFC 5321 §4.1.1.4): a message is never left half-sent.
type Client struct {
	addr      string
	host      string
	opts      ClientOptions
	tlsConfig *tls.Config
	dialer    func(ctx context.Context, network, addr string) (net.Conn, error)
	log       *slog.Logger
	pool      *pool
}

// NewClient makes a Client of the server at addr (host:port). It connects
// on the first Send, not before; it fails when the options cannot work.
func NewClient(addr string, opts *ClientOptions) (*Client, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("relay: server address: %w", err)
	}
	if host == "" {
		return nil, fmt.Errorf("relay: server address %q has no host", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return nil, fmt.Errorf("relay: server address %q: the port is not a number from 1 to 65535", addr)
	}
	cl := &Client{addr: addr, host: host}
	if opts != nil {
		cl.opts = *opts
	}
	o := &cl.opts
	switch o.TLS {
	case "":
		o.TLS = StartTLS
	case StartTLS, ImplicitTLS, OpportunisticTLS, NoTLS:
	default:
		return nil, fmt.Errorf("relay: TLS mode %q is not %s, %s, %s or %s", string(o.TLS), StartTLS, ImplicitTLS, OpportunisticTLS, NoTLS)
	}
	if err := checkControls(o.LocalName); err != nil || strings.ContainsAny(o.LocalName, " <>") {
		return nil, fmt.Errorf("relay: LocalName %q is not a domain or an address literal", o.LocalName)
	}
	if err := cl.checkAuth(); err != nil {
		return nil, err
	}
	if o.ChunkSize < 0 {
		return nil, fmt.Errorf("relay: ChunkSize %d is negative", o.ChunkSize)
	}
	setDefault(&o.Timeout, defaultTimeout)
	setDefault(&o.MaxConnAge, defaultMaxAge)
	setDefault(&o.IdleTimeout, defaultIdleTimeout)
	setDefault(&o.MaxConns, defaultMaxConns)
	setDefault(&o.MaxIdleConns, defaultMaxIdle)
	setDefault(&o.MaxMessagesPerConn, defaultMaxMessages)
	setDefault(&o.ChunkSize, defaultChunkSize)

	if cl.tlsConfig, err = cl.makeTLSConfig(); err != nil {
		return nil, err
	}
	cl.dialer = o.Dial
	if cl.dialer == nil {
		cl.dialer = (&net.Dialer{}).DialContext
	}
	cl.log = o.Logger
	if cl.log == nil {
		cl.log = slog.New(slog.DiscardHandler)
	}
	cl.pool = newPool(cl)
	return cl, nil
}

// setDefault sets a zero option to its default, and a negative one to
// zero, which is no limit.
func setDefault[T int | time.Duration](v *T, def T) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		*v = 0
	}
}

// checkAuth refuses credentials that cannot be used.
func (cl *Client) checkAuth() error {
	o := &cl.opts
	if o.Credentials == nil {
		if o.Mechanism != "" {
			return fmt.Errorf("relay: Mechanism %s without Credentials", o.Mechanism)
		}
		return nil
	}
	if o.TLS == NoTLS && !o.AllowInsecureAuth {
		return errors.New("relay: Credentials with TLS mode none: credentials are never sent in plaintext, unless AllowInsecureAuth allows it to a loopback address")
	}
	if o.Mechanism != "" {
		if _, err := sasl.NewClient(o.Mechanism, *o.Credentials); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	} else if o.Credentials.Username == "" || o.Credentials.Password == "" && o.Credentials.Token == "" {
		return errors.New("relay: Credentials need a Username, and a Password or a Token")
	}
	return nil
}

// makeTLSConfig makes the configuration of the connections' TLS.
func (cl *Client) makeTLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{}
	if cl.opts.TLSConfig != nil {
		cfg = cl.opts.TLSConfig.Clone()
	}
	if cl.opts.RootCAs != nil {
		cfg.RootCAs = cl.opts.RootCAs
	}
	if cfg.ServerName == "" {
		cfg.ServerName = cl.host
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS12 {
		return nil, errors.New("relay: TLSConfig.MaxVersion is below TLS 1.2, the minimum")
	}
	return cfg, nil
}

// localName is the EHLO name: the configured one, or the local address
// as an address literal (RFC 5321 §4.1.3).
func (cl *Client) localName(c net.Conn) string {
	if cl.opts.LocalName != "" {
		return cl.opts.LocalName
	}
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		a := ap.Addr().Unmap()
		if a.Is6() {
			return "[IPv6:" + a.WithZone("").String() + "]"
		}
		return "[" + a.String() + "]"
	}
	return "localhost"
}

// Send delivers a message (see Sender): it takes a pooled connection or
// opens one, runs one transaction, and gives the connection back.
//
// The envelope is checked before anything is sent: an address or a
// parameter holding CR, LF, NUL or another control character, or an
// address that would break out of its path, is refused with an error
// wrapping ErrSyntax. An envelope the server cannot take (SMTPUTF8,
// 8BITMIME, BINARYMIME or REQUIRETLS not offered; a message over the SIZE
// the server announced) is refused before MAIL with the *Reply a server
// would give (RFC 6531 §3.4, RFC 6152 §3, RFC 8689, RFC 1870). The DSN
// options go to the server when it offers DSN (Receipt.DSN), and are left
// out when it does not.
//
// The message is sent with CRLF line endings (a bare LF or CR is one) and
// a final CRLF, dot-stuffed with DATA (RFC 5321 §4.5.2); it is never
// refused for its line endings.
func (cl *Client) Send(ctx context.Context, env *Envelope, msg Message) (*Receipt, error) {
	start := time.Now()
	if err := checkEnvelope(env); err != nil {
		return nil, err
	}
	if msg == nil {
		return nil, fmt.Errorf("%w: no message", ErrSyntax)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("relay: %w", context.Cause(ctx))
	}
	if err := cl.pool.acquire(ctx); err != nil {
		return nil, err
	}
	defer cl.pool.release()

	c, reused, err := cl.pool.get()
	if err == nil && c == nil {
		c, err = cl.dial(ctx)
	}
	var (
		rec     *Receipt
		retried error
	)
	if err == nil {
		var retry bool
		rec, retry, err = cl.attempt(ctx, c, env, msg, reused)
		if retry && ctx.Err() == nil {
			// The pooled connection was dead: one more try, new.
			retried, reused = err, false
			if c, err = cl.dial(ctx); err == nil {
				rec, _, err = cl.attempt(ctx, c, env, msg, false)
			}
		}
	}
	cl.logSend(ctx, env, msg, c, reused, retried, rec, err, time.Since(start))
	return rec, err
}

// attempt runs the transaction on c and gives c back to the pool. retry
// reports that c was found dead before any of the message was sent.
func (cl *Client) attempt(ctx context.Context, c *conn, env *Envelope, msg Message, reused bool) (rec *Receipt, retry bool, err error) {
	stop := c.watch(ctx)
	rec, err = c.transact(env, msg, reused)
	stop()
	retry = err != nil && c.retry
	if err != nil && ctx.Err() != nil && !c.broken {
		// Cancelled between commands: reset the transaction, and keep
		// the connection if the server agrees.
		release := c.bound(abortTimeout)
		if c.rset() != nil {
			c.broken = true
		}
		release()
	}
	cl.pool.put(c)
	return rec, retry, err
}

// Close closes the idle connections, ends the others as their Sends
// return, and waits for the QUITs under way. A Send after Close fails with
// ErrClientClosed.
func (cl *Client) Close() error {
	cl.pool.close()
	return nil
}

// levelDebug is the level of every record of the client.
const levelDebug = slog.LevelDebug

func hostAttr(addr string) slog.Attr { return slog.String("host", addr) }
func errAttr(err error) slog.Attr    { return slog.String("err", err.Error()) }

// logSend writes the record of one Send.
func (cl *Client) logSend(ctx context.Context, env *Envelope, msg Message, c *conn, reused bool, retried error, rec *Receipt, err error, took time.Duration) {
	if !cl.log.Enabled(ctx, levelDebug) {
		return
	}
	attrs := []slog.Attr{
		hostAttr(cl.addr),
		slog.String("from", env.From),
		slog.Int("rcpts", len(env.To)),
		slog.Int64("size", msg.Size()),
	}
	if rec != nil {
		var codes []string
		for _, r := range rec.Rcpts {
			code := "-"
			if r.Reply != nil {
				code = strconv.Itoa(r.Reply.Code)
			}
			codes = append(codes, r.Addr+"="+code)
		}
		attrs = append(attrs, slog.Int("accepted", len(rec.Accepted())), slog.String("replies", strings.Join(codes, " ")))
	}
	if c != nil {
		tlsVersion := "none"
		if c.tls != nil {
			tlsVersion = tls.VersionName(c.tls.Version)
		}
		attrs = append(attrs, slog.String("tls", tlsVersion), slog.Bool("reused", reused))
		if c.tls != nil && len(c.tls.VerifiedChains) == 0 && c.verifyErr != nil {
			attrs = append(attrs, slog.String("tls_unverified", c.verifyErr.Error()))
		}
		if c.handshakeErr != nil {
			attrs = append(attrs, slog.String("tls_failed", c.handshakeErr.Error()))
		}
		if c.mech != "" {
			attrs = append(attrs, slog.String("auth", c.mech))
		}
	}
	if retried != nil {
		attrs = append(attrs, slog.String("dead_conn", retried.Error()))
	}
	attrs = append(attrs, slog.Duration("took", took))
	if err != nil {
		attrs = append(attrs, errAttr(err))
	}
	cl.log.LogAttrs(ctx, levelDebug, "relay: send", attrs...)
}
