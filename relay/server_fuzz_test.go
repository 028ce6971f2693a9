package relay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/relay"
)

// pipeConn is one end of an in-memory connection made of two io.Pipes.
// Unlike net.Pipe, each direction closes alone, so a client can end its
// input and still read every reply. Deadlines are not kept.
type pipeConn struct {
	r      *io.PipeReader
	w      *io.PipeWriter
	remote net.Addr
}

// newPipeConns returns the server's end, whose peer is remote, and the
// client's.
func newPipeConns(remote net.Addr) (server, client *pipeConn) {
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 587}
	return &pipeConn{r: sr, w: sw, remote: remote}, &pipeConn{r: cr, w: cw, remote: local}
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *pipeConn) CloseWrite() error           { return c.w.Close() }
func (c *pipeConn) Close() error {
	c.r.Close()
	return c.w.Close()
}
func (c *pipeConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 587} }
func (c *pipeConn) RemoteAddr() net.Addr             { return c.remote }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }

// chanListener hands the server the connections sent on it.
type chanListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 587} }

// The clients of FuzzServerSession: 127.0.0.2 is in a trusted network,
// 127.0.0.1 is not.
var (
	fuzzTrusted   = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
	fuzzUntrusted = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40001}
)

var (
	reReplyLine = regexp.MustCompile(`^[2-5][0-9][0-9]([ -].*)?$`)
	reQueued    = regexp.MustCompile(`(?m)^250 2\.0\.0 OK: queued as Q[0-9]+\r$`)
)

// fuzzSession runs one session whose client sends in and then ends its
// input, and returns every octet the server sent until it closed.
func fuzzSession(t *testing.T, l *chanListener, remote net.Addr, in []byte) []byte {
	t.Helper()
	server, client := newPipeConns(remote)
	select {
	case l.conns <- server:
	case <-time.After(time.Minute):
		t.Fatal("the server accepts no connection")
	}
	go func() {
		_, _ = client.Write(in) // fails once the server hangs up
		_ = client.CloseWrite()
	}()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := io.ReadAll(client)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		client.Close()
		if r.err != nil {
			t.Fatalf("reading the replies: %v", r.err)
		}
		return r.out
	case <-time.After(time.Minute):
		client.Close()
		t.Fatalf("the session did not end with its input %q", in)
	}
	return nil
}

// The limits of the servers of FuzzServerSession, small for the fuzzer
// to reach.
const (
	maxLine  = 200
	maxRcpts = 3
	maxSize  = 4096
)

// fuzzServers starts the two servers of FuzzServerSession, each with a
// queue of its own, so that a late step of one session cannot be taken
// for another's: one where no client is trusted, and one where
// fuzzTrusted is.
func fuzzServers(tb testing.TB) (fxU *srvFixture, lU *chanListener, fxT *srvFixture, lT *chanListener) {
	start := func(trusted bool) (*srvFixture, *chanListener) {
		fx := srvStart(tb, func(o *relay.ServerOptions) {
			if trusted {
				o.Trusted = append(o.Trusted, srvTrusted)
			}
			o.MaxConnections, o.MaxConnectionsPerIP = -1, -1
			o.MaxLineLength, o.MaxRecipients, o.MaxMessageBytes = maxLine, maxRcpts, maxSize
			o.Logger, o.Events = nil, nil
		})
		l := newChanListener()
		served := make(chan error, 1)
		go func() { served <- fx.srv.Serve(l) }()
		tb.Cleanup(func() {
			fx.srv.Close()
			if err := <-served; !errors.Is(err, relay.ErrServerClosed) {
				tb.Errorf("Serve: %v", err)
			}
		})
		return fx, l
	}
	fxU, lU = start(false)
	fxT, lT = start(true)
	return fxU, lU, fxT, lT
}

const (
	fuzzEnvelope = "EHLO client.test\r\nMAIL FROM:<orders@customer.example>\r\nRCPT TO:<buyer@example.net>\r\n"
	fuzzMessage  = "From: orders@customer.example\r\nTo: buyer@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
)

// TestServerPipeSession checks the harness of FuzzServerSession: over
// the in-memory connection, a trusted client's message is queued and
// replied to, an untrusted client's recipient refused.
func TestServerPipeSession(t *testing.T) {
	t.Parallel()
	fxU, lU, fxT, lT := fuzzServers(t)
	in := []byte(fuzzEnvelope + "DATA\r\n" + fuzzMessage + ".\r\nQUIT\r\n")
	out := fuzzSession(t, lT, fuzzTrusted, in)
	checkReplies(t, out)
	if !reQueued.Match(out) || !bytes.HasSuffix(out, []byte("\r\n221 2.0.0 Bye\r\n")) {
		t.Errorf("trusted session:\n%s", out)
	}
	if entries, _ := fxT.q.stored(); len(entries) != 1 || entries[0].Envelope.To[0].Addr != "buyer@example.net" {
		t.Errorf("trusted session queued %+v", entries)
	}
	out = fuzzSession(t, lU, fuzzUntrusted, in)
	if !bytes.Contains(out, []byte("\r\n530 5.7.0 ")) || reQueued.Match(out) {
		t.Errorf("untrusted session:\n%s", out)
	}
	fxU.nothingQueued()
}

// FuzzServerSession sends any bytes, commands and content alike, to a
// session of the server over an in-memory connection, twice: from an
// untrusted client and from a trusted one. Whatever the bytes:
//
//   - each session ends once its input does;
//   - the untrusted client, which cannot AUTH without TLS, gets nothing
//     queued: the queue is not even asked for a message (no open relay);
//   - the trusted client gets a "250 ... queued as" reply for exactly the
//     messages committed, and each of them has a Received field first,
//     only CRLF line ends, no NUL, lines within MaxLineLength, at most
//     MaxRecipients recipients, a null sender kept null, and DKIM
//     signatures that verify over what was queued;
//   - every reply line before TLS starts is a code and text ending in
//     CRLF.
func FuzzServerSession(f *testing.F) {
	env, msg := fuzzEnvelope, fuzzMessage
	for _, s := range []string{
		env + "DATA\r\n" + msg + ".\r\nQUIT\r\n",
		env + "DATA\r\n" + msg + "..dot\r\n.\r\n" + "MAIL FROM:<>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n" + msg + ".\r\n",
		env + "BDAT " + strconv.Itoa(len(msg)) + " LAST\r\n" + msg + "QUIT\r\n",
		env + "BDAT 10\r\n" + msg[:10] + "BDAT " + strconv.Itoa(len(msg)-10) + " LAST\r\n" + msg[10:],
		env + "BDAT 0 LAST\r\n",
		env + "RCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n" + msg + ".\r\n",
		env + "RSET\r\nDATA\r\n",
		env + "DATA\r\n" + msg + "\n.\nMAIL FROM:<ceo@customer.example>\r\n.\r\n",
		env + "DATA\r\n" + msg + "\r.\r\n",
		env + "BDAT 200 LAST\r\n" + msg,
		"EHLO a\r\nAUTH PLAIN AGFwaWtleQBzaGtfdGVzdF9nb29kX2tleV8wMTIzNDU2Nzg5\r\nMAIL FROM:<a@customer.example>\r\nRCPT TO:<b@example.net>\r\n",
		"EHLO a\r\nAUTH LOGIN\r\nYXBpa2V5\r\n",
		"EHLO a\r\nSTARTTLS\r\nEHLO b\r\n",
		"HELO a\r\nMAIL FROM:<a@other.example> SIZE=100000\r\n",
		"EHLO a\r\nMAIL FROM:<a@other.example> BODY=8BITMIME RET=HDRS ENVID=x\r\nRCPT TO:<b@example.net> NOTIFY=NEVER\r\nDATA\r\nFrom: a@other.example\r\n\r\n\xff\r\n.\r\n",
		"EHLO a\r\nVRFY x\r\nNOOP\r\nHELP\r\nQUIT\r\n",
		"\x00\r\n",
	} {
		f.Add([]byte(s))
	}
	fxU, lU, fxT, lT := fuzzServers(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		// Untrusted: nothing reaches the queue, ever.
		out := fuzzSession(t, lU, fuzzUntrusted, in)
		checkReplies(t, out)
		if creates, commits, _ := fxU.q.counts(); creates != 0 || commits != 0 {
			t.Fatalf("an untrusted client without AUTH got %d messages started, %d committed:\n%q\nreplies:\n%s",
				creates, commits, in, out)
		}
		if reQueued.Match(out) {
			t.Fatalf("an untrusted client was told a message was queued:\n%s", out)
		}

		// Trusted: what is queued is what the replies say, well formed.
		before, _ := fxT.q.stored()
		out = fuzzSession(t, lT, fuzzTrusted, in)
		checkReplies(t, out)
		entries, msgs := fxT.q.stored()
		entries, msgs = entries[len(before):], msgs[len(before):]
		if n := len(reQueued.FindAll(out, -1)); n != len(entries) {
			t.Fatalf("%d messages queued, %d replies say so:\n%s", len(entries), n, out)
		}
		for i, e := range entries {
			content := msgs[i][len(e.Header):]
			if !bytes.HasPrefix(content, []byte("Received: from ")) {
				t.Fatalf("queued without a Received field first: %q", content)
			}
			checkLines(t, content, maxLine)
			if len(content) > maxSize+1024 {
				t.Fatalf("queued %d octets, over the limit of %d and what the relay adds", len(content), maxSize)
			}
			if n := len(e.Envelope.To); n == 0 || n > maxRcpts || len(e.Rcpts) != n {
				t.Fatalf("queued with %d recipients (%d states)", n, len(e.Rcpts))
			}
			if (e.Sender == "") != (e.Envelope.From == "") {
				t.Fatalf("sender %q became %q", e.Sender, e.Envelope.From)
			}
			res, err := fxT.verifier.Verify(context.Background(), bytes.NewReader(msgs[i]))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) == 0 {
				t.Fatalf("queued without a signature: %q", msgs[i])
			}
			for _, r := range res {
				if r.Status != dkim.Pass {
					t.Fatalf("signature d=%s: %s (%v) over %q", r.Domain, r.Status, r.Err, msgs[i])
				}
			}
		}
	})
}

// checkReplies checks that every reply line, up to the start of TLS, is a
// reply code and text ending in CRLF.
func checkReplies(t *testing.T, out []byte) {
	t.Helper()
	for len(out) > 0 {
		i := bytes.Index(out, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("a reply does not end in CRLF: %q", out)
		}
		line := out[:i]
		if bytes.ContainsAny(line, "\r\n") || !reReplyLine.Match(line) {
			t.Fatalf("not a reply line: %q", line)
		}
		if bytes.HasPrefix(line, []byte("220 2.0.0 Ready to start TLS")) {
			return // TLS records follow
		}
		out = out[i+2:]
	}
}

// checkLines checks that content has only CRLF line ends and no NUL, that
// the lines of the Received field it begins with are within the 998
// octets of RFC 5322 §2.1.1, and the other lines within max octets with
// their CRLF. The last line may lack its CRLF: a BDAT message may end so
// (the body of RFC 5322 §3.5 may), where DATA cannot.
func checkLines(t *testing.T, content []byte, max int) {
	t.Helper()
	received := true
	for i, line := range bytes.Split(content, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n\x00") {
			t.Fatalf("queued a line with a bare CR or LF, or a NUL: %q", line)
		}
		received = received && (i == 0 || len(line) > 0 && (line[0] == ' ' || line[0] == '\t'))
		limit := max - 2
		if received {
			limit = 998
		}
		if len(line) > limit {
			t.Fatalf("queued a line of %d octets, over %d: %q", len(line), limit, line)
		}
	}
}
