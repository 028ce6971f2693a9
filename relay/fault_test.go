package relay_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

func TestGreetingRefused(t *testing.T) {
	t.Parallel()
	for _, code := range []int{421, 554} {
		srv := newServer(t, nil)
		srv.Fail(smtptest.Fault{On: smtptest.Greeting, Reply: relay.Reply{Code: code, Enhanced: relay.EnhancedCode{code / 100, 3, 2}, Message: "Go away"}})
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
		_, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello)
		r := replyOf(err)
		if r == nil || r.Code != code || r.Enhanced != (relay.EnhancedCode{code / 100, 3, 2}) || r.Temporary() != (code == 421) {
			t.Errorf("greeting %d: %v", code, err)
		}
		if n := srv.Stats().Commands["EHLO"]; n != 0 {
			t.Errorf("greeting %d: EHLO sent", code)
		}
	}
}

// The server hangs up in the middle of the content: an error, and nothing
// kept.
func TestHangupMidData(t *testing.T) {
	t.Parallel()
	for _, disable := range [][]string{{"CHUNKING"}, nil} {
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: disable})
		srv.Fail(smtptest.Fault{On: smtptest.Content, Hangup: true, After: 100, Times: 1})
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS})
		_, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), relay.Bytes(strings.Repeat("x\r\n", 10000)))
		if err == nil {
			t.Errorf("%v: no error", disable)
		}
		if n := srv.Stats().Messages; n != 0 {
			t.Errorf("%v: %d messages kept", disable, n)
		}
		// The next Send opens a new connection.
		send(t, c, envelope("a@example.com", "b@example.org"), hello)
		if st := srv.Stats(); st.Connections != 2 {
			t.Errorf("%v: %d connections", disable, st.Connections)
		}
	}
}

// A server that does not answer in time: the context's deadline ends the
// Send with its error.
func TestSlowReplies(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS})
	send(t, c, envelope("a@example.com", "b@example.org"), hello)
	srv.SetDelay(time.Hour)
	for range 2 { // on the pooled connection, then on a new one
		start := time.Now() // before the deadline is set
		cx, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
		_, err := c.Send(cx, envelope("a@example.com", "b@example.org"), hello)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want the context's deadline", err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("Send returned after %v, before the deadline", d)
		}
	}
	// Timeout bounds a wait when the context has no deadline.
	c = newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Timeout: 50 * time.Millisecond})
	if _, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Send = %v, want a timeout", err)
	}
	if n := srv.Stats().Messages; n != 1 {
		t.Errorf("%d messages", n)
	}
}

// script is a misbehaving server on the far end of a pipe: it reads what
// the client writes, and writes what serve does.
func script(t *testing.T, serve func(w io.Writer, lines <-chan string)) func(context.Context, string, string) (net.Conn, error) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	return func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		t.Cleanup(func() { server.Close() })
		lines := make(chan string, 100)
		wg.Go(func() {
			defer close(lines)
			sc := bufio.NewScanner(server)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				default:
				}
			}
		})
		wg.Go(func() {
			serve(server, lines)
		})
		return client, nil
	}
}

// Servers that send garbage, replies without end, or nothing: clear
// errors, within the context's deadline.
func TestBadServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		serve func(w io.Writer, lines <-chan string)
		want  error
		step  string // named in the error
	}{
		{"garbage", func(w io.Writer, _ <-chan string) {
			io.WriteString(w, "HTTP/1.1 400 Bad Request\r\n\r\n")
		}, relay.ErrProtocol, "reading the greeting"},
		{"binary", func(w io.Writer, _ <-chan string) {
			w.Write([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, '\n'})
		}, relay.ErrProtocol, "reading the greeting"},
		{"endless reply", func(w io.Writer, lines <-chan string) {
			io.WriteString(w, "220 mx.example ESMTP\r\n")
			<-lines // EHLO
			for {
				if _, err := io.WriteString(w, "250-PIPELINING\r\n"); err != nil {
					return
				}
			}
		}, relay.ErrProtocol, "EHLO"},
		{"endless line", func(w io.Writer, _ <-chan string) {
			io.WriteString(w, "220 ")
			for {
				if _, err := io.WriteString(w, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"); err != nil {
					return
				}
			}
		}, relay.ErrProtocol, "reading the greeting"},
		{"codes differ", func(w io.Writer, _ <-chan string) {
			io.WriteString(w, "220-mx.example\r\n554 no\r\n")
		}, relay.ErrProtocol, "reading the greeting"},
		{"silence", func(io.Writer, <-chan string) {}, context.DeadlineExceeded, "reading the greeting"},
		{"silence after EHLO", func(w io.Writer, lines <-chan string) {
			io.WriteString(w, "220 mx.example ESMTP\r\n")
		}, context.DeadlineExceeded, "EHLO"},
		{"hangup", func(w io.Writer, lines <-chan string) {
			io.WriteString(w, "220 mx.example ESMTP\r\n")
			<-lines // EHLO, written: the client reads next
			w.(net.Conn).Close()
		}, io.EOF, "EHLO"},
		{"injection after STARTTLS", func(w io.Writer, lines <-chan string) {
			io.WriteString(w, "220 mx.example ESMTP\r\n")
			<-lines
			io.WriteString(w, "250-mx.example\r\n250 STARTTLS\r\n")
			<-lines
			io.WriteString(w, "220 Go ahead\r\n250 injected\r\n")
		}, relay.ErrProtocol, "STARTTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, "mx.example:25", &relay.ClientOptions{Dial: script(t, tt.serve)})
			// A server that says nothing meets a short deadline; the
			// others have a long one, which the limits on replies
			// must beat: a client without them would wait for it,
			// and fail with its error rather than tt.want.
			deadline := time.Minute
			if tt.want == context.DeadlineExceeded {
				deadline = 100 * time.Millisecond
			}
			cx, cancel := context.WithTimeout(ctx(t), deadline)
			defer cancel()
			_, err := c.Send(cx, envelope("a@example.com", "b@example.org"), hello)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.step) {
				t.Errorf("Send = %v, want %v in %s", err, tt.want, tt.step)
			}
		})
	}
}

// cancelling is a message that cancels the Send's context once the client
// has read part of it, and goes on giving octets.
type cancelling struct {
	size   int
	after  int
	cancel context.CancelFunc
}

func (m *cancelling) Size() int64 { return int64(m.size) }

func (m *cancelling) Open() (io.ReadCloser, error) {
	return io.NopCloser(&cancelReader{m: m}), nil
}

type cancelReader struct {
	m *cancelling
	n int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	if r.n >= r.m.size {
		return 0, io.EOF
	}
	if r.n >= r.m.after {
		r.m.cancel()
	}
	n := min(len(p), r.m.size-r.n, 512)
	for i := range n {
		p[i] = "0123456789abcde\n"[(r.n+i)%16]
	}
	r.n += n
	return n, nil
}

// Cancelled in the middle of the content: the server keeps nothing, with
// DATA and BDAT. Between chunks and without PIPELINING, the transaction
// is reset (RSET) and the connection kept; otherwise it is closed, without
// QUIT.
func TestCancelMidData(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		disable []string
		kept    bool // the connection is kept after
	}{
		{"DATA", []string{"CHUNKING"}, false},
		{"DATA stepwise", []string{"CHUNKING", "PIPELINING"}, false},
		{"BDAT pipelined", nil, false},
		{"BDAT stepwise", []string{"PIPELINING"}, true},
	} {
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: tt.disable})
		c, err := relay.NewClient(srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, ChunkSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		cx, cancel := context.WithCancel(ctx(t))
		msg := &cancelling{size: 100000, after: 20000, cancel: cancel}
		_, err = c.Send(cx, envelope("a@example.com", "b@example.org"), msg)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Send = %v, want context.Canceled", tt.name, err)
		}
		// Close QUITs the connection it kept. (A new BDAT transaction
		// on it would meet a data race in go-smtp's server, which does
		// not wait for the end of a BDAT transaction reset in the
		// middle.)
		c.Close()
		st := srv.Stats()
		if st.Messages != 0 {
			t.Errorf("%s: the server kept %d messages", tt.name, st.Messages)
		}
		kept := st.Commands["RSET"] == 1 && st.Commands["QUIT"] == 1
		if kept != tt.kept || !kept && st.Commands["QUIT"] != 0 {
			t.Errorf("%s: commands %v; want the connection kept: %v", tt.name, st.Commands, tt.kept)
		}
	}
}

// A context done before Send starts: nothing happens.
func TestCancelledBefore(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	c := newClient(t, srv.Addr, nil)
	cx, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := c.Send(cx, envelope("a@example.com", "b@example.org"), hello); !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v", err)
	}
	if n := srv.Stats().Connections; n != 0 {
		t.Errorf("%d connections", n)
	}
}
