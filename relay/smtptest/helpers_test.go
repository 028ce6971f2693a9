package smtptest_test

import (
	"bufio"
	"io"
	"net"
	"net/textproto"
	"testing"

	"github.com/smarthost-go/smarthost/relay/smtptest"
)

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// raw is a client that writes bytes and reads replies, for what go-smtp's
// client does not do (BDAT, pipelining, misbehaving).
type raw struct {
	t  *testing.T
	c  net.Conn
	tp *textproto.Reader
}

// dialRaw connects and reads the greeting.
func dialRaw(t *testing.T, s *smtptest.Server) *raw {
	t.Helper()
	r := rawNoGreeting(t, s)
	r.read(220)
	return r
}

// rawNoGreeting connects without reading the greeting.
func rawNoGreeting(t *testing.T, s *smtptest.Server) *raw {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, tp: textproto.NewReader(bufio.NewReader(c))}
}

func (r *raw) write(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// read reads a reply and checks its code; it returns the text.
func (r *raw) read(code int) string {
	r.t.Helper()
	got, msg, err := r.tp.ReadResponse(0)
	if got != code {
		r.t.Fatalf("reply %d %q (%v), want %d", got, msg, err, code)
	}
	return msg
}

// expect sends a command line and checks the reply's code.
func (r *raw) expect(cmd string, code int) string {
	r.t.Helper()
	r.write(cmd + "\r\n")
	return r.read(code)
}

// closed checks that the server closed the connection.
func (r *raw) closed() {
	r.t.Helper()
	if line, err := r.tp.ReadLine(); err == nil {
		r.t.Errorf("read %q, want the connection closed", line)
	}
}
