package relay

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// What the client's next bytes are, as a serverConn reads them.
const (
	modeCommand = iota // a command line
	modeSASL           // a response line of an AUTH exchange (after a 334)
	modeData           // message content after DATA's 354, up to "." alone
	modeChunk          // the chunk that follows a BDAT command
)

// How a connection that is refused or ended on an error is closed: after
// its last reply, the relay stops writing (FIN) and reads and discards
// what the client still sends, for at most lingerTime and lingerBytes,
// before it closes. Closing at once would make the kernel answer the
// client's unread bytes with a reset, which can destroy the reply before
// the client reads it.
const (
	lingerTime  = time.Second
	lingerBytes = 64 << 10
)

// The replies to content that breaks the line rules of SMTP: CR and LF only
// together, as CRLF (RFC 5321 §2.3.8), no NUL (§4.5.2; RFC 6152 §3 for
// 8BITMIME), lines of bounded length (§4.5.3.1.6). The code and text for a
// bare LF are those of Postfix's smtpd_forbid_bare_newline = reject (its
// smtpd_forbid_bare_newline_reject_code is 550); the others follow them.
var (
	errBareLF = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Error: bare <LF> received"}
	errBareCR = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Error: bare <CR> received"}
	errNUL    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Error: NUL octet received"}
)

func errLongLine(max int) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
		Message: "Error: line longer than " + strconv.Itoa(max) + " octets received"}
}

// errShuttingDown interrupts the wait for a command when the server shuts
// down.
var errShuttingDown = errors.New("relay: server shutting down")

// serverConn is the connection go-smtp serves. It stands between the
// client's socket and go-smtp, and reads the client's bytes itself, so that
// the relay decides where every line, every message and every BDAT chunk
// ends, by the strict rules of RFC 5321, before go-smtp sees a byte:
//
//   - go-smtp's DATA reader drops a CR that follows a dot at the start of a
//     line, so that ".<CR>X" reaches the session as "X": a bare CR that
//     nothing after go-smtp could see. The serverConn checks each line of
//     the content as the client sent it: every line ends in CRLF, holds no
//     other CR and no NUL, and is at most MaxLineLength octets; the first
//     that does not is refused (550 5.5.2), nothing more is read, and the
//     connection is closed after the reply, so no byte after a fake end of
//     data is ever read as a command (SMTP smuggling). The same holds for
//     BDAT chunks, command lines and AUTH responses.
//   - It does the TLS, STARTTLS (RFC 3207) and implicit (RFC 8314 §3), so
//     that it reads the plaintext of TLS sessions too. go-smtp never sees
//     TLS: the session offers and accepts AUTH only when the serverConn
//     says the connection is encrypted.
//   - It keeps the timeouts: each read from the client must come within
//     ReadTimeout (an idle timeout, during DATA too) and each write go out
//     within WriteTimeout; a failed write closes the connection, which
//     go-smtp would not do.
//   - It closes the connection after every 421 reply (RFC 5321 §3.8), and
//     after a refused content, lingering so that the client reads the
//     reply.
//
// go-smtp reads one command line per Read, so it never buffers a byte
// beyond the command it is handling, and the serverConn always knows what
// go-smtp will read next: after a 354 reply, content; after a 334, a SASL
// response; after a BDAT command go-smtp accepts the syntax of, exactly
// the chunk's octets. Read and Write run on go-smtp's goroutine for the
// connection; the fields under mu are shared with the session (whose BDAT
// Data runs on a goroutine of its own) and with Shutdown.
type serverConn struct {
	srv      *Server
	id       uint64
	raw      net.Conn
	t        net.Conn // raw, or TLS over raw
	br       *bufio.Reader
	remote   netip.AddrPort
	key      netip.Prefix
	implicit bool
	shaken   bool // the implicit-TLS handshake was tried
	log      *slog.Logger

	// Read side.
	pending []byte // bytes for go-smtp's next reads
	mode    int
	// at354 is set when DATA's 354 is written, until the session takes
	// the content (dataReader) or the next command is read. A BDAT
	// session's Data runs on a goroutine of its own, while the conn reads
	// chunks: this alone is what it may look at.
	at354     atomic.Bool
	chunk     int64 // octets of the BDAT chunk still to read
	chunkLast bool
	content   contentCheck // across the chunks of one BDAT message
	needEhlo  bool         // TLS started; EHLO must come first (RFC 3207 §4.2)
	rerr      error        // once set, every Read returns it

	// Write side.
	wbuf    []byte // a reply line go-smtp is writing
	out     []byte // the lines of a reply, written at its last line
	swallow int    // replies of go-smtp to drop: those to commands the conn made up
	closing bool   // hang up after the next complete reply
	werr    error

	mu         sync.Mutex
	tls        *tls.ConnectionState
	ehlo       bool  // the client greeted with EHLO, not HELO
	idle       bool  // waiting for the client's next command
	contentErr error // why the current message's content was refused
	closed     bool
	released   bool
}

func (s *Server) newServerConn(raw net.Conn, remote netip.AddrPort, implicit bool) *serverConn {
	c := &serverConn{
		srv:      s,
		id:       s.connIDs.Add(1),
		raw:      raw,
		t:        raw,
		remote:   remote,
		key:      clientKey(remote.Addr()),
		implicit: implicit,
	}
	c.log = s.log.With("conn", c.id)
	if implicit {
		c.t = tls.Server(raw, s.tlsConfig)
	}
	c.br = bufio.NewReaderSize(connReader{c}, max(s.maxLine+2, 16<<10))
	return c
}

// connReader reads the client's bytes for the serverConn's buffer: it sets
// the idle timeout before each read and lets Shutdown interrupt the wait
// for a command.
type connReader struct{ c *serverConn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	if d := c.srv.readTimeout; d > 0 {
		_ = c.raw.SetReadDeadline(time.Now().Add(d))
	}
	// Checked after the deadline is set: Shutdown sets a deadline in the
	// past on idle connections after it sets closing, so either this sees
	// closing or the read sees that deadline.
	c.mu.Lock()
	stop := c.idle && c.srv.closing.Load()
	c.mu.Unlock()
	if stop {
		return 0, errShuttingDown
	}
	return c.t.Read(p)
}

// interrupt ends the wait for a command of an idle connection, for
// Shutdown.
func (c *serverConn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		_ = c.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

func (c *serverConn) tlsState() *tls.ConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tls
}

func (c *serverConn) usedEHLO() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ehlo
}

// refusedContent returns why the content of the current message was
// refused, nil if it was not. The session checks it before it commits. A
// refusal closes the connection, so it is never cleared.
func (c *serverConn) refusedContent() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.contentErr
}

func (c *serverConn) setIdle(idle bool) {
	c.mu.Lock()
	c.idle = idle
	c.mu.Unlock()
}

// Read gives go-smtp the client's bytes: one command line per call, or
// checked message content.
func (c *serverConn) Read(p []byte) (int, error) {
	if err := c.ensureHandshake(); err != nil {
		return 0, err
	}
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.fill(); err != nil {
			c.rerr = err
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// fill reads the client's next bytes into c.pending, or answers them.
func (c *serverConn) fill() error {
	switch c.mode {
	case modeData:
		return c.fillData()
	case modeChunk:
		return c.fillChunk()
	}
	return c.fillCommand()
}

// fillCommand reads a command line, or a SASL response line, and acts on
// what the relay handles itself: STARTTLS, and the EHLO it wants after it.
func (c *serverConn) fillCommand() error {
	c.at354.Store(false)
	sasl := c.mode == modeSASL
	if !sasl && c.srv.closing.Load() {
		c.replyClose(421, smtp.EnhancedCode{4, 3, 2}, "Service shutting down, closing connection")
		return io.EOF
	}
	c.setIdle(true)
	line, err := c.br.ReadSlice('\n')
	c.setIdle(false)
	switch {
	case err == bufio.ErrBufferFull || err == nil && len(line) > c.srv.maxLine:
		c.replyClose(500, smtp.EnhancedCode{5, 5, 2}, "Error: command line longer than "+strconv.Itoa(c.srv.maxLine)+" octets")
		return io.EOF
	case errors.Is(err, errShuttingDown) || err != nil && c.srv.closing.Load() && isTimeout(err):
		c.replyClose(421, smtp.EnhancedCode{4, 3, 2}, "Service shutting down, closing connection")
		return io.EOF
	case err != nil:
		// An unended last line is dropped; a timeout makes go-smtp reply
		// 421 4.4.2, after which the connection closes.
		return err
	}
	if e := checkLine(line, c.srv.maxLine); e != nil {
		c.log.Debug("relay: command refused", "remote", c.remote, "reply", e.Message)
		c.replyClose(e.Code, e.EnhancedCode, e.Message)
		return io.EOF
	}
	if sasl {
		c.pending = line
		return nil
	}
	verb, arg := commandVerb(line)
	if c.needEhlo {
		switch verb {
		case "EHLO", "HELO", "QUIT", "NOOP", "RSET":
		default:
			c.reply(503, smtp.EnhancedCode{5, 5, 1}, "Send EHLO first: the session started anew with TLS")
			return nil
		}
	}
	switch verb {
	case "STARTTLS":
		return c.startTLS(arg)
	case "EHLO", "HELO":
		c.needEhlo = false
		c.mu.Lock()
		c.ehlo = verb == "EHLO"
		c.mu.Unlock()
		c.content = contentCheck{}
	case "MAIL", "RSET":
		c.content = contentCheck{}
	case "BDAT":
		n, last, ok := bdatArgs(arg)
		switch {
		case ok && n > 0:
			c.mode, c.chunk, c.chunkLast = modeChunk, n, last
		case ok && last:
			// An empty last chunk: go-smtp reads nothing more and ends
			// the message, so its end is checked now, before the
			// session sees it.
			_ = c.endMessage()
		}
	}
	c.pending = line
	return nil
}

// commandVerb splits a command line as go-smtp does (its parseCmd), so that
// both agree on which command it is: STARTTLS is any line that begins with
// it; other verbs are the first four characters, alone or followed by a
// space and the argument.
func commandVerb(line []byte) (verb, arg string) {
	s := strings.TrimRight(string(line), "\r\n")
	if len(s) >= 8 && strings.EqualFold(s[:8], "STARTTLS") {
		return "STARTTLS", s[8:]
	}
	switch {
	case len(s) == 4:
		return strings.ToUpper(s), ""
	case len(s) > 5 && s[4] == ' ':
		return strings.ToUpper(s[:4]), strings.TrimSpace(s[5:])
	}
	return "", ""
}

// bdatArgs reads the arguments of BDAT as go-smtp does (its handleBdat):
// ok means that go-smtp reads the chunk that follows, whatever its reply.
func bdatArgs(arg string) (size int64, last, ok bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 {
		return 0, false, false
	}
	if len(f) == 2 {
		if !strings.EqualFold(f[1], "LAST") {
			return 0, false, false
		}
		last = true
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, false, false
	}
	return int64(n), last, true
}

// startTLS answers STARTTLS (RFC 3207) and does the handshake.
func (c *serverConn) startTLS(arg string) error {
	switch {
	case c.tlsState() != nil:
		c.reply(503, smtp.EnhancedCode{5, 5, 1}, "TLS already active")
		return nil
	case c.srv.tlsConfig == nil:
		c.reply(502, smtp.EnhancedCode{5, 5, 1}, "STARTTLS not supported")
		return nil
	case arg != "":
		c.reply(501, smtp.EnhancedCode{5, 5, 4}, "Syntax: STARTTLS")
		return nil
	}
	c.reply(220, smtp.EnhancedCode{2, 0, 0}, "Ready to start TLS")
	if c.werr != nil {
		return io.EOF
	}
	tc := tls.Server(c.raw, c.srv.tlsConfig)
	c.t = tc
	// What the client sent after STARTTLS in plaintext is dropped, not
	// read as commands of the TLS session (RFC 3207 §6; CVE-2011-0411).
	c.br.Reset(connReader{c})
	if err := c.handshake(tc); err != nil {
		return io.EOF
	}
	// The session starts anew (RFC 3207 §4.2): go-smtp's transaction is
	// reset by a made-up RSET whose reply is dropped, and the client must
	// send EHLO again.
	c.needEhlo = true
	c.content = contentCheck{}
	c.pending = []byte("RSET\r\n")
	c.swallow++
	return nil
}

// ensureHandshake does the handshake of an implicit-TLS connection before
// its first byte.
func (c *serverConn) ensureHandshake() error {
	if !c.implicit || c.shaken {
		return nil
	}
	c.shaken = true
	if err := c.handshake(c.t.(*tls.Conn)); err != nil {
		c.werr = err
		return io.EOF
	}
	return nil
}

// handshake does a TLS handshake within the read timeout.
func (c *serverConn) handshake(tc *tls.Conn) error {
	if d := c.srv.readTimeout; d > 0 {
		_ = c.raw.SetDeadline(time.Now().Add(d))
	}
	err := tc.Handshake()
	_ = c.raw.SetDeadline(time.Time{})
	if err != nil {
		c.log.Debug("relay: TLS handshake failed", "remote", c.remote, "err", err)
		c.hangupNow()
		return err
	}
	st := tc.ConnectionState()
	c.mu.Lock()
	c.tls = &st
	c.mu.Unlock()
	return nil
}

// fillData reads the next line of DATA content and checks it. Every line
// is whole (the buffer holds more than MaxLineLength octets), so go-smtp
// is at the start of a line before each, and sees the end of the data, a
// line "." alone, exactly where the relay does.
func (c *serverConn) fillData() error {
	line, err := c.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return c.refuseContent(errLongLine(c.srv.maxLine))
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case err != nil:
		return err
	}
	if len(line) == 3 && line[0] == '.' && line[1] == '\r' {
		c.mode = modeCommand
		c.pending = line
		return nil
	}
	if e := checkLine(line, c.srv.maxLine); e != nil {
		return c.refuseContent(e)
	}
	c.pending = line
	return nil
}

// dataReader returns the reader of the content of the message that follows
// DATA's 354, for the session to read the content from the relay's own
// checked lines rather than through go-smtp's reader, which takes it an
// octet at a time: nil when the conn is not at the start of such content
// (the Data of a BDAT message, whose chunks go through go-smtp).
// It reads the lines fillData would, with the same checks, removes the
// dot that stuffs a line (RFC 5321 §4.5.2) and ends at the line "." alone,
// which it leaves for go-smtp to read, so that go-smtp ends the data where
// the relay does. Whatever the session leaves unread (a message it
// refuses) go-smtp reads through fillData as before. Content of more
// than max octets (0: no limit), counted without the stuffing dots, fails
// with smtp.ErrDataTooLarge; content of max octets is taken, as SIZE says
// (RFC 1870 §3).
func (c *serverConn) dataReader(max int64) io.Reader {
	if !c.at354.CompareAndSwap(true, false) || c.mode != modeData || len(c.pending) > 0 || c.rerr != nil {
		return nil
	}
	return &dataContent{c: c, max: max}
}

// dataContent is the reader dataReader returns.
type dataContent struct {
	c    *serverConn
	max  int64
	n    int64  // octets given
	line []byte // the rest of the current line, in c.br's buffer
	done bool   // the end of the data is read
	big  bool   // the content is over max: every Read fails
}

func (d *dataContent) Read(p []byte) (int, error) {
	if d.big {
		return 0, smtp.ErrDataTooLarge
	}
	n := 0
	for n < len(p) {
		if len(d.line) == 0 {
			if d.done || n > 0 && !d.c.lineBuffered() {
				break
			}
			if err := d.next(); err != nil {
				if n > 0 && err != smtp.ErrDataTooLarge {
					break // the error is the conn's: the next Read returns it
				}
				return n, err
			}
			continue
		}
		m := copy(p[n:], d.line)
		d.line = d.line[m:]
		n += m
	}
	if n == 0 && d.done {
		return 0, io.EOF
	}
	return n, nil
}

// next reads the next line of content into d.line, or the end of the data.
func (d *dataContent) next() error {
	c := d.c
	if c.rerr != nil {
		return c.rerr
	}
	line, err := c.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		err = c.refuseContent(errLongLine(c.srv.maxLine))
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.rerr = err
		return err
	}
	if len(line) == 3 && line[0] == '.' && line[1] == '\r' {
		c.mode = modeCommand
		c.pending = line
		d.done = true
		return nil
	}
	if e := checkLine(line, c.srv.maxLine); e != nil {
		c.rerr = c.refuseContent(e)
		return c.rerr
	}
	if line[0] == '.' {
		line = line[1:]
	}
	if d.max > 0 && d.n+int64(len(line)) > d.max {
		d.big = true
		return smtp.ErrDataTooLarge
	}
	d.n += int64(len(line))
	d.line = line
	return nil
}

// lineBuffered reports whether a whole line is buffered, to read without
// waiting for the client.
func (c *serverConn) lineBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// fillChunk reads the next octets of a BDAT chunk (RFC 3030 §2) and checks
// them: a BDAT message is line-oriented text too, since the relay does not
// offer BINARYMIME.
func (c *serverConn) fillChunk() error {
	if c.br.Buffered() == 0 {
		if _, err := c.br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	n := int(min(int64(c.br.Buffered()), c.chunk))
	b, _ := c.br.Peek(n)
	_, _ = c.br.Discard(n)
	if e := c.content.scan(b, c.srv.maxLine); e != nil {
		return c.refuseContent(e)
	}
	c.chunk -= int64(n)
	if c.chunk == 0 {
		c.mode = modeCommand
		if c.chunkLast {
			if e := c.endMessage(); e != nil {
				return e
			}
		}
	}
	c.pending = b
	return nil
}

// endMessage checks the end of a BDAT message: its last octet may not be a
// CR without its LF.
func (c *serverConn) endMessage() error {
	cr := c.content.cr
	c.content = contentCheck{}
	if cr {
		return c.refuseContent(errBareCR)
	}
	return nil
}

// refuseContent records why the message is refused, for the session and
// for the reply, and arranges that the connection closes after the reply:
// nothing the client sent after the bad octet is read.
func (c *serverConn) refuseContent(e *smtp.SMTPError) error {
	c.mu.Lock()
	c.contentErr = e
	c.mu.Unlock()
	c.closing = true
	c.log.Debug("relay: message content refused", "remote", c.remote, "reply", e.Message)
	return e
}

// checkLine checks one line that ends in LF, as read: it must end in CRLF,
// hold no other CR and no NUL, and be at most max octets with its CRLF.
func checkLine(line []byte, max int) *smtp.SMTPError {
	n := len(line)
	switch cr := bytes.IndexByte(line, '\r'); {
	case n > max:
		return errLongLine(max)
	case cr >= 0 && cr < n-2: // before the line's end: followed by no LF
		return errBareCR
	case n < 2 || cr != n-2:
		return errBareLF
	case bytes.IndexByte(line, 0) >= 0:
		return errNUL
	}
	return nil
}

// contentCheck checks content that arrives in pieces (BDAT chunks) by the
// rules of checkLine.
type contentCheck struct {
	cr   bool // the last octet was a CR
	line int  // octets of the current line before its CR
}

func (k *contentCheck) scan(b []byte, max int) *smtp.SMTPError {
	for _, x := range b {
		if k.cr {
			if x != '\n' {
				return errBareCR
			}
			k.cr, k.line = false, 0
			continue
		}
		switch x {
		case '\r':
			k.cr = true
			continue
		case '\n':
			return errBareLF
		case 0:
			return errNUL
		}
		k.line++
		if k.line+2 > max {
			return errLongLine(max)
		}
	}
	return nil
}

// Write takes go-smtp's replies. Each reply is sent when its last line is
// complete, so that a multi-line reply goes out in one write; the EHLO reply
// loses STARTTLS once TLS is on, replies to commands the conn made up are
// dropped, and the conn follows the replies to know what the client sends
// next.
func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.ensureHandshake(); err != nil {
		return 0, err
	}
	if c.werr != nil {
		return 0, c.werr
	}
	c.wbuf = append(c.wbuf, p...)
	start := 0
	for {
		i := bytes.IndexByte(c.wbuf[start:], '\n')
		if i < 0 {
			break
		}
		c.replyLine(c.wbuf[start : start+i+1])
		start += i + 1
	}
	c.wbuf = c.wbuf[:copy(c.wbuf, c.wbuf[start:])]
	if c.werr != nil {
		return 0, c.werr
	}
	return len(p), nil
}

// replyLine handles one line of a reply of go-smtp.
func (c *serverConn) replyLine(line []byte) {
	code, final := 0, true
	if len(line) >= 4 {
		code, _ = strconv.Atoi(string(line[:3]))
		final = line[3] != '-'
	}
	if c.swallow > 0 {
		if final {
			c.swallow--
		}
		return
	}
	if string(line) == "250-STARTTLS\r\n" && c.tlsState() != nil {
		return
	}
	c.out = append(c.out, line...)
	if !final {
		return
	}
	c.flush()
	switch {
	case code == 354:
		c.mode = modeData
		c.at354.Store(true)
	case code == 334:
		c.mode = modeSASL
	case c.mode == modeSASL:
		c.mode = modeCommand
	}
	if code == 421 || c.closing {
		c.hangup()
	}
}

// reply writes a reply of the conn's own.
func (c *serverConn) reply(code int, ec smtp.EnhancedCode, text string) {
	c.out = fmt.Appendf(c.out, "%d %d.%d.%d %s\r\n", code, ec[0], ec[1], ec[2], text)
	c.flush()
}

// replyClose writes a last reply and closes the connection.
func (c *serverConn) replyClose(code int, ec smtp.EnhancedCode, text string) {
	c.reply(code, ec, text)
	c.hangup()
}

// flush writes c.out within the write timeout; a failed write closes the
// connection, so that go-smtp's next read ends the session.
func (c *serverConn) flush() {
	if c.werr != nil || len(c.out) == 0 {
		c.out = c.out[:0]
		return
	}
	if d := c.srv.writeTimeout; d > 0 {
		_ = c.raw.SetWriteDeadline(time.Now().Add(d))
	}
	_, err := c.t.Write(c.out)
	c.out = c.out[:0]
	if err != nil {
		c.werr = err
		c.log.Debug("relay: write failed, closing", "remote", c.remote, "err", err)
		c.hangupNow()
	}
}

// markClosed reports whether the caller is the first to close.
func (c *serverConn) markClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	return true
}

// hangup closes the connection after a last reply, lingering so that the
// client reads it (see lingerTime).
func (c *serverConn) hangup() {
	c.rerr = io.EOF
	if c.markClosed() {
		lingerClose(c.raw, c.t)
	}
}

// lingerClose ends the writing side of a connection (t, TLS over raw, or
// raw itself), reads what the client still sends for a while, and closes.
func lingerClose(raw, t net.Conn) {
	if tc, ok := t.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	if cw, ok := raw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = raw.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, raw, lingerBytes)
	_ = raw.Close()
}

// hangupNow closes the connection at once.
func (c *serverConn) hangupNow() {
	c.rerr = io.EOF
	c.abort()
}

// abort closes the socket, from any goroutine: go-smtp's next read or
// write fails and its session ends.
func (c *serverConn) abort() {
	c.markClosed()
	_ = c.raw.Close()
}

// Close is go-smtp's, when its session ends, and the server's.
func (c *serverConn) Close() error {
	c.markClosed()
	_ = c.raw.Close()
	c.mu.Lock()
	first := !c.released
	c.released = true
	c.mu.Unlock()
	if first {
		c.srv.forget(c)
		c.log.Debug("relay: connection closed", "remote", c.remote)
	}
	return nil
}

func (c *serverConn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *serverConn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// The conn keeps its own timeouts (see connReader and flush); go-smtp,
// configured without timeouts, does not set deadlines, and these do
// nothing.
func (c *serverConn) SetDeadline(time.Time) error      { return nil }
func (c *serverConn) SetReadDeadline(time.Time) error  { return nil }
func (c *serverConn) SetWriteDeadline(time.Time) error { return nil }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
