package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// BenchmarkSend sends 10 KiB messages on a reused connection through a
// Proxy with 10 ms each way, with our client and with go-smtp's used
// plainly (Mail, Rcpt for each recipient, Data per message), in plaintext
// so that only the round trips count. msgs/s is the figure to compare.
// trips/msg is counted on each client's connection (a read after a
// write: the client waits for the server); rtts/msg is the time a message
// took over the 20 ms of a round trip, a count from the clock that holds
// whatever the client does.
func BenchmarkSend(b *testing.B) {
	const delay = 10 * time.Millisecond
	body := []byte(strings.Repeat("0123456789abcdefghijklmnopqrstu\n", 320)) // 10 KiB
	report := func(b *testing.B, w *wire, t0 int) {
		_, t1 := w.counts()
		perMsg := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(float64(t1-t0)/float64(b.N), "trips/msg")
		b.ReportMetric(perMsg/(2*delay).Seconds(), "rtts/msg")
		b.ReportMetric(1/perMsg, "msgs/s")
	}
	for _, tt := range []struct {
		name    string
		disable []string
	}{
		{"chunking", nil},
		{"data", []string{"CHUNKING"}},
	} {
		for _, rcpts := range []int{1, 10} {
			var to []string
			for i := range rcpts {
				to = append(to, fmt.Sprintf("r%d@example.org", i))
			}
			srv, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS, Disable: tt.disable})
			if err != nil {
				b.Fatal(err)
			}
			proxy, err := smtptest.NewProxy(srv.Addr, delay)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/rcpts=%d/ours", tt.name, rcpts), func(b *testing.B) {
				w := &wire{}
				c, err := relay.NewClient(proxy.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Dial: w.dial, MaxMessagesPerConn: -1})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				env := &relay.Envelope{From: "a@example.com", To: relay.To(to...)}
				if _, err := c.Send(context.Background(), env, relay.Bytes(body)); err != nil {
					b.Fatal(err)
				}
				_, t0 := w.counts()
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Send(context.Background(), env, relay.Bytes(body)); err != nil {
						b.Fatal(err)
					}
				}
				report(b, w, t0)
			})
			b.Run(fmt.Sprintf("%s/rcpts=%d/go-smtp", tt.name, rcpts), func(b *testing.B) {
				w := &wire{}
				conn, err := w.dial(context.Background(), "tcp", proxy.Addr)
				if err != nil {
					b.Fatal(err)
				}
				c := smtp.NewClient(conn)
				defer c.Close()
				if err := c.Hello("localhost"); err != nil {
					b.Fatal(err)
				}
				sendOne := func() error {
					if err := c.Mail("a@example.com", nil); err != nil {
						return err
					}
					for _, r := range to {
						if err := c.Rcpt(r, nil); err != nil {
							return err
						}
					}
					wc, err := c.Data()
					if err != nil {
						return err
					}
					if _, err := wc.Write(body); err != nil {
						return err
					}
					return wc.Close()
				}
				if err := sendOne(); err != nil {
					b.Fatal(err)
				}
				_, t0 := w.counts()
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := sendOne(); err != nil {
						b.Fatal(err)
					}
				}
				report(b, w, t0)
			})
			proxy.Close()
			srv.Close()
		}
	}
}
