package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// output prints the demo's steps; with verbose, the SMTP conversations
// and DNS queries too. The servers' goroutines print through it, so it
// holds a lock.
type output struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	done    bool // the story is told: the trace of the shutdown is left out
}

func newOutput(w io.Writer, verbose bool) *output { return &output{w: w, verbose: verbose} }

func (o *output) printf(format string, a ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format, a...)
}

func (o *output) step(title string) { o.printf("\n== %s\n", title) }

// end prints the last line; nothing of the trace comes after it.
func (o *output) end(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = true
	fmt.Fprintf(o.w, "\n%s\n", line)
}

// check prints an ok line, or returns the error of a failed check.
func (o *output) check(ok bool, format string, a ...any) error {
	if !ok {
		return fmt.Errorf("check failed: "+format, a...)
	}
	o.printf("  ok  "+format+"\n", a...)
	return nil
}

// logf prints a line of the -v trace.
func (o *output) logf(format string, a ...any) {
	if !o.verbose {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.done {
		fmt.Fprintf(o.w, "    | "+format+"\n", a...)
	}
}

// logger is the *slog.Logger of the relay's parts: their debug records
// with -v, nothing without.
func (o *output) logger() *slog.Logger {
	if !o.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(o.lineWriter("log"), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// queries prints, with -v, the DNS questions the zone was asked since the
// last call.
func (o *output) queries(z *dnstest.Zone) {
	for _, q := range z.Queries() {
		o.logf("dns  %s", q)
	}
	z.ResetQueries()
}

// lineWriter returns a writer whose lines go to the -v trace, each after
// the prefix.
func (o *output) lineWriter(prefix string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		for line := range strings.Lines(string(p)) {
			o.logf("%s %s", prefix, strings.TrimRight(line, "\r\n"))
		}
		return len(p), nil
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// dialer returns a Dial function for relay.ClientOptions whose
// connections, with -v, print the plaintext of the session, labelled
// with who speaks to whom. After STARTTLS the bytes are ciphertext: one
// line says so.
func (o *output) dialer(from, to string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || !o.verbose {
			return c, err
		}
		o.logf("%s -> %s: connected to %s", from, to, addr)
		return &logConn{Conn: c, o: o, sent: from + " >", recv: to + " <"}, nil
	}
}

// logConn is a net.Conn that prints what passes, line by line, until TLS
// starts.
type logConn struct {
	net.Conn
	o          *output
	sent, recv string
	mu         sync.Mutex
	tls        bool
}

func (c *logConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.log(c.recv, p[:n])
	return n, err
}

func (c *logConn) Write(p []byte) (int, error) {
	c.log(c.sent, p)
	return c.Conn.Write(p)
}

func (c *logConn) log(prefix string, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tls || len(p) == 0 {
		return
	}
	if p[0] == 0x16 { // a TLS handshake record (RFC 8446 §5.1)
		c.tls = true
		c.o.logf("%s [TLS handshake; the rest of the session is encrypted]", prefix)
		return
	}
	for line := range bytes.Lines(p) {
		c.o.logf("%s %s", prefix, bytes.TrimRight(line, "\r\n"))
	}
}
