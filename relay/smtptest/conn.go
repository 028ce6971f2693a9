package smtptest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// What the bytes the client sends next are, as the conn reads them.
const (
	modeCommand  = iota // a command line
	modeSASL            // a SASL response line of AUTH
	modeData            // message content after DATA, up to "." alone
	modeChunk           // the chunk of a BDAT command
	modeLongLine        // the rest of a line longer than the buffer
)

// conn is the connection go-smtp serves: it reads the client's bytes one
// command line at a time, so that it can count, refuse and intercept
// commands (STARTTLS: it does the TLS itself, so go-smtp never sees TLS),
// and it collects go-smtp's reply lines, to delay them, replace the
// greeting, or edit the EHLO reply. Read and Write run on go-smtp's
// goroutine for the connection; the fields under mu are read from others.
type conn struct {
	s      *Server
	raw    net.Conn
	t      net.Conn // raw, or TLS over raw
	br     *bufio.Reader
	remote netip.AddrPort

	pending   []byte // bytes for go-smtp's next reads
	mode      int
	chunkLeft int64
	dot       dotState
	dropLeft  int64 // octets of content before a Content hangup; -1: none
	lastVerb  string
	bdatLast  bool // the current BDAT is the LAST
	bdatOpen  bool // a BDAT transaction has begun
	needEhlo  bool // after STARTTLS, until EHLO (RFC 3207 §4.2)
	refused   bool // the greeting was a refusal (RFC 5321 §3.1)
	greeted   bool
	swallow   int      // replies of go-smtp to drop: those to commands the conn made up
	wbuf      []byte   // a reply line go-smtp is writing
	reply     []string // the lines of a multi-line reply so far

	mu      sync.Mutex
	tls     *tls.ConnectionState
	auth    *Auth
	viaBDAT bool
}

func (s *Server) newConn(raw net.Conn) *conn {
	c := &conn{s: s, raw: raw, t: raw, dropLeft: -1}
	if ap, err := netip.ParseAddrPort(raw.RemoteAddr().String()); err == nil {
		c.remote = ap
	}
	if s.opts.TLS == ImplicitTLS {
		c.t = tls.Server(raw, s.tlsConfig)
	}
	c.br = bufio.NewReaderSize(c.t, 4096)
	s.mu.Lock()
	s.live[c] = struct{}{}
	s.stats.Connections++
	s.mu.Unlock()
	return c
}

func (c *conn) tlsState() *tls.ConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tls
}

func (c *conn) identity() *Auth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth
}

func (c *conn) setIdentity(a *Auth) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth = a
}

func (c *conn) chunked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.viaBDAT
}

// handshake completes the TLS handshake of an implicit-TLS connection.
func (c *conn) handshake() error {
	tc, ok := c.t.(*tls.Conn)
	if !ok || c.tlsState() != nil {
		return nil
	}
	if err := tc.Handshake(); err != nil {
		c.hangup()
		return err
	}
	st := tc.ConnectionState()
	c.mu.Lock()
	c.tls = &st
	c.mu.Unlock()
	return nil
}

// hangup closes the connection under go-smtp: its next read fails and its
// session ends.
func (c *conn) hangup() { c.raw.Close() }

// Close is go-smtp's: after QUIT, on errors, and when its session ends.
func (c *conn) Close() error {
	err := c.raw.Close()
	c.s.mu.Lock()
	delete(c.s.live, c)
	c.s.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (c *conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *conn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// Read gives go-smtp the client's bytes: one command line per call, or
// message content.
func (c *conn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// next reads the client's next bytes into c.pending, acting on commands.
func (c *conn) next() error {
	if err := c.handshake(); err != nil {
		return err
	}
	switch c.mode {
	case modeData, modeChunk:
		return c.content()
	case modeLongLine, modeSASL:
		line, err := c.br.ReadSlice('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			c.mode = modeCommand
		}
		c.pending = append(c.pending[:0], line...)
		if err == bufio.ErrBufferFull || len(line) > 0 {
			return nil
		}
		return err
	}
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.mode = modeLongLine // go-smtp refuses it, and closes
		c.pending = append(c.pending[:0], line...)
		return nil
	}
	if err != nil {
		if len(line) == 0 {
			return err
		}
		c.pending = append(c.pending[:0], line...) // the last, unended line
		return nil
	}
	return c.command(line)
}

// command acts on a command line, and passes it to go-smtp or answers it.
func (c *conn) command(line []byte) error {
	text := strings.TrimRight(string(line), "\r\n")
	verb, arg, _ := strings.Cut(text, " ")
	verb = strings.ToUpper(verb)
	c.s.count(func(st *Stats) { st.Commands[verb]++ })

	if c.refused && verb != "QUIT" {
		return c.send(503, relay.EnhancedCode{5, 5, 1}, "No service here: send QUIT")
	}
	if c.needEhlo {
		switch verb {
		case "EHLO", "HELO", "QUIT", "NOOP", "RSET":
		default:
			return c.send(503, relay.EnhancedCode{5, 5, 1}, "Send EHLO again after STARTTLS")
		}
	}
	if on := commandOf(verb); on != "" {
		if f := c.s.take(on, rcptAddr(verb, arg)); f != nil {
			return c.fault(f, verb, arg)
		}
	}
	switch verb {
	case "EHLO", "HELO":
		c.needEhlo = false
	case "STARTTLS":
		if c.s.opts.TLS == StartTLS && c.tlsState() == nil {
			return c.startTLS()
		}
	case "BDAT":
		size, last, ok := parseBDAT(arg)
		if !ok {
			break
		}
		if c.s.disabled["CHUNKING"] {
			if _, err := io.CopyN(io.Discard, c.br, size); err != nil {
				return err
			}
			return c.send(502, relay.EnhancedCode{5, 5, 1}, "CHUNKING is not offered")
		}
		c.mode, c.chunkLeft, c.bdatLast = modeChunk, size, last
		if !c.bdatOpen {
			c.bdatOpen = true
			c.startContent(true)
		}
	case "RSET":
		c.bdatOpen = false
	}
	c.lastVerb = verb
	c.pending = append(c.pending[:0], line...)
	return nil
}

// fault answers a command with a fault instead of passing it to go-smtp.
func (c *conn) fault(f *Fault, verb, arg string) error {
	c.lastVerb = ""
	if verb == "BDAT" {
		// The chunk follows the command whatever the answer; the
		// transaction ends (RFC 3030 §2), go-smtp's too.
		if size, _, ok := parseBDAT(arg); ok {
			if _, err := io.CopyN(io.Discard, c.br, size); err != nil {
				return err
			}
		}
		c.bdatOpen = false
		c.swallow++
		c.pending = append(c.pending[:0], "RSET\r\n"...)
	}
	if f.Hangup {
		c.hangup()
		return net.ErrClosed
	}
	if err := c.sendReply(f.Reply); err != nil {
		return err
	}
	if f.Reply.Code == 421 {
		c.hangup()
		return net.ErrClosed
	}
	return nil
}

// startTLS answers STARTTLS and does the handshake (RFC 3207 §4). What the
// client sent after the command, before TLS, is discarded: a client must
// wait for the 220, and a man in the middle could have added it.
func (c *conn) startTLS() error {
	if c.identity() != nil {
		// go-smtp would keep the AUTH that RFC 3207 §4.2 says to forget.
		return c.send(503, relay.EnhancedCode{5, 5, 1}, "STARTTLS after AUTH is not supported here")
	}
	c.br.Discard(c.br.Buffered())
	if err := c.send(220, relay.EnhancedCode{2, 0, 0}, "Ready to start TLS"); err != nil {
		return err
	}
	tc := tls.Server(c.raw, c.s.tlsConfig)
	if err := tc.Handshake(); err != nil {
		c.hangup()
		return err
	}
	st := tc.ConnectionState()
	c.mu.Lock()
	c.t, c.tls = tc, &st
	c.mu.Unlock()
	c.br.Reset(tc)
	c.needEhlo = true
	c.lastVerb = "STARTTLS"
	return nil
}

// startContent begins message content: a Content fault may cut it.
func (c *conn) startContent(bdat bool) {
	c.mu.Lock()
	c.viaBDAT = bdat
	c.mu.Unlock()
	c.dropLeft = -1
	if f := c.s.take(Content, ""); f != nil {
		c.dropLeft = f.After
	}
}

// content reads message content: DATA's up to the end line (as go-smtp
// sees it), or a BDAT chunk.
func (c *conn) content() error {
	if c.mode == modeChunk && c.chunkLeft == 0 {
		c.mode = modeCommand
		return nil
	}
	if c.dropLeft == 0 {
		c.hangup()
		return net.ErrClosed
	}
	if _, err := c.br.Peek(1); err != nil {
		return err
	}
	n := int64(c.br.Buffered())
	if c.mode == modeChunk {
		n = min(n, c.chunkLeft)
	}
	if c.dropLeft > 0 {
		n = min(n, c.dropLeft)
	}
	b, _ := c.br.Peek(int(n))
	if c.mode == modeData {
		if end := c.dot.scan(b); end >= 0 {
			b = b[:end]
			c.mode = modeCommand
			c.lastVerb = ""
		}
	} else if c.chunkLeft -= int64(len(b)); c.chunkLeft == 0 {
		c.mode = modeCommand
	}
	if c.dropLeft > 0 {
		c.dropLeft -= int64(len(b))
	}
	c.pending = append(c.pending[:0], b...)
	c.br.Discard(len(b))
	return nil
}

// Write takes go-smtp's reply lines; a reply is acted on, and sent, once
// its last line is in.
func (c *conn) Write(p []byte) (int, error) {
	c.wbuf = append(c.wbuf, p...)
	for {
		i := bytes.IndexByte(c.wbuf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(c.wbuf[:i+1])
		c.wbuf = c.wbuf[i+1:]
		c.reply = append(c.reply, line)
		if len(line) >= 4 && line[3] == '-' {
			continue // more lines to come
		}
		lines := c.reply
		c.reply = nil
		if err := c.replied(lines); err != nil {
			return 0, err
		}
	}
}

// replied acts on a reply of go-smtp and sends it.
func (c *conn) replied(lines []string) error {
	code, _ := strconv.Atoi(lines[0][:min(3, len(lines[0]))])
	if c.swallow > 0 {
		c.swallow--
		return nil
	}
	if !c.greeted {
		c.greeted = true
		if err := c.handshake(); err != nil {
			return err
		}
		if f := c.s.take(Greeting, ""); f != nil {
			if f.Hangup {
				c.hangup()
				return net.ErrClosed
			}
			if err := c.sendReply(f.Reply); err != nil {
				return err
			}
			if f.Reply.Code == 421 {
				c.hangup()
				return net.ErrClosed
			}
			c.refused = true
			return nil
		}
	}
	switch {
	case c.lastVerb == "EHLO" && code == 250:
		lines = c.editEHLO(lines)
	case c.lastVerb == "DATA" && code == 354:
		c.mode, c.dot = modeData, 0
		c.startContent(false)
	case c.lastVerb == "AUTH" && code == 334:
		c.mode = modeSASL
	case c.lastVerb == "BDAT" && (code != 250 || c.bdatLast):
		c.bdatOpen = false
	}
	return c.write([]byte(strings.Join(lines, "")))
}

// editEHLO removes the extensions disabled from go-smtp's EHLO reply and
// adds those go-smtp does not know the conn offers: STARTTLS before TLS,
// REQUIRETLS (RFC 8689 §4) on TLS.
func (c *conn) editEHLO(lines []string) []string {
	out := []string{strings.TrimRight(lines[0][4:], "\r\n")}
	for _, l := range lines[1:] {
		kw := strings.TrimRight(l[4:], "\r\n")
		name, _, _ := strings.Cut(kw, " ")
		if !c.s.disabled[strings.ToUpper(name)] {
			out = append(out, kw)
		}
	}
	tlsOn := c.tlsState() != nil
	if c.s.opts.TLS == StartTLS && !tlsOn {
		out = append(out, "STARTTLS")
	}
	if tlsOn && !c.s.disabled["REQUIRETLS"] {
		out = append(out, "REQUIRETLS")
	}
	for i := range out {
		sep := "-"
		if i == len(out)-1 {
			sep = " "
		}
		out[i] = "250" + sep + out[i] + "\r\n"
	}
	return out
}

// send writes a reply of the conn's own.
func (c *conn) send(code int, enh relay.EnhancedCode, text string) error {
	return c.sendReply(relay.Reply{Code: code, Enhanced: enh, Message: text})
}

// sendReply writes r as a server does, the enhanced code on each line
// (RFC 2034 §4).
func (c *conn) sendReply(r relay.Reply) error {
	lines := strings.Split(r.Message, "\n")
	var b strings.Builder
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		b.WriteString(strconv.Itoa(r.Code) + sep)
		if e := r.Enhanced.String(); e != "" {
			b.WriteString(e)
			if l != "" {
				b.WriteByte(' ')
			}
		}
		b.WriteString(l + "\r\n")
	}
	return c.write([]byte(b.String()))
}

// write sends bytes to the client after the server's delay.
func (c *conn) write(b []byte) error {
	if d := time.Duration(c.s.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.s.closing:
			t.Stop()
			return net.ErrClosed
		}
	}
	_, err := c.t.Write(b)
	return err
}

// rcptAddr is the address of a RCPT TO argument, "" for other verbs.
func rcptAddr(verb, arg string) string {
	if verb != "RCPT" {
		return ""
	}
	_, rest, ok := strings.Cut(arg, "<")
	if !ok {
		return ""
	}
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

// parseBDAT reads "size [LAST]" as go-smtp does: when it cannot, go-smtp
// answers 501 and no chunk follows.
func parseBDAT(arg string) (size int64, last, ok bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 || len(f) == 2 && !strings.EqualFold(f[1], "LAST") {
		return 0, false, false
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, false, false
	}
	return int64(n), len(f) == 2, true
}

// dotState follows message content as go-smtp's DATA reader does (the
// state machine of net/textproto's dot reader), to find the end line
// where go-smtp will: "." alone after a CRLF, or at the start.
type dotState int

const (
	dotBeginLine dotState = iota
	dotDot
	dotDotCR
	dotCR
	dotData
)

// scan advances the state over b and returns the length of b up to and
// including the end line, or -1 when b does not hold it.
func (s *dotState) scan(b []byte) int {
	for i, ch := range b {
		switch *s {
		case dotBeginLine:
			switch ch {
			case '.':
				*s = dotDot
			case '\r':
				*s = dotCR
			default:
				*s = dotData
			}
		case dotDot:
			if ch == '\r' {
				*s = dotDotCR
			} else {
				*s = dotData
			}
		case dotDotCR:
			if ch == '\n' {
				*s = dotBeginLine
				return i + 1
			}
			*s = dotData
		case dotCR:
			if ch == '\n' {
				*s = dotBeginLine
			} else {
				*s = dotData
			}
		case dotData:
			if ch == '\r' {
				*s = dotCR
			}
		}
	}
	return -1
}
