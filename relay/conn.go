package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	gosasl "github.com/emersion/go-sasl"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

// conn is one SMTP connection of a Client, set up (TLS, EHLO, AUTH) and
// ready for transactions. It is used by one goroutine at a time.
type conn struct {
	cl  *Client
	raw net.Conn // the connection dialed
	nc  net.Conn // raw, or TLS over raw
	br  *bufio.Reader
	bw  *bufio.Writer

	ext          extensions // of the last EHLO; nil before it
	tls          *tls.ConnectionState
	verified     [][]*x509.Certificate // opportunistic TLS: the chains verified, if any
	verifyErr    error                 // opportunistic TLS: why the certificate was not verified
	mech         string                // the SASL mechanism authenticated with
	handshakeErr error                 // opportunistic TLS: the failed handshake before this plaintext connection

	created   time.Time
	messages  int         // transactions begun (MAIL FROM sent)
	broken    bool        // the state of the session is unknown: close it
	retry     bool        // the failure of a reused connection's first command: try a new one
	idleTimer *time.Timer // while in the pool
	norm      normalizer  // of the message under way, its buffers kept
	chunk     []byte      // a BDAT chunk buffer kept, up to keptChunk

	mu       sync.Mutex
	ctx      context.Context // of the operation under way
	canceled bool            // ctx is done: every I/O fails at once
}

// aLongTimeAgo is a deadline in the past, to make I/O fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// watch makes ctx bound the connection's I/O: its deadline is the
// connection's (with the Client's Timeout, whichever comes first), and its
// cancellation makes the I/O under way fail at once. The stop function
// returned ends this, and has waited for a cancellation that raced with
// it; it may be called more than once.
func (c *conn) watch(ctx context.Context) (stop func()) {
	c.mu.Lock()
	c.ctx, c.canceled = ctx, false
	c.mu.Unlock()
	fired := make(chan struct{})
	stopf := context.AfterFunc(ctx, func() {
		defer close(fired)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.canceled = true
		c.raw.SetDeadline(aLongTimeAgo)
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			if !stopf() {
				<-fired
			}
		})
	}
}

// arm sets the deadline of the next read or write: the Client's Timeout
// from now, or the context's deadline when sooner; in the past once the
// context is done.
func (c *conn) arm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		c.raw.SetDeadline(aLongTimeAgo)
		return
	}
	var d time.Time
	if c.cl.opts.Timeout > 0 {
		d = time.Now().Add(c.cl.opts.Timeout)
	}
	if c.ctx != nil {
		if cd, ok := c.ctx.Deadline(); ok && (d.IsZero() || cd.Before(d)) {
			d = cd
		}
	}
	c.raw.SetDeadline(d)
}

// armed is the connection as bufio sees it: every read and write gets a
// fresh deadline, so that the Timeout bounds each wait for the server
// rather than a whole message.
type armed struct{ c *conn }

func (a armed) Read(p []byte) (int, error)  { a.c.arm(); return a.c.nc.Read(p) }
func (a armed) Write(p []byte) (int, error) { a.c.arm(); return a.c.nc.Write(p) }

// ioError is the error of failed I/O: the context's when it is done,
// which is why the I/O failed.
func (c *conn) ioError(err error) error {
	c.broken = true
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	if ctx == nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		// The connection's deadline was the context's: the context
		// is done, or about to be.
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// write buffers a command line.
func (c *conn) write(line string) { c.bw.WriteString(line) }

// flush sends what is buffered.
func (c *conn) flush() error {
	if err := c.bw.Flush(); err != nil {
		return c.ioError(err)
	}
	return nil
}

// reply reads a reply. After a 421 the server closes the connection
// (RFC 5321 §3.8), and so will the client.
func (c *conn) reply() (*Reply, error) {
	r, err := readReply(c.br, c.enhanced)
	if err != nil {
		return nil, c.ioError(err)
	}
	if r.Code == 421 {
		c.broken = true
	}
	return r, nil
}

// enhanced says whether a reply of that code has its enhanced status code
// taken from its text: when the server offers ENHANCEDSTATUSCODES (RFC
// 2034); before EHLO, on the greeting and on an EHLO refusal too, where
// a server that has them gives them before it can say so.
func (c *conn) enhanced(code int) bool {
	if c.ext == nil {
		return code != 220 && code != 250
	}
	return c.ext.has("ENHANCEDSTATUSCODES")
}

// cmd sends a command and reads its reply.
func (c *conn) cmd(line string) (*Reply, error) {
	c.write(line)
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.reply()
}

// close closes the connection without a word.
func (c *conn) close() { c.raw.Close() }

// quit ends the session politely (RFC 5321 §4.1.1.10), waiting a little
// for the reply, and closes the connection.
func (c *conn) quit() {
	defer c.close()
	if c.broken {
		return
	}
	defer c.bound(quitTimeout)()
	c.bw.WriteString("QUIT\r\n")
	if c.bw.Flush() == nil {
		readReply(c.br, nil)
	}
}

// bound gives the connection a context of its own that ends after d, for
// what it does after its operation's context is over; the function
// returned releases it.
func (c *conn) bound(d time.Duration) (release func()) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	c.mu.Lock()
	c.ctx, c.canceled = ctx, false
	c.mu.Unlock()
	return cancel
}

// How long QUIT, and the RSET after a cancelled Send, wait for their
// reply: the context of the operation is over by then.
const (
	quitTimeout  = 5 * time.Second
	abortTimeout = 5 * time.Second
)

// handshakeError is a failed TLS handshake: opportunistic TLS tries again
// in plaintext.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// dial opens and sets up a connection: TLS as the mode says, the greeting,
// EHLO, STARTTLS, AUTH. In OpportunisticTLS a failed TLS handshake makes
// it try once more without STARTTLS (RFC 7435: encryption is an
// improvement over plaintext, never a reason not to deliver).
func (cl *Client) dial(ctx context.Context) (*conn, error) {
	c, err := cl.dialOnce(ctx, false)
	var he *handshakeError
	if err != nil && cl.opts.TLS == OpportunisticTLS && errors.As(err, &he) && ctx.Err() == nil {
		if c, err = cl.dialOnce(ctx, true); err == nil {
			c.handshakeErr = he.err
		}
	}
	return c, err
}

func (cl *Client) dialOnce(ctx context.Context, plaintext bool) (*conn, error) {
	raw, err := cl.dialer(ctx, "tcp", cl.addr)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	c := &conn{cl: cl, raw: raw, nc: raw, created: time.Now()}
	c.br = bufio.NewReaderSize(armed{c}, 4096)
	c.bw = bufio.NewWriterSize(armed{c}, 32<<10)
	stop := c.watch(ctx)
	defer stop()
	if err := c.setup(ctx, plaintext); err != nil {
		stop()
		c.quit()
		return nil, err
	}
	return c, nil
}

// setup takes a new connection from its first byte to ready for MAIL.
func (c *conn) setup(ctx context.Context, plaintext bool) error {
	mode := c.cl.opts.TLS
	if mode == ImplicitTLS {
		if err := c.handshake(ctx); err != nil {
			return err
		}
	}
	r, err := c.reply()
	if err != nil {
		return c.errorf("reading the greeting: %w", err)
	}
	if r.Code != 220 {
		// A 554 greeting refuses service (RFC 5321 §3.1); the client
		// QUITs.
		return c.errorf("greeting: %w", r)
	}
	if err := c.ehlo(); err != nil {
		return err
	}
	if mode == StartTLS || mode == OpportunisticTLS && !plaintext {
		if err := c.startTLS(ctx); err != nil {
			return err
		}
	}
	if c.cl.opts.Credentials != nil {
		return c.auth()
	}
	return nil
}

// errorf makes an error of this connection, naming the server.
func (c *conn) errorf(format string, args ...any) error {
	return fmt.Errorf("relay: %s: "+format, append([]any{c.cl.addr}, args...)...)
}

// ehlo sends EHLO (RFC 5321 §4.1.1.1) and keeps the extensions. A server
// that refuses EHLO with 500 or 502 gets HELO (§3.2), when the TLS mode
// can do without STARTTLS.
func (c *conn) ehlo() error {
	name := c.cl.localName(c.raw)
	r, err := c.cmd("EHLO " + name + "\r\n")
	if err != nil {
		return c.errorf("EHLO: %w", err)
	}
	if r.Code == 250 {
		c.ext = extensions{}
		for _, line := range strings.Split(r.Message, "\n")[1:] {
			kw, param, _ := strings.Cut(line, " ")
			c.ext[strings.ToUpper(kw)] = param
		}
		return nil
	}
	if (r.Code == 500 || r.Code == 502) && c.tls == nil && c.cl.opts.TLS != StartTLS {
		r2, err := c.cmd("HELO " + name + "\r\n")
		if err != nil {
			return c.errorf("HELO: %w", err)
		}
		if r2.Code == 250 {
			c.ext = extensions{} // HELO: no extensions
			return nil
		}
		r = r2
	}
	return c.errorf("EHLO: %w", r)
}

// startTLS upgrades the connection (RFC 3207) and says EHLO again (§4.2).
// In StartTLS mode a server that does not offer STARTTLS, or refuses it, is
// an error; in OpportunisticTLS mode the session goes on in plaintext.
func (c *conn) startTLS(ctx context.Context) error {
	required := c.cl.opts.TLS == StartTLS
	if !c.ext.has("STARTTLS") {
		if required {
			return c.errorf("the server does not offer STARTTLS, and TLS mode %q never sends in plaintext", StartTLS)
		}
		return nil
	}
	r, err := c.cmd("STARTTLS\r\n")
	if err != nil {
		return c.errorf("STARTTLS: %w", err)
	}
	if r.Code != 220 {
		if required || c.broken {
			return c.errorf("STARTTLS: %w", r)
		}
		return nil
	}
	if c.br.Buffered() > 0 {
		// Bytes after the 220, before TLS, were written by the server
		// or by someone in the middle; read after the handshake, they
		// would pass for replies sent under TLS.
		c.broken = true
		return c.errorf("%w: the server sent bytes after its 220 reply to STARTTLS, before TLS", ErrProtocol)
	}
	if err := c.handshake(ctx); err != nil {
		return err
	}
	return c.ehlo()
}

// handshake does the client side of TLS on the connection, as the mode
// says: verified in StartTLS and ImplicitTLS; verified but not required to
// be in OpportunisticTLS, where the chains verified, or the reason for
// none, are kept.
func (c *conn) handshake(ctx context.Context) error {
	cfg := c.cl.tlsConfig
	if c.cl.opts.TLS == OpportunisticTLS {
		cfg = cfg.Clone()
		cfg.InsecureSkipVerify = true
		userVerify := cfg.VerifyConnection
		base := c.cl.tlsConfig
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			c.verified, c.verifyErr = verifyChains(base, cs)
			if userVerify != nil {
				return userVerify(cs)
			}
			return nil
		}
	}
	tc := tls.Client(c.raw, cfg)
	c.arm()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.broken = true
		if ctx.Err() != nil {
			return c.errorf("TLS handshake: %w", context.Cause(ctx))
		}
		return c.errorf("TLS handshake: %w", &handshakeError{err})
	}
	st := tc.ConnectionState()
	if c.cl.opts.TLS == OpportunisticTLS {
		st.VerifiedChains = c.verified
	}
	c.nc, c.tls = tc, &st
	c.br.Reset(armed{c})
	return nil
}

// verifyChains verifies the server's certificate as crypto/tls would with
// cfg, for opportunistic TLS, which does not require it to succeed.
func verifyChains(cfg *tls.Config, cs tls.ConnectionState) ([][]*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("no certificate")
	}
	opts := x509.VerifyOptions{
		DNSName:       cfg.ServerName,
		Roots:         cfg.RootCAs,
		Intermediates: x509.NewCertPool(),
	}
	if cfg.Time != nil {
		opts.CurrentTime = cfg.Time()
	}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	return cs.PeerCertificates[0].Verify(opts)
}

// auth authenticates (RFC 4954) with the Client's credentials: with the
// mechanism configured, or the strongest both sides have. Credentials go
// only over TLS, verified in opportunistic mode, or, when
// AllowInsecureAuth says so, to a loopback address.
func (c *conn) auth() error {
	cred := c.cl.opts.Credentials
	insecureOK := c.cl.opts.AllowInsecureAuth && isLoopback(c.raw.RemoteAddr())
	switch {
	case insecureOK:
	case c.tls == nil:
		return c.errorf("credentials are never sent before TLS (the connection is plaintext; AllowInsecureAuth permits it to a loopback address only)")
	case c.cl.opts.TLS == OpportunisticTLS && len(c.tls.VerifiedChains) == 0:
		// Unauthenticated TLS keeps a message from an eavesdropper,
		// not a password from whoever is in the middle.
		return c.errorf("credentials are not sent over opportunistic TLS whose certificate is not verified: %v", c.verifyErr)
	}
	offered, ok := c.ext["AUTH"]
	if !ok {
		return c.errorf("the server does not offer AUTH, and the client has credentials")
	}
	mechs := strings.Fields(offered)
	var client gosasl.Client
	var err error
	if m := strings.ToUpper(c.cl.opts.Mechanism); m != "" {
		if !containsFold(mechs, m) {
			return c.errorf("the server does not offer AUTH %s, only %s", m, offered)
		}
		client, err = sasl.NewClient(m, *cred)
	} else {
		client, err = sasl.Choose(mechs, *cred)
	}
	if err != nil {
		return c.errorf("AUTH: %w", err)
	}
	mech, ir, err := client.Start()
	if err != nil {
		return c.errorf("AUTH %s: %w", mech, err)
	}
	line := "AUTH " + mech
	if ir != nil {
		line += " " + encodeSASL(ir)
	}
	r, err := c.cmd(line + "\r\n")
	for err == nil && r.Code == 334 {
		var challenge, resp []byte
		challenge, err = base64.StdEncoding.DecodeString(r.Message)
		if err != nil {
			c.cancelAuth()
			return c.errorf("%w: AUTH %s: the challenge is not base64", ErrProtocol, mech)
		}
		if resp, err = client.Next(challenge); err != nil {
			c.cancelAuth()
			return c.errorf("AUTH %s: %w", mech, err)
		}
		r, err = c.cmd(base64.StdEncoding.EncodeToString(resp) + "\r\n")
	}
	if err != nil {
		return c.errorf("AUTH %s: %w", mech, err)
	}
	if r.Code != 235 {
		return c.errorf("AUTH %s: %w", mech, r)
	}
	if err := sasl.Complete(client); err != nil {
		c.broken = true
		return c.errorf("AUTH %s: %w", mech, err)
	}
	c.mech = mech
	return nil
}

// encodeSASL writes an initial response: base64, or "=" when empty (RFC
// 4954 §4).
func encodeSASL(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// cancelAuth ends an exchange the client cannot go on with: "*" (RFC 4954
// §4), and the server's 501.
func (c *conn) cancelAuth() {
	if _, err := c.cmd("*\r\n"); err != nil {
		c.broken = true
	}
}

// isLoopback reports whether a connection's remote address is a loopback
// address.
func isLoopback(a net.Addr) bool {
	if a == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// rset resets the session (RFC 5321 §4.1.1.5).
func (c *conn) rset() error {
	r, err := c.cmd("RSET\r\n")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		c.broken = true
		return r
	}
	return nil
}
