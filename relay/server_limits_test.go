package relay_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

func TestServerSizeLimit(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.MaxMessageBytes = 2000 })
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO client.test")
	c.startTLS(fx.client)
	if ehlo := c.cmd(250, "EHLO client.test"); !strings.Contains(ehlo, "\nSIZE 2000") {
		t.Errorf("SIZE 2000 not advertised:\n%s", ehlo)
	}
	c.auth(srvKey)
	// Declared too large in MAIL (RFC 1870 §6.1).
	c.write("MAIL FROM:<orders@customer.example> SIZE=5000\r\n")
	c.expectText("552 5.3.4")
	big := srvMessage + strings.Repeat("0123456789012345678901234567890123456789012345678\r\n", 50)
	// Found too large in DATA: refused, and the session goes on.
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.cmd(354, "DATA")
	c.write(big + ".\r\n")
	c.expectText("552 5.3.4")
	// And in BDAT.
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.write("BDAT " + strconv.Itoa(len(big)) + " LAST\r\n" + big)
	c.expectText("552 5.3.4")
	c.cmd(250, "NOOP")
	fx.nothingQueued()
}

// The size limit of DATA counts the content without the dots that stuff
// its lines (RFC 5321 §4.5.2): content of exactly MaxMessageBytes octets
// is taken (RFC 1870 §3), one more is refused, and the session goes on;
// the content queued is the content sent, unstuffed, whole.
func TestServerSizeLimitExact(t *testing.T) {
	t.Parallel()
	var lines strings.Builder
	for i := range 200 {
		fmt.Fprintf(&lines, ".line %03d begins with a dot, stuffed on the wire\r\n", i)
	}
	content := srvMessage + lines.String()
	wire := strings.ReplaceAll("\r\n"+content, "\r\n.", "\r\n..")[2:]
	for _, tt := range []struct {
		max  int
		code int
	}{
		{len(content), 250},
		{len(content) - 1, 552},
	} {
		fx := srvStart(t, func(o *relay.ServerOptions) { o.MaxMessageBytes = int64(tt.max) })
		c := srvDial(t, fx.addr, "", 220)
		c.login(fx.client, srvKey)
		c.cmd(250, "MAIL FROM:<orders@customer.example>")
		c.cmd(250, "RCPT TO:<buyer@example.net>")
		c.cmd(354, "DATA")
		c.write(wire + ".\r\n")
		c.expect(tt.code)
		c.cmd(250, "NOOP")
		_, msgs := fx.q.stored()
		switch {
		case tt.code == 552 && len(msgs) != 0:
			t.Errorf("max %d: %d octets queued", tt.max, len(content))
		case tt.code == 250 && (len(msgs) != 1 || !strings.HasSuffix(string(msgs[0]), lines.String())):
			t.Errorf("max %d: queued %d messages, the content not whole", tt.max, len(msgs))
		}
	}
}

// auth does AUTH PLAIN on a connection already in TLS.
func (c *srvRaw) auth(key string) {
	c.t.Helper()
	c.cmd(235, "AUTH PLAIN "+srvPlain(key))
}

func TestServerHeaderLimit(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.MaxHeaderBytes = 1024 })
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.cmd(354, "DATA")
	c.write(strings.Repeat("X-Filler: 0123456789012345678901234567890123456789\r\n", 30) + srvMessage + ".\r\n")
	c.expectText("552 5.3.4")
	fx.nothingQueued()
}

func TestServerRecipientLimit(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.MaxRecipients = 2 })
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<a@example.net>")
	c.cmd(250, "RCPT TO:<b@example.net>")
	c.write("RCPT TO:<c@example.net>\r\n")
	c.expectText("452 4.5.3")
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	c.expect(250)
	entries, _ := fx.q.stored()
	if len(entries) != 1 || len(entries[0].Envelope.To) != 2 {
		t.Fatalf("queued %+v, want one message to 2 recipients", entries)
	}
}

func TestServerConnectionLimits(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.MaxConnections = 3
		o.MaxConnectionsPerIP = 2
	})
	a1 := srvDial(t, fx.addr, "127.0.0.1", 220)
	srvDial(t, fx.addr, "127.0.0.1", 220)
	over := srvDial(t, fx.addr, "127.0.0.1", 421) // per address
	if !over.closed() {
		t.Error("a refused connection is still open")
	}
	srvDial(t, fx.addr, "127.0.0.2", 220)
	srvDial(t, fx.addr, "127.0.0.3", 421) // in all
	// On the implicit-TLS port, the refusal comes over TLS.
	srvDialTLS(t, fx.tlsAddr, fx.client, 421)
	for _, want := range []string{
		"reason=\"Too many connections from your address, try again later\"",
		"reason=\"Too many connections, try again later\"",
	} {
		if !strings.Contains(fx.logText(), want) {
			t.Errorf("no refusal with %s in the log", want)
		}
	}
	// A connection that ends frees its place: the server counts it out
	// just after it closes the socket, so a new one may still be refused
	// for a moment (the deadline is only a bound).
	a1.cmd(221, "QUIT")
	a1.closed()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fx.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(deadline)
		buf := make([]byte, 3)
		_, err = io.ReadFull(c, buf)
		c.Close()
		if err == nil && string(buf) == "220" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the place of a closed connection was not freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fx.nothingQueued()
}

// A client of a Trusted network may open more connections than
// MaxConnectionsPerIP (one application server, many sessions), but not
// more than MaxConnections.
func TestServerConnectionLimitsTrusted(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.MaxConnections = 4
		o.MaxConnectionsPerIP = 2
		o.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}
	})
	for range 4 {
		srvDial(t, fx.addr, "127.0.0.4", 220)
	}
	srvDial(t, fx.addr, "127.0.0.4", 421) // in all
	fx.nothingQueued()
}

func TestServerAuthFailureLimit(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.MaxAuthFailures = 3
		o.AuthFailureWindow = time.Hour
	})
	// Two failures on one connection, the third on another.
	c := srvDial(t, fx.addr, "127.0.0.1", 220)
	c.cmd(250, "EHLO client.test")
	c.startTLS(fx.client)
	c.cmd(250, "EHLO client.test")
	for range 2 {
		c.write("AUTH PLAIN " + srvPlain("shk_guess") + "\r\n")
		c.expectText("535 5.7.8")
	}
	c.cmd(221, "QUIT")
	c = srvDial(t, fx.addr, "127.0.0.1", 220)
	c.cmd(250, "EHLO client.test")
	c.startTLS(fx.client)
	c.cmd(250, "EHLO client.test")
	c.write("AUTH PLAIN " + srvPlain("shk_guess") + "\r\n")
	c.expectText("421 4.7.0")
	if !c.closed() {
		t.Error("the connection is still open after 421")
	}
	// The address is blocked: a new connection is refused, so not even
	// the right key is tried.
	b := srvDial(t, fx.addr, "127.0.0.1", 421)
	if !b.closed() {
		t.Error("a connection of a blocked address is still open")
	}
	if !strings.Contains(fx.logText(), "reason=\"Too many failed authentications, try again later\"") {
		t.Error("the refusal of a blocked address is not in the log")
	}
	if fx.auth.count() != 3 {
		t.Errorf("the Authenticator was asked %d times, want 3", fx.auth.count())
	}
	// Another address is not.
	o := srvDial(t, fx.addr, "127.0.0.2", 220)
	o.login(fx.client, srvKey)
	if strings.Contains(fx.logText(), "shk_guess") {
		t.Error("the log holds a password")
	}
	fx.nothingQueued()
}

func TestServerReadTimeout(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.ReadTimeout = time.Second })
	// Waiting for a command.
	c := srvDial(t, fx.addr, "", 220)
	c.expectText("421 4.4.2")
	if !c.closed() {
		t.Error("the connection is still open after the timeout")
	}
	// In the middle of the content.
	c = srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO client.test")
	c.startTLS(fx.client)
	c.cmd(250, "EHLO client.test")
	c.auth(srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.cmd(354, "DATA")
	c.write("From: orders@customer.example\r\n")
	c.expectText("421 4.4.2")
	if !c.closed() {
		t.Error("the connection is still open after the timeout")
	}
	fx.nothingQueued()
}

func TestServerWriteTimeout(t *testing.T) {
	t.Parallel()
	// Small socket buffers on both sides, so that a client that does not
	// read soon makes the server's writes wait.
	fx := srvStartOn(t, func(o *relay.ServerOptions) { o.WriteTimeout = 100 * time.Millisecond },
		func(l net.Listener) net.Listener { return smallBuffers{l} })
	conn, err := net.Dial("tcp", fx.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	// The client sends commands and never reads a reply: the server's
	// writes wait, time out, and the server closes the connection, which
	// the client's writes see.
	_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
	batch := []byte(strings.Repeat("NOOP\r\n", 100))
	for {
		if _, err = conn.Write(batch); err != nil {
			break
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server never closed the connection")
	}
	if !strings.Contains(fx.logText(), "write failed") {
		t.Error("no record of the failed write")
	}
}

// smallBuffers gives the connections it accepts a small send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestServerLineLength(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.MaxLineLength = 200 })
	// A command line.
	c := srvDial(t, fx.addr, "", 220)
	c.write("EHLO " + strings.Repeat("x", 300) + "\r\n")
	c.expectText("500 5.5.2")
	if !c.closed() {
		t.Error("the connection is still open after the refusal")
	}
	// A line of the content: 200 octets with its CRLF pass, 201 do not.
	c = srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.cmd(354, "DATA")
	c.write(srvMessage + strings.Repeat("y", 198) + "\r\n.\r\n")
	c.expect(250)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.cmd(354, "DATA")
	c.write(srvMessage + strings.Repeat("y", 199) + "\r\n.\r\n")
	c.expectText("550 5.5.2 Error: line longer than 200 octets")
	if !c.closed() {
		t.Error("the connection is still open after the refusal")
	}
	if entries, _ := fx.q.stored(); len(entries) != 1 {
		t.Errorf("%d messages queued, want 1", len(entries))
	}
}
