package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The limits of the server of FuzzDataReaderDifferential: small, for the
// fuzzer to reach them. dfMaxLine is the least MaxLineLength allowed.
const (
	dfMaxLine    = 100
	dfMaxMessage = 1024
	dfMaxInput   = 32 << 10 // less than lingerBytes, so no reply is lost to a reset
)

// dfHeader begins the content of every message of the fuzz test: a header
// the pipeline accepts, with a dot-stuffed field (".X-Dot"), then the
// empty line that ends it; the fuzzer's octets are the body.
const dfHeader = "From: orders@customer.example\r\n..X-Dot: y\r\n\r\n"

// dfVerdict is what the rules of the relay say of a DATA content.
type dfVerdict struct {
	sent    []byte   // the octets to send after the 354: through the line "." alone
	code    int      // 250, 550 (a line refused), or 552 (over the size limit)
	faults  []string // with 550: the texts the refused line merits
	content []byte   // with 250: the content, unstuffed
	closes  bool     // the server closes the connection after its reply
}

// dfReference is the reference reading of the octets a client sends
// after DATA's 354, written from the rules rather than from the
// relay's code: lines end at LF; the line "." CR LF ends the data; any
// other line must end in CRLF, hold no other CR and no NUL, and have
// at most maxLine octets with its CRLF (RFC 5321 §2.3.8, §4.5.2,
// §4.5.3.1.6), or it is refused with 550 and the connection closed; a
// leading dot is removed (§4.5.2); content of more than maxMsg octets,
// counted unstuffed, is refused with 552 (RFC 1870), after the data
// is read to its end, and a bad line in what follows the excess still
// closes the connection. The client sends every line through the end
// of the data, those after a refused line too: a server that refuses
// nothing replies to them rather than waits.
func dfReference(stream []byte, maxLine int, maxMsg int64) dfVerdict {
	v := dfVerdict{code: 250}
	var content []byte
	size := int64(0)
	refused := false // a line was refused: the rest goes unread
	rest := stream
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			panic("dfReference: the stream does not end in a line")
		}
		line := rest[:i+1]
		rest = rest[i+1:]
		v.sent = stream[:len(stream)-len(rest)]
		if string(line) == ".\r\n" {
			break
		}
		if refused {
			continue
		}
		var faults []string
		if len(line) > maxLine {
			faults = append(faults, errLongLine(maxLine).Message)
		}
		if n := len(line); n < 2 || line[n-2] != '\r' {
			faults = append(faults, errBareLF.Message)
		}
		for j := 0; j < len(line)-2; j++ {
			if line[j] == '\r' {
				faults = append(faults, errBareCR.Message)
				break
			}
		}
		if bytes.IndexByte(line, 0) >= 0 {
			faults = append(faults, errNUL.Message)
		}
		if len(faults) > 0 {
			refused, v.closes = true, true
			if v.code == 250 {
				v.code, v.faults = 550, faults
			}
			continue
		}
		if line[0] == '.' {
			line = line[1:]
		}
		size += int64(len(line))
		if maxMsg > 0 && size > maxMsg {
			v.code = 552
		}
		content = append(content, line...)
	}
	if v.code == 250 {
		v.content = content
	}
	return v
}

// dfQueue is an in-memory Queue that keeps what is committed, by ID.
type dfQueue struct {
	mu   sync.Mutex
	n    int
	msgs map[string][]byte
}

func (q *dfQueue) Create(ctx context.Context) (QueueWriter, error) { return &dfWriter{q: q}, nil }
func (q *dfQueue) Lease(ctx context.Context) (Lease, error) {
	return nil, errors.New("dfQueue: no delivery")
}
func (q *dfQueue) Close() error { return nil }

// take returns the message committed as id and forgets it.
func (q *dfQueue) take(id string) ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.msgs[id]
	delete(q.msgs, id)
	return m, ok
}

type dfWriter struct {
	q   *dfQueue
	buf bytes.Buffer
}

func (w *dfWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *dfWriter) Abort() error                { return nil }
func (w *dfWriter) Commit(ctx context.Context, e *Entry) error {
	w.q.mu.Lock()
	defer w.q.mu.Unlock()
	w.q.n++
	e.ID = "D" + strconv.Itoa(w.q.n)
	w.q.msgs[e.ID] = append(bytes.Clone(e.Header), w.buf.Bytes()...)
	return nil
}

// dfStart starts the server of FuzzDataReaderDifferential on 127.0.0.1,
// which trusts its loopback clients, and returns its address.
func dfStart(tb testing.TB) (string, *dfQueue) {
	q := &dfQueue{msgs: make(map[string][]byte)}
	s, err := NewServer(q, &ServerOptions{
		Hostname:            "relay.test",
		Trusted:             []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		MaxLineLength:       dfMaxLine,
		MaxMessageBytes:     dfMaxMessage,
		MaxConnections:      -1,
		MaxConnectionsPerIP: -1,
	})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	tb.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String(), q
}

// dfPieces cuts b into the pieces a client writes: one per octet of
// cuts, of that octet plus one, and the rest in one.
func dfPieces(b, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		if len(b) == 0 {
			break
		}
		n := min(int(c)+1, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

// dfSession sends body as a message's content, after dfHeader and
// followed by CRLF "." CRLF, in pieces as cuts says and with NOOP sent
// with it when pipelined, and checks the server's replies and what it
// queued against dfReference.
func dfSession(t *testing.T, addr string, q *dfQueue, body, cuts []byte, pipelined bool) {
	stream := append(append([]byte(dfHeader), body...), "\r\n.\r\n"...)
	want := dfReference(stream, dfMaxLine, dfMaxMessage)
	out := want.sent
	if pipelined {
		out = append(bytes.Clone(out), "NOOP\r\n"...)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Closed with a reset, which leaves no TIME-WAIT: a fuzzer's worth of
	// those would use up the loopback's ports.
	_ = conn.(*net.TCPConn).SetLinger(0)
	defer conn.Close()
	// Only a server that hangs waits this long.
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	tp := textproto.NewReader(bufio.NewReader(conn))
	expect := func(code int, what string) string {
		t.Helper()
		got, msg, err := tp.ReadResponse(0)
		if err != nil || got != code {
			t.Fatalf("%s: reply %d %q (%v), want %d\ncontent: %q", what, got, msg, err, code, want.sent)
		}
		return msg
	}
	if _, err := io.WriteString(conn, "EHLO client.test\r\nMAIL FROM:<orders@customer.example>\r\nRCPT TO:<buyer@example.net>\r\nDATA\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		code int
		what string
	}{{220, "greeting"}, {250, "EHLO"}, {250, "MAIL"}, {250, "RCPT"}, {354, "DATA"}} {
		expect(step.code, step.what)
	}

	// The content goes out on a goroutine of its own: the server may
	// refuse it, and reply, before it has all.
	wrote := make(chan error, 1)
	go func() {
		for _, p := range dfPieces(out, cuts) {
			if _, err := conn.Write(p); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()

	code, msg, err := tp.ReadResponse(0)
	if err != nil {
		t.Fatalf("reading the reply to the content: %v (want %d)\ncontent: %q", err, want.code, want.sent)
	}
	if code != want.code {
		t.Fatalf("reply %d %s, want %d %q\ncontent: %q", code, msg, want.code, want.faults, want.sent)
	}
	switch code {
	case 250:
		id, ok := strings.CutPrefix(msg, "2.0.0 OK: queued as ")
		if !ok {
			t.Fatalf("reply 250 %s: no queue ID", msg)
		}
		queued, ok := q.take(id)
		if !ok {
			t.Fatalf("reply 250 %s, and nothing queued as %s", msg, id)
		}
		qh, qb, ok := bytes.Cut(queued, []byte("\r\n\r\n"))
		wh, wb, _ := bytes.Cut(want.content, []byte("\r\n\r\n"))
		if !ok || !bytes.Equal(qb, wb) {
			t.Fatalf("queued body %q,\nwant %q\ncontent: %q", qb, wb, want.sent)
		}
		if !bytes.Contains(qh, append(append([]byte("\r\n"), wh...), "\r\n"...)) {
			t.Fatalf("queued header %q lacks the client's %q", qh, wh)
		}
	case 550:
		text, ok := strings.CutPrefix(msg, "5.5.2 ")
		if !ok || !slices.Contains(want.faults, text) {
			t.Fatalf("reply 550 %s, want 5.5.2 and one of %q\ncontent: %q", msg, want.faults, want.sent)
		}
	case 552:
		if msg != "5.3.4 Maximum message size exceeded" {
			t.Fatalf("reply 552 %s, want 5.3.4", msg)
		}
	}

	if want.closes {
		// Refused content: the connection ends, with no more replies,
		// not even to a NOOP sent after the reply.
		<-wrote
		_, _ = io.WriteString(conn, "NOOP\r\n")
		rest, err := io.ReadAll(tp.R)
		if len(rest) > 0 || err != nil && !isClosedByPeer(err) {
			t.Fatalf("after a refused line, read %q (%v), want the end of the connection", rest, err)
		}
		return
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing the content: %v", err)
	}
	if !pipelined {
		if _, err := io.WriteString(conn, "NOOP\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	expect(250, "NOOP after the content")
}

// isClosedByPeer reports whether a read error is the peer's reset: a
// client still sending when the server closes may get one.
func isClosedByPeer(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// FuzzDataReaderDifferential sends a message whose body is any octets,
// written in pieces of any size, to a relay.Server over loopback TCP,
// and checks what the server makes of it against dfReference: the
// reply (250, 550 5.5.2 naming a fault of the first bad line, or 552
// 5.3.4), the content queued, unstuffed, and that the session is in
// step after the reply (NOOP gets 250), unless the server closed the
// connection after a refused line.
func FuzzDataReaderDifferential(f *testing.F) {
	// The body that makes the content exactly dfMaxMessage octets,
	// unstuffed, of dot-stuffed lines of at most 64 octets.
	exact := func(extra int) []byte {
		unstuffedHeader := len(dfHeader) - 1
		var b []byte
		for left := dfMaxMessage + extra - unstuffedHeader; left > 0; {
			n := min(left, 64)
			if left-n == 1 {
				n-- // no line shorter than its CRLF
			}
			if n < 3 {
				b = append(b, strings.Repeat("x", n-2)+"\r\n"...)
			} else {
				b = append(b, ".."+strings.Repeat("s", n-3)+"\r\n"...)
			}
			left -= n
		}
		// The test adds CRLF "." CRLF: the last line's CRLF is the
		// first of those.
		return b[:len(b)-2]
	}
	long := func(n int) string { return strings.Repeat("L", n-2) }
	for _, s := range []struct {
		body, cuts string
		pipelined  bool
		want       int // the reference's reply, so that each seed is the case it is meant to be
		closes     bool
	}{
		{"Hello.", "", false, 250, false},
		{"..dot\r\n.\r\n..\r\n.", "\x03\x00\x01", false, 250, false},
		{"..\r\n...\r\n.x", "", true, 250, false},
		{".\r\nMAIL FROM:<ceo@customer.example>", "", true, 250, false},
		{long(dfMaxLine), "", false, 250, false},
		{long(dfMaxLine + 1), "", false, 550, true},
		{"." + long(dfMaxLine-1), "\x10", false, 250, false},
		{"." + long(dfMaxLine), "", false, 550, true},
		{"line one\r\n\r\n.", "\x08\x00\x00\x00", false, 250, false},
		{"a\r", "\x00\x00", false, 550, true},
		{"a\n.", "", false, 550, true},
		{"a\r\n.\n", "", true, 550, true},
		{"a\r\n.\rb", "\x0a\x00", false, 550, true},
		{"x\x00y", "", false, 550, true},
		{"bare\rcr", "", false, 550, true},
		{".\r", "", false, 550, true},
		{string(exact(0)), "\x7f\x20\x00\x01\x02", false, 250, false},
		{string(exact(0)), "", true, 250, false},
		{string(exact(1)), "", false, 552, false},
		{string(exact(1)) + "\r\nbare\nx", "", true, 552, true},
		{string(exact(1)) + "\r\n" + long(dfMaxLine+1), "", false, 552, true},
		{"a\r\n" + strings.Repeat("a", 17<<10), "", false, 550, true}, // over the reader's buffer
		{string(exact(1)) + "\r\n" + strings.Repeat("a", 17<<10), "", true, 552, true},
	} {
		stream := append(append([]byte(dfHeader), s.body...), "\r\n.\r\n"...)
		if v := dfReference(stream, dfMaxLine, dfMaxMessage); v.code != s.want || v.closes != s.closes {
			f.Fatalf("seed %.40q: the reference says %d (closes %v), the seed is for %d (%v)", s.body, v.code, v.closes, s.want, s.closes)
		}
		f.Add([]byte(s.body), []byte(s.cuts), s.pipelined)
	}
	addr, q := dfStart(f)
	f.Fuzz(func(t *testing.T, body, cuts []byte, pipelined bool) {
		if len(body) > dfMaxInput {
			body = body[:dfMaxInput]
		}
		dfSession(t, addr, q, body, cuts, pipelined)
	})
}

// TestDataReference checks dfReference on cases worked by hand, so that
// the fuzz test's oracle is right by more than its own word.
func TestDataReference(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		code    int
		closes  bool
		content string
		sent    string
	}{
		{"a\r\n.\r\n", 250, false, "a\r\n", "a\r\n.\r\n"},
		{"..a\r\n.\r\nNOOP\r\n", 250, false, ".a\r\n", "..a\r\n.\r\n"},
		{"..\r\n.\r\n", 250, false, ".\r\n", "..\r\n.\r\n"},
		{".\r\n", 250, false, "", ".\r\n"},
		{"a\n.\r\nQUIT\r\n", 550, true, "", "a\n.\r\n"},
		{"a\r\r\n.\r\n", 550, true, "", "a\r\r\n.\r\n"},
		{".\rx\r\n.\r\n", 550, true, "", ".\rx\r\n.\r\n"},
		{"\x00\r\n\n..\r\n.\r\nx\n", 550, true, "", "\x00\r\n\n..\r\n.\r\n"},
		{"123456\r\n.\r\n", 550, true, "", "123456\r\n.\r\n"},
		{"12345\r\n.\r\n", 250, false, "12345\r\n", "12345\r\n.\r\n"},
		{".1234\r\n.\r\n", 250, false, "1234\r\n", ".1234\r\n.\r\n"},
		{"1234\r\n12\r\n.\r\n", 552, false, "", "1234\r\n12\r\n.\r\n"},
		{"1234\r\n.1\r\n.\r\n", 250, false, "1234\r\n1\r\n", "1234\r\n.1\r\n.\r\n"},
		{"1234\r\n12\r\n\n.\r\n", 552, true, "", "1234\r\n12\r\n\n.\r\n"},
	} {
		v := dfReference([]byte(c.in), 7, 9)
		if v.code != c.code || v.closes != c.closes || string(v.content) != c.content || string(v.sent) != c.sent {
			t.Errorf("dfReference(%q) = %d closes %v content %q sent %q, want %d %v %q %q",
				c.in, v.code, v.closes, v.content, v.sent, c.code, c.closes, c.content, c.sent)
		}
	}
	if v := dfReference([]byte("a\rb\n.\r\n"), 7, 9); fmt.Sprint(v.faults) != fmt.Sprint([]string{errBareLF.Message, errBareCR.Message}) {
		t.Errorf("faults of a line with a bare CR and a bare LF: %q", v.faults)
	}
}
