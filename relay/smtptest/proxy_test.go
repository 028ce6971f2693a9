package smtptest_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// echo serves TCP on 127.0.0.1 and sends back what it reads, until the
// client half-closes.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string, delay time.Duration) *smtptest.Proxy {
	t.Helper()
	p, err := smtptest.NewProxy(target, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// The proxy keeps bytes in order, whole, in many writes, and passes on a
// half-close; a round trip through it takes at least twice its delay.
func TestProxy(t *testing.T) {
	t.Parallel()
	const delay = 20 * time.Millisecond
	p := newProxy(t, echo(t), delay)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	start := time.Now()
	c.Write([]byte("ping"))
	first := make([]byte, 4)
	if _, err := io.ReadFull(c, first); err != nil || string(first) != "ping" {
		t.Fatalf("read %q, %v", first, err)
	}
	if rtt := time.Since(start); rtt < 2*delay {
		t.Errorf("round trip %v through a proxy of %v each way", rtt, delay)
	}

	payload := make([]byte, 1<<20)
	rand.Read(payload)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < len(payload); i += 1000 {
			if _, err := c.Write(payload[i:min(i+1000, len(payload))]); err != nil {
				done <- err
				return
			}
		}
		done <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c) // to the echo's half-close, passed on
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("got %d bytes back, want the %d sent, in order", len(got), len(payload))
	}
}

// An SMTP session goes through the proxy; Close ends the connections it
// holds.
func TestProxySMTP(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	p, err := smtptest.NewProxy(s.Addr, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.Dial(p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(); err == nil {
		t.Error("the session goes on after the proxy closed")
	}
	if _, err := smtptest.NewProxy(s.Addr, -1); err == nil {
		t.Error("a negative delay was accepted")
	}
	if m := wait(t, s, 1)[0]; m.RemoteAddr.Addr().String() != "127.0.0.1" {
		t.Errorf("remote %v", m.RemoteAddr)
	}
}
