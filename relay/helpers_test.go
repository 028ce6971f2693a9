package relay_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// newServer starts an smtptest server, closed when the test ends.
func newServer(t *testing.T, opts *smtptest.Options) *smtptest.Server {
	t.Helper()
	s, err := smtptest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newClient makes a client, closed when the test ends.
func newClient(t *testing.T, addr string, opts *relay.ClientOptions) *relay.Client {
	t.Helper()
	c, err := relay.NewClient(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ctx is a context for one test operation, with a deadline far above
// anything a test needs, so that a bug fails rather than hangs.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func envelope(from string, to ...string) *relay.Envelope {
	return &relay.Envelope{From: from, To: relay.To(to...)}
}

var hello = relay.Bytes("From: a@example.com\r\nSubject: hi\r\n\r\nHello.\r\n")

// send sends and fails the test on an error.
func send(t *testing.T, c *relay.Client, env *relay.Envelope, msg relay.Message) *relay.Receipt {
	t.Helper()
	rec, err := c.Send(ctx(t), env, msg)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// replyOf is the *relay.Reply in err, or nil.
func replyOf(err error) *relay.Reply {
	var r *relay.Reply
	if errors.As(err, &r) {
		return r
	}
	return nil
}

// wire dials for a client and watches its connections: writes, round
// trips (a read after a write: the client waits for the server), bytes
// written if asked, connections open at once.
type wire struct {
	target string   // where to dial; "" is the address asked
	remote net.Addr // the remote address the client sees; nil is the real one
	record bool     // keep the bytes written

	mu      sync.Mutex
	dials   int
	writes  int
	trips   int
	open    int
	maxOpen int
	written bytes.Buffer
}

func (w *wire) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if w.target != "" {
		addr = w.target
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dials++
	w.open++
	w.maxOpen = max(w.maxOpen, w.open)
	return &wireConn{Conn: c, w: w}, nil
}

// counts returns the writes and round trips so far.
func (w *wire) counts() (writes, trips int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes, w.trips
}

func (w *wire) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.written.Bytes())
}

type wireConn struct {
	net.Conn
	w      *wire
	wrote  bool
	closed sync.Once
}

func (c *wireConn) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	c.w.writes++
	if c.w.record {
		c.w.written.Write(p)
	}
	c.wrote = true
	c.w.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *wireConn) Read(p []byte) (int, error) {
	c.w.mu.Lock()
	if c.wrote {
		c.w.trips++
		c.wrote = false
	}
	c.w.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *wireConn) RemoteAddr() net.Addr {
	if c.w.remote != nil {
		return c.w.remote
	}
	return c.Conn.RemoteAddr()
}

func (c *wireConn) Close() error {
	c.closed.Do(func() {
		c.w.mu.Lock()
		c.w.open--
		c.w.mu.Unlock()
	})
	return c.Conn.Close()
}
