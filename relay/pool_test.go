package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// Ten messages, one connection: TLS and AUTH once, RSET between messages.
func TestPoolReuse(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{Users: users})
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: alice})
	for i := range 10 {
		send(t, c, envelope("a@example.com", fmt.Sprintf("r%d@example.org", i)), hello)
	}
	st := srv.Stats()
	if st.Connections != 1 || st.Messages != 10 {
		t.Errorf("stats %+v, want 10 messages on 1 connection", st)
	}
	if st.Commands["STARTTLS"] != 1 || st.Commands["AUTH"] != 1 || st.Commands["RSET"] != 9 {
		t.Errorf("commands %v", st.Commands)
	}
	c.Close()
	if n := srv.Stats().Commands["QUIT"]; n != 1 {
		t.Errorf("Close sent %d QUITs", n)
	}
	if _, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello); !errors.Is(err, relay.ErrClientClosed) {
		t.Errorf("Send after Close: %v", err)
	}
}

func TestPoolLimits(t *testing.T) {
	t.Parallel()
	env := envelope("a@example.com", "b@example.org")
	t.Run("messages per connection", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, nil)
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), MaxMessagesPerConn: 3})
		for range 7 {
			send(t, c, env, hello)
		}
		if st := srv.Stats(); st.Connections != 3 {
			t.Errorf("%d connections, want 3 for 7 messages, 3 a connection", st.Connections)
		}
		waitFor(t, "the QUITs", func() bool { return srv.Stats().Commands["QUIT"] == 2 })
	})
	t.Run("age", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, nil)
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), MaxConnAge: 30 * time.Millisecond})
		send(t, c, env, hello)
		time.Sleep(40 * time.Millisecond)
		send(t, c, env, hello)
		if st := srv.Stats(); st.Connections != 2 {
			t.Errorf("%d connections, want a new one after MaxConnAge", st.Connections)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, nil)
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), IdleTimeout: 10 * time.Millisecond})
		send(t, c, env, hello)
		waitFor(t, "the idle connection's QUIT", func() bool { return srv.Stats().Commands["QUIT"] == 1 })
		send(t, c, env, hello)
		if st := srv.Stats(); st.Connections != 2 {
			t.Errorf("%d connections, want a new one after IdleTimeout", st.Connections)
		}
	})
	t.Run("idle connections", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, MaxConns: 3, MaxIdleConns: 1})
		// Three Sends at once, each on its own connection.
		release := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 3 {
			m := &blocking{opened: make(chan struct{}), release: release}
			wg.Go(func() {
				if _, err := c.Send(ctx(t), envelope("a@example.com", fmt.Sprintf("r%d@example.org", i)), m); err != nil {
					t.Error(err)
				}
			})
			<-m.opened
		}
		close(release)
		wg.Wait()
		// One is kept, the two others QUIT; the next Send reuses the one.
		waitFor(t, "the QUITs", func() bool { return srv.Stats().Commands["QUIT"] == 2 })
		send(t, c, env, hello)
		if st := srv.Stats(); st.Connections != 3 || st.Messages != 4 || st.Commands["QUIT"] != 2 {
			t.Errorf("stats %+v, want 4 messages on 3 connections, 2 closed", st)
		}
	})
	t.Run("no idle connections", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, nil)
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), MaxIdleConns: -1})
		for range 3 {
			send(t, c, env, hello)
		}
		if st := srv.Stats(); st.Connections != 3 {
			t.Errorf("%d connections, want one a message", st.Connections)
		}
		waitFor(t, "the QUITs", func() bool { return srv.Stats().Commands["QUIT"] == 3 })
	})
}

// At most MaxConns connections in use at once, however many Sends.
func TestPoolConcurrency(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Delay: 5 * time.Millisecond})
	w := &wire{}
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, MaxConns: 2, MaxIdleConns: 2, Dial: w.dial})
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			if _, err := c.Send(ctx(t), envelope("a@example.com", fmt.Sprintf("r%d@example.org", i)), hello); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if w.maxOpen > 2 {
		t.Errorf("%d connections open at once, want at most 2", w.maxOpen)
	}
	if st := srv.Stats(); st.Messages != 12 || st.Connections > 2 {
		t.Errorf("stats %+v", st)
	}
}

// blocking is a message whose reading waits for a release.
type blocking struct {
	opened  chan struct{}
	release chan struct{}
}

func (m *blocking) Size() int64 { return -1 }

func (m *blocking) Open() (io.ReadCloser, error) {
	close(m.opened)
	<-m.release
	return io.NopCloser(&io.LimitedReader{R: zeros{}, N: 10}), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A Send waiting for a connection slot gives up with its context.
func TestPoolWaitBounded(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, MaxConns: 1})
	m := &blocking{opened: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), m)
		done <- err
	}()
	<-m.opened // the first Send holds the one connection
	cx, cancel := context.WithTimeout(ctx(t), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Send(cx, envelope("a@example.com", "b@example.org"), hello); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Send = %v, want the deadline", err)
	}
	close(m.release)
	if err := <-done; err != nil {
		t.Error(err)
	}
	if st := srv.Stats(); st.Connections != 1 || st.Messages != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A pooled connection that died (the server hung up, or said 421 and
// closed) is replaced once, and the message goes on the new one.
func TestPoolDeadConnection(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		disable []string
		fault   smtptest.Fault
	}{
		{"hangup", nil, smtptest.Fault{On: smtptest.RSET, Hangup: true, Times: 1}},
		{"421", nil, smtptest.Fault{On: smtptest.RSET, Reply: relay.Reply{Code: 421, Enhanced: relay.EnhancedCode{4, 4, 2}, Message: "Idle too long"}, Times: 1}},
		{"hangup, DATA", []string{"CHUNKING"}, smtptest.Fault{On: smtptest.RSET, Hangup: true, Times: 1}},
		{"hangup, no pipelining", []string{"PIPELINING"}, smtptest.Fault{On: smtptest.RSET, Hangup: true, Times: 1}},
	} {
		srv := newServer(t, &smtptest.Options{Users: users, Disable: tt.disable})
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool(), Credentials: &sasl.Credentials{Username: "alice", Password: "wonderland"}})
		send(t, c, envelope("a@example.com", "b@example.org"), hello)
		srv.Fail(tt.fault)
		rec := send(t, c, envelope("a@example.com", "c@example.org"), hello)
		if len(rec.Accepted()) != 1 {
			t.Errorf("%s: receipt %+v", tt.name, rec.Rcpts)
		}
		if st := srv.Stats(); st.Connections != 2 || st.Messages != 2 {
			t.Errorf("%s: stats %+v, want the second message on a second connection", tt.name, st)
		}
	}

	// A failure on a new connection is not tried again.
	srv := newServer(t, nil)
	srv.Fail(smtptest.Fault{On: smtptest.MAIL, Hangup: true, Times: 1})
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
	if _, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello); err == nil {
		t.Error("no error from a connection that hung up")
	}
	if st := srv.Stats(); st.Connections != 1 {
		t.Errorf("%d connections, want no second try", st.Connections)
	}
}

// waitFor polls cond until it holds, or fails the test after a long
// while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
