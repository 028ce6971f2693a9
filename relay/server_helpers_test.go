package relay_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/srs"
)

// The accounts of srvAuth, by API key.
const (
	srvKey        = "shk_test_good_key_0123456789"
	srvKeyNoScope = "shk_test_noscope_key_987654"
)

var srvAccounts = map[string]*relay.Account{
	srvKey:        {Name: "shop", Scopes: []string{relay.ScopeSend}, Domains: []string{"customer.example", "other.example"}},
	srvKeyNoScope: {Name: "reports", Scopes: []string{"stats.read"}, Domains: []string{"customer.example"}},
}

// srvAuth is a static Authenticator: user "apikey", the key as password.
type srvAuth struct {
	mu    sync.Mutex
	calls int
}

func (a *srvAuth) Authenticate(ctx context.Context, user, password string) (*relay.Account, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	if acct, ok := srvAccounts[password]; ok && user == "apikey" {
		return acct, nil
	}
	return nil, relay.ErrAuthFailed
}

func (a *srvAuth) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// srvPlain is the AUTH PLAIN response for user apikey and key.
func srvPlain(key string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00apikey\x00" + key))
}

// srvQueue is an in-memory Queue that keeps what is committed.
type srvQueue struct {
	mu          sync.Mutex
	creates     int
	commitCalls int
	aborts      int
	entries     []*relay.Entry
	contents    [][]byte
}

func (q *srvQueue) Create(ctx context.Context) (relay.QueueWriter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.creates++
	return &srvQueueWriter{q: q}, nil
}

func (q *srvQueue) Lease(ctx context.Context) (relay.Lease, error) {
	return nil, errors.New("srvQueue: no delivery in these tests")
}

func (q *srvQueue) Close() error { return nil }

// stored returns the entries committed and their messages (Entry.Header,
// then the content).
func (q *srvQueue) stored() ([]*relay.Entry, [][]byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs := make([][]byte, len(q.contents))
	for i, c := range q.contents {
		msgs[i] = append(append([]byte(nil), q.entries[i].Header...), c...)
	}
	return append([]*relay.Entry(nil), q.entries...), msgs
}

func (q *srvQueue) counts() (creates, commitCalls, aborts int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.creates, q.commitCalls, q.aborts
}

type srvQueueWriter struct {
	q    *srvQueue
	buf  bytes.Buffer
	done bool
}

func (w *srvQueueWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("srvQueue: write after Commit or Abort")
	}
	return w.buf.Write(p)
}

func (w *srvQueueWriter) Commit(ctx context.Context, e *relay.Entry) error {
	w.q.mu.Lock()
	defer w.q.mu.Unlock()
	w.q.commitCalls++
	e.ID = fmt.Sprintf("Q%04d", len(w.q.entries)+1)
	e.Created = time.Now()
	e.NextAttempt = e.Created
	w.q.entries = append(w.q.entries, e)
	w.q.contents = append(w.q.contents, bytes.Clone(w.buf.Bytes()))
	w.done = true
	return nil
}

func (w *srvQueueWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.q.mu.Lock()
	w.q.aborts++
	w.q.mu.Unlock()
	return nil
}

// srvKeys are made once per test binary: the TLS certificate, the
// customer's DKIM key (Ed25519) and the provider's (RSA).
var srvKeys = sync.OnceValues(func() (*srvKeyset, error) {
	k := &srvKeyset{}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"relay.test", "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	k.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: cert}
	k.pool = x509.NewCertPool()
	k.pool.AddCert(cert)
	k.customer = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	if k.provider, err = dkim.GenerateKey("rsa2048", nil); err != nil {
		return nil, err
	}
	return k, nil
})

type srvKeyset struct {
	cert     tls.Certificate
	pool     *x509.CertPool
	customer crypto.Signer
	provider crypto.Signer
}

// srvFixture is a running relay.Server on 127.0.0.1 with a STARTTLS
// listener (addr) and an implicit-TLS one (tlsAddr), its queue, and what a
// test needs to check what it queued.
type srvFixture struct {
	t        testing.TB
	srv      *relay.Server
	addr     string
	tlsAddr  string
	q        *srvQueue
	auth     *srvAuth
	client   *tls.Config
	verifier *dkim.Verifier
	srs      *srs.Rewriter
	served   chan error

	mu     sync.Mutex
	events []relay.Event
	logs   bytes.Buffer
}

// srvStart starts a server with the fixture's options, as edit changes
// them.
func srvStart(t testing.TB, edit func(o *relay.ServerOptions)) *srvFixture {
	t.Helper()
	return srvStartQueue(t, nil, edit, nil)
}

// srvStartOn is srvStart with the listeners given to the server wrapped.
func srvStartOn(t testing.TB, edit func(o *relay.ServerOptions), wrap func(net.Listener) net.Listener) *srvFixture {
	t.Helper()
	return srvStartQueue(t, nil, edit, wrap)
}

// srvStartQueue is srvStartOn with the server queuing in q, when it is not
// nil, rather than in the fixture's srvQueue (which then stays empty).
func srvStartQueue(t testing.TB, q relay.Queue, edit func(o *relay.ServerOptions), wrap func(net.Listener) net.Listener) *srvFixture {
	t.Helper()
	keys, err := srvKeys()
	if err != nil {
		t.Fatal(err)
	}
	if wrap == nil {
		wrap = func(l net.Listener) net.Listener { return l }
	}
	fx := &srvFixture{t: t, q: &srvQueue{}, auth: &srvAuth{}, served: make(chan error, 2)}
	if q == nil {
		q = fx.q
	}
	fx.client = &tls.Config{RootCAs: keys.pool, ServerName: "relay.test"}

	zone := dnstest.NewZone()
	customer, err := dkim.NewSigner("customer.example", "s1", keys.customer, nil)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := dkim.NewSigner("relay.test", "p1", keys.provider, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		sel, domain string
		pub         crypto.PublicKey
	}{{"s1", "customer.example", keys.customer.Public()}, {"p1", "relay.test", keys.provider.Public()}} {
		txt, err := dkim.KeyRecordText(k.pub, nil)
		if err != nil {
			t.Fatal(err)
		}
		zone.AddTXT(dkim.RecordName(k.sel, k.domain), txt)
	}
	if fx.verifier, err = dkim.NewVerifier(zone, nil); err != nil {
		t.Fatal(err)
	}
	if fx.srs, err = srs.NewRewriter("srs.relay.test", []string{"a test secret"}, nil); err != nil {
		t.Fatal(err)
	}

	o := relay.ServerOptions{
		Hostname:       "relay.test",
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{keys.cert}},
		Authenticator:  fx.auth,
		DomainSigners:  map[string]*dkim.Signer{"Customer.Example": customer},
		ProviderSigner: provider,
		ReturnPaths:    map[string]string{"customer.example": "em1234.customer.example"},
		SRS:            fx.srs,
		Events: relay.EventsFunc(func(ctx context.Context, e *relay.Event) {
			fx.mu.Lock()
			fx.events = append(fx.events, *e)
			fx.mu.Unlock()
		}),
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&fx.mu, &fx.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&o)
	}
	if fx.srv, err = relay.NewServer(q, &o); err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fx.addr = plain.Addr().String()
	go func() { fx.served <- fx.srv.Serve(wrap(plain)) }()
	if o.TLSConfig != nil {
		implicit, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fx.tlsAddr = implicit.Addr().String()
		go func() { fx.served <- fx.srv.ServeTLS(wrap(implicit)) }()
	}
	t.Cleanup(func() { fx.srv.Close() })
	return fx
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (fx *srvFixture) logText() string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return fx.logs.String()
}

func (fx *srvFixture) eventList() []relay.Event {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return append([]relay.Event(nil), fx.events...)
}

// nothingQueued checks that no message was committed, nor even offered
// to Commit.
func (fx *srvFixture) nothingQueued() {
	fx.t.Helper()
	if _, commits, _ := fx.q.counts(); commits != 0 {
		fx.t.Errorf("Commit called %d times, want 0", commits)
	}
	if e, _ := fx.q.stored(); len(e) != 0 {
		fx.t.Errorf("%d messages queued, want none", len(e))
	}
}

// srvRaw is a line-level SMTP client, to send what real clients never
// do.
type srvRaw struct {
	t    testing.TB
	conn net.Conn
	tp   *textproto.Conn
}

// srvDial connects from local ("" for any loopback address) and reads
// the greeting, which must have the code want.
func srvDial(t testing.TB, addr, local string, want int) *srvRaw {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &srvRaw{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { c.conn.Close() })
	c.expect(want)
	return c
}

// srvDialTLS connects to an implicit-TLS listener.
func srvDialTLS(t testing.TB, addr string, cfg *tls.Config, want int) *srvRaw {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &srvRaw{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { c.conn.Close() })
	c.expect(want)
	return c
}

// reply reads one reply; its text keeps the enhanced code.
func (c *srvRaw) reply() (int, string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return c.tp.ReadResponse(0)
}

// expect reads a reply and checks its code.
func (c *srvRaw) expect(code int) string {
	c.t.Helper()
	got, msg, err := c.reply()
	if err != nil {
		c.t.Fatalf("reading the reply (want %d): %v", code, err)
	}
	if got != code {
		c.t.Fatalf("reply %d %s, want %d", got, msg, code)
	}
	return msg
}

// expectText reads a reply and checks that it begins with prefix (code
// and enhanced code).
func (c *srvRaw) expectText(prefix string) string {
	c.t.Helper()
	code, msg, err := c.reply()
	if err != nil {
		c.t.Fatalf("reading the reply (want %s): %v", prefix, err)
	}
	got := fmt.Sprintf("%d %s", code, msg)
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("reply %q, want %q", got, prefix)
	}
	return got
}

// write sends bytes as they are.
func (c *srvRaw) write(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// cmd sends a command line and checks the reply's code.
func (c *srvRaw) cmd(code int, line string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.expect(code)
}

// startTLS does STARTTLS and EHLO again.
func (c *srvRaw) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd(220, "STARTTLS")
	c.handshake(cfg)
}

// handshake does the client's side of TLS after a 220 to STARTTLS.
func (c *srvRaw) handshake(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.tp = tc, textproto.NewConn(tc)
}

// login does EHLO, STARTTLS, EHLO and AUTH PLAIN with key.
func (c *srvRaw) login(cfg *tls.Config, key string) {
	c.t.Helper()
	c.cmd(250, "EHLO client.test")
	c.startTLS(cfg)
	c.cmd(250, "EHLO client.test")
	c.cmd(235, "AUTH PLAIN "+srvPlain(key))
}

// closed reports whether the server closed the connection: a read sees
// the end without more replies.
func (c *srvRaw) closed() bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c.conn)
	return err == nil && len(b) == 0 || len(b) == 0 && isReset(err)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || errors.Is(err, io.EOF))
}

// srvMessage is a message from customer.example without Message-ID and
// Date.
const srvMessage = "From: Shop <orders@customer.example>\r\n" +
	"To: buyer@example.net\r\n" +
	"Subject: Your order\r\n" +
	"\r\n" +
	"Thank you for your order.\r\n" +
	".a line that begins with a dot\r\n"

// srvTrusted is a prefix of loopback addresses for the trusted-network
// tests: the client dials from 127.0.0.2.
var srvTrusted = netip.MustParsePrefix("127.0.0.2/32")
