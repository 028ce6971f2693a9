package natsqueue_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

// kvServer starts a NATS server with JetStream on 127.0.0.1, a port of
// the system's choosing, its store in dir (t.TempDir() when ""), shut
// down at the end of the test.
func kvServer(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatal("the NATS server did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// kvConnect connects to s, as one relay instance does, reconnecting
// quickly, and returns its JetStream.
func kvConnect(t *testing.T, s *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// logBuffer collects the records of a slog.Logger at debug level.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// eventually polls cond until it holds, and returns how long that took;
// it fails the test after a deadline far beyond what a working fleet
// needs (the figure that matters, under a second, is logged, not
// asserted: the machine may be busy).
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(start)
	t.Logf("%s after %v", what, d)
	return d
}

func newKeys(t *testing.T, js jetstream.JetStream, opts *natsqueue.KeysOptions) *natsqueue.Keys {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := natsqueue.NewKeys(ctx, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func newSuppressions(t *testing.T, js jetstream.JetStream, opts *natsqueue.SuppressionsOptions) *natsqueue.Suppressions {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsqueue.NewSuppressions(ctx, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// authErr returns the error of Authenticate of key as the API key user.
func authErr(k *natsqueue.Keys, key string) error {
	_, err := k.Authenticate(context.Background(), relay.KeyUser, key)
	return err
}

// kvProxy forwards TCP connections to a server until cut, which ends
// them and refuses new ones until mend: a network partition between one
// relay instance and NATS, the server staying up for the others.
type kvProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newKVProxy(t *testing.T, target string) *kvProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &kvProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *kvProxy) url() string { return "nats://" + p.ln.Addr().String() }

// setCut cuts (true) or mends (false) the proxy.
func (p *kvProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestMirrorReconnect: an instance cut off from NATS answers from its
// copy for MaxStale, then fails with ErrStale (a temporary error, not
// ErrAuthFailed); once the connection is back, it reads the bucket again
// and sees a key created and one revoked meanwhile by another instance,
// which stayed connected.
func TestMirrorReconnect(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	proxy := newKVProxy(t, s.Addr().String())
	nc, err := nats.Connect(proxy.url(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	jsA, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	a := newKeys(t, jsA, &natsqueue.KeysOptions{MaxStale: 200 * time.Millisecond, Logger: logs.logger()})
	b := newKeys(t, kvConnect(t, s), nil)
	ctx := context.Background()
	old, err := b.Create(ctx, "old", []string{relay.ScopeSend}, []string{"old.example"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a key created on the other instance", func() bool { return authErr(a, old) == nil })

	proxy.setCut(true)
	eventually(t, "ErrStale while cut off", func() bool { return errors.Is(authErr(a, old), natsqueue.ErrStale) })
	if err := authErr(a, old); errors.Is(err, relay.ErrAuthFailed) {
		t.Errorf("stale: %v, which is ErrAuthFailed; want a temporary error", err)
	}
	if _, err := a.List(ctx); !errors.Is(err, natsqueue.ErrStale) {
		t.Errorf("List while stale: %v, want ErrStale", err)
	}
	// Changes a cannot see now.
	if err := b.Revoke(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	fresh, err := b.Create(ctx, "fresh", []string{relay.ScopeSend}, []string{"fresh.example"})
	if err != nil {
		t.Fatal(err)
	}

	proxy.setCut(false)
	eventually(t, "the key created while cut off", func() bool { return authErr(a, fresh) == nil })
	eventually(t, "the key revoked while cut off", func() bool { return errors.Is(authErr(a, old), relay.ErrAuthFailed) })
	if !strings.Contains(logs.String(), "out of step") || !strings.Contains(logs.String(), "reading the bucket again") {
		t.Errorf("the log does not tell of the loss and the new reading:\n%s", logs.String())
	}
}
