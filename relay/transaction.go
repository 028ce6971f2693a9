package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// chunkWindow is how many BDAT chunks may await their replies at once
// when the server offers PIPELINING (RFC 3030 §4.2).
const chunkWindow = 8

// txn is one mail transaction (RFC 5321 §3.3) on a connection.
type txn struct {
	c          *conn
	env        *Envelope
	reset      bool // RSET first: the connection was used before
	pipelining bool // RFC 2920
	chunking   bool // RFC 3030: BDAT, not DATA

	norm  *normalizer
	buf   []byte // the chunk buffer
	chunk []byte // the next chunk to send
	last  bool   // chunk is the last

	rcpts    []RcptResult
	answered bool // every RCPT has its reply
	accepted int  // recipients the server took
}

// transact sends a message on c. It reads the message before it writes
// anything, as far as the first BDAT chunk; it never sends a message
// partly: a failure while the content is under way closes the connection
// (c.broken), so that the server discards what it got (RFC 5321 §4.1.1.4,
// RFC 3030 §2).
func (c *conn) transact(env *Envelope, msg Message, reset bool) (*Receipt, error) {
	if err := c.fit(env, msg); err != nil {
		return nil, err
	}
	body, err := msg.Open()
	if err != nil {
		return nil, c.errorf("opening the message: %w", err)
	}
	defer body.Close()

	t := &txn{
		c:          c,
		env:        env,
		reset:      reset,
		pipelining: c.ext.has("PIPELINING"),
		chunking:   c.ext.has("CHUNKING"),
		rcpts:      make([]RcptResult, len(env.To)),
	}
	for i, r := range env.To {
		t.rcpts[i].Addr = r.Addr
	}
	c.norm.reset(body, !t.chunking)
	defer c.norm.reset(nil, false) // keep the buffers, not the message
	t.norm = &c.norm
	if t.chunking {
		size := c.cl.opts.ChunkSize
		if n := msg.Size(); n >= 0 && 2*n+2 < int64(size) {
			size = int(2*n + 2) // the most that normalization makes of it
		}
		t.buf = c.chunkBuffer(size)
		if err := t.nextChunk(); err != nil {
			return nil, c.errorf("%w", err)
		}
	}
	if err := c.done(); err != nil {
		return nil, c.errorf("%w", err)
	}
	c.messages++
	if t.pipelining {
		return t.pipelined(msg.Size())
	}
	return t.stepwise(msg.Size())
}

// keptChunk is the largest chunk buffer a connection keeps for its next
// messages; larger ones are made for one message.
const keptChunk = 64 << 10

// chunkBuffer returns a buffer of n octets for BDAT chunks.
func (c *conn) chunkBuffer(n int) []byte {
	if cap(c.chunk) >= n {
		return c.chunk[:n]
	}
	b := make([]byte, n)
	if n <= keptChunk {
		c.chunk = b
	}
	return b
}

// fit checks, before anything is sent, that the server can take the
// message as the envelope describes it; the errors are the replies a
// server would give (for a DSN), as *Reply.
func (c *conn) fit(env *Envelope, msg Message) error {
	refuse := func(code int, enh EnhancedCode, text string) error {
		return c.errorf("%w", &Reply{Code: code, Enhanced: enh, Message: text})
	}
	if env.SMTPUTF8 && !c.ext.has("SMTPUTF8") {
		ascii := isASCII(env.From)
		for _, r := range env.To {
			ascii = ascii && isASCII(r.Addr)
		}
		if !ascii {
			return refuse(553, EnhancedCode{5, 6, 7}, "The server does not offer SMTPUTF8, which the non-ASCII addresses need (RFC 6531 §3.4)")
		}
		return refuse(554, EnhancedCode{5, 6, 9}, "The server does not offer SMTPUTF8, which the UTF-8 message needs (RFC 6531 §3.4)")
	}
	switch env.Body {
	case BodyEightBit:
		if !c.ext.has("8BITMIME") {
			return refuse(554, EnhancedCode{5, 6, 3}, "The server does not offer 8BITMIME, and the 8-bit message would need a conversion this client does not do (RFC 6152 §3)")
		}
	case BodyBinary:
		if !c.ext.has("BINARYMIME") || !c.ext.has("CHUNKING") {
			return refuse(554, EnhancedCode{5, 6, 3}, "The server does not offer BINARYMIME with CHUNKING, and the binary message would need a conversion this client does not do (RFC 3030 §3)")
		}
	}
	if env.RequireTLS {
		switch {
		case c.tls == nil:
			return refuse(550, EnhancedCode{5, 7, 30}, "REQUIRETLS: the connection is not TLS (RFC 8689)")
		case len(c.tls.VerifiedChains) == 0:
			return refuse(550, EnhancedCode{5, 7, 30}, "REQUIRETLS: the server's certificate is not verified (RFC 8689)")
		case !c.ext.has("REQUIRETLS"):
			return refuse(550, EnhancedCode{5, 7, 30}, "REQUIRETLS: the server does not offer it (RFC 8689)")
		}
	}
	if limit, err := strconv.ParseInt(c.ext["SIZE"], 10, 64); err == nil && limit > 0 && msg.Size() > limit {
		return refuse(552, EnhancedCode{5, 3, 4}, fmt.Sprintf("The message of %d octets is over the server's limit of %d (RFC 1870)", msg.Size(), limit))
	}
	return nil
}

// done is the context's error at a point between commands.
func (c *conn) done() error {
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	if ctx != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// rcpt records the reply to RCPT i.
func (t *txn) rcpt(i int, r *Reply) {
	t.rcpts[i].Reply = r
	if r.Code/100 == 2 {
		t.accepted++
	}
}

// receipt is the outcome so far.
func (t *txn) receipt() *Receipt {
	return &Receipt{
		Host:  t.c.cl.addr,
		Rcpts: t.rcpts,
		TLS:   t.c.tls,
		DSN:   t.c.ext.has("DSN"),
	}
}

// finish records the reply to the end of the content for every recipient
// the server took.
func (t *txn) finish(final *Reply) (*Receipt, error) {
	for i := range t.rcpts {
		if r := t.rcpts[i].Reply; r != nil && r.Code/100 == 2 {
			cp := *final
			t.rcpts[i].Reply = &cp
		}
	}
	if final.Code/100 != 2 {
		return t.receipt(), t.c.errorf("end of data: %w", final)
	}
	return t.receipt(), nil
}

// fail ends the transaction on err, after what: with a Receipt once the
// recipients were answered, in which those the server took get the
// server's reply, or none when there was none.
func (t *txn) fail(what string, err error) (*Receipt, error) {
	err = t.c.errorf("%s: %w", what, err)
	if !t.answered {
		return nil, err
	}
	var r *Reply
	errors.As(err, &r)
	for i := range t.rcpts {
		if x := t.rcpts[i].Reply; x != nil && x.Code/100 == 2 {
			t.rcpts[i].Reply = nil
			if r != nil {
				cp := *r
				t.rcpts[i].Reply = &cp
			}
		}
	}
	return t.receipt(), err
}

// readReset reads the reply to the RSET that begins a transaction on a
// reused connection. A connection that fails here, or that the server
// closes with 421, died in the pool: the caller tries a new one (c.retry).
// Another refusal is the server's odd way, and the transaction goes on.
func (t *txn) readReset() error {
	c := t.c
	r, err := c.reply()
	if err == nil && r.Code == 421 {
		err = r
	}
	if err != nil {
		c.retry = true
		return c.errorf("RSET: %w", err)
	}
	return nil
}

// pipelined sends RSET (on reuse), MAIL, every RCPT, and DATA, or the whole
// message in BDAT LAST when it fits in one chunk, in one write (RFC 2920
// §3.1, RFC 3030 §4.2), then reads the replies. With DATA the content
// follows in a second write; larger BDAT messages follow in chunks once the
// recipients have been answered.
func (t *txn) pipelined(size int64) (*Receipt, error) {
	c := t.c
	if t.reset {
		c.write("RSET\r\n")
	}
	c.write(mailCommand(t.env, c.ext, size))
	for i := range t.env.To {
		c.write(rcptCommand(&t.env.To[i], c.ext))
	}
	inline := t.chunking && t.last
	switch {
	case inline:
		t.writeChunk()
	case !t.chunking:
		c.write("DATA\r\n")
	}
	if err := c.flush(); err != nil {
		c.retry = t.reset
		return nil, c.errorf("sending MAIL FROM: %w", err)
	}
	if t.reset {
		if err := t.readReset(); err != nil {
			return nil, err
		}
	}
	mail, err := c.reply()
	if err != nil {
		return nil, c.errorf("MAIL FROM: %w", err)
	}
	if c.broken { // 421: the server is gone
		return nil, c.errorf("MAIL FROM: %w", mail)
	}
	for i := range t.env.To {
		r, err := c.reply()
		if err != nil {
			return nil, c.errorf("RCPT TO:<%s>: %w", t.env.To[i].Addr, err)
		}
		t.rcpt(i, r)
		if c.broken {
			return nil, c.errorf("RCPT TO:<%s>: %w", t.env.To[i].Addr, r)
		}
	}
	var data *Reply
	verb := "DATA"
	if inline {
		verb = "BDAT"
	}
	if inline || !t.chunking {
		if data, err = c.reply(); err != nil {
			return nil, c.errorf("%s: %w", verb, err)
		}
	}
	if mail.Code/100 != 2 {
		if data != nil && data.Code == 354 {
			t.abandonData()
		}
		return nil, c.errorf("MAIL FROM: %w", mail)
	}
	t.answered = true
	if t.accepted == 0 {
		// The server refused every recipient, and got no message: with
		// DATA it may still have said 354, to which a lone "." is the
		// answer; a BDAT it refused (RFC 3030 §2).
		if data != nil && data.Code == 354 {
			t.abandonData()
		}
		return t.receipt(), nil
	}
	switch {
	case inline:
		return t.finish(data)
	case t.chunking:
		return t.sendChunks()
	case data.Code != 354:
		return t.fail("DATA", data)
	}
	return t.sendData()
}

// stepwise sends the commands one by one, each after the reply to the one
// before (RFC 5321 §4.1.1), for a server without PIPELINING.
func (t *txn) stepwise(size int64) (*Receipt, error) {
	c := t.c
	if t.reset {
		c.write("RSET\r\n")
		if err := c.flush(); err != nil {
			c.retry = true
			return nil, c.errorf("RSET: %w", err)
		}
		if err := t.readReset(); err != nil {
			return nil, err
		}
	}
	mail, err := c.cmd(mailCommand(t.env, c.ext, size))
	if err != nil {
		return nil, c.errorf("MAIL FROM: %w", err)
	}
	if mail.Code/100 != 2 {
		return nil, c.errorf("MAIL FROM: %w", mail)
	}
	for i := range t.env.To {
		if err := c.done(); err != nil {
			return nil, c.errorf("RCPT TO: %w", err)
		}
		r, err := c.cmd(rcptCommand(&t.env.To[i], c.ext))
		if err != nil {
			return nil, c.errorf("RCPT TO:<%s>: %w", t.env.To[i].Addr, err)
		}
		t.rcpt(i, r)
		if c.broken {
			return nil, c.errorf("RCPT TO:<%s>: %w", t.env.To[i].Addr, r)
		}
	}
	t.answered = true
	if t.accepted == 0 {
		return t.receipt(), nil
	}
	if t.chunking {
		return t.sendChunks()
	}
	if err := c.done(); err != nil {
		return t.fail("DATA", err)
	}
	data, err := c.cmd("DATA\r\n")
	if err != nil {
		return t.fail("DATA", err)
	}
	if data.Code != 354 {
		return t.fail("DATA", data)
	}
	return t.sendData()
}

// abandonData ends a DATA the server accepted when there is nothing to
// send: an empty message, which the server, with no recipient, refuses
// (RFC 2920 §3.1). Its reply is read and dropped.
func (t *txn) abandonData() {
	c := t.c
	c.write(".\r\n")
	if c.flush() == nil {
		c.reply()
	}
}

// sendData sends the content after a 354 (RFC 5321 §4.1.1.4): normalized
// and dot-stuffed, then the end line. Once the content is under way, only
// the end line ends it: on any failure before, and on cancellation, the
// connection is closed.
func (t *txn) sendData() (*Receipt, error) {
	c := t.c
	if err := c.done(); err != nil {
		c.broken = true
		return t.fail("DATA", err)
	}
	if _, err := c.bw.ReadFrom(t.norm); err != nil {
		var me *messageError
		if errors.As(err, &me) {
			c.broken = true
			return t.fail("DATA", me)
		}
		return t.fail("DATA", c.ioError(err))
	}
	if err := c.done(); err != nil {
		// Cancelled while the content went: never the end line.
		c.broken = true
		return t.fail("DATA", err)
	}
	c.write(".\r\n")
	if err := c.flush(); err != nil {
		return t.fail("DATA", err)
	}
	final, err := c.reply()
	if err != nil {
		return t.fail("end of data", err)
	}
	return t.finish(final)
}

// nextChunk reads the next chunk of the normalized message.
func (t *txn) nextChunk() error {
	n, err := io.ReadFull(t.norm, t.buf)
	t.chunk = t.buf[:n]
	switch err {
	case nil:
		t.last = false
	case io.EOF, io.ErrUnexpectedEOF:
		t.last = true
	default:
		return err
	}
	return nil
}

// writeChunk buffers the BDAT command of the chunk and the chunk (RFC 3030
// §2).
func (t *txn) writeChunk() {
	c := t.c
	c.write("BDAT " + strconv.Itoa(len(t.chunk)))
	if t.last {
		c.write(" LAST")
	}
	c.write("\r\n")
	c.bw.Write(t.chunk)
}

// sendChunks sends the message in BDAT chunks (RFC 3030 §2) once the
// recipients are answered. With PIPELINING up to chunkWindow chunks await
// their replies; without, each waits for its own. A refused chunk ends the
// transaction: no chunk follows it (§2), and the replies of those already
// sent are read.
func (t *txn) sendChunks() (*Receipt, error) {
	c := t.c
	outstanding := 0
	var refused, final *Reply
	read := func(keep int) error {
		if err := c.flush(); err != nil {
			return err
		}
		for outstanding > keep {
			r, err := c.reply()
			if err != nil {
				return err
			}
			outstanding--
			final = r
			if r.Code/100 != 2 && refused == nil {
				refused = r
			}
			if c.broken {
				return r
			}
		}
		return nil
	}
	for {
		if err := c.done(); err != nil {
			// Between commands, the caller resets the transaction;
			// with replies pending, it closes the connection.
			c.broken = c.broken || outstanding > 0
			return t.fail("BDAT", err)
		}
		t.writeChunk()
		outstanding++
		keep := chunkWindow
		if !t.pipelining || t.last {
			keep = 0
		}
		if outstanding > keep {
			if err := read(keep); err != nil {
				return t.fail("BDAT", err)
			}
		}
		if refused != nil {
			if err := read(0); err != nil {
				return t.fail("BDAT", err)
			}
			return t.fail("BDAT", refused)
		}
		if t.last {
			return t.finish(final)
		}
		if err := t.nextChunk(); err != nil {
			// The server has part of the message: close the
			// connection, so that it drops it.
			c.broken = true
			return t.fail("BDAT", err)
		}
	}
}

// isASCII reports whether s is US-ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
