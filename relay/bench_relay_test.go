package relay_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// BenchmarkRelay is the relay's whole path on loopback: concurrent
// clients submit 10 KiB messages with AUTH PLAIN over STARTTLS (our
// Client, one pooled connection each); the Server signs each twice with
// DKIM (the customer's Ed25519 key and the provider's RSA key) as it
// spools it durably (Spool on the benchmark's temporary directory, fsync
// before 250), and a Deliverer hands it to an smtptest sink. One op is a
// message accepted AND delivered: the clock stops when the sink has them
// all. accept-p50-ms and accept-p99-ms are the client's time from MAIL
// to the 250 after the content.
func BenchmarkRelay(b *testing.B) {
	for _, clients := range []int{1, 20} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchRelay(b, clients, 10<<10)
		})
	}
}

func benchRelay(b *testing.B, clients, size int) {
	sink, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	spool, err := relay.NewSpool(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	fx := srvStartQueue(b, spool, func(o *relay.ServerOptions) {
		o.Logger, o.Events = nil, nil
		o.MaxConnectionsPerIP = clients + 10
	}, nil)
	up, err := relay.NewClient(sink.Addr, &relay.ClientOptions{TLS: relay.NoTLS, MaxConns: 20})
	if err != nil {
		b.Fatal(err)
	}
	d, err := relay.NewDeliverer(spool, up, &relay.DelivererOptions{Workers: 20})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-ran
		up.Close()
		spool.Close()
	})

	submit, err := relay.NewClient(fx.addr, &relay.ClientOptions{
		TLS:          relay.StartTLS,
		TLSConfig:    fx.client,
		Credentials:  &sasl.Credentials{Username: "apikey", Password: srvKey},
		Mechanism:    "PLAIN",
		MaxConns:     clients,
		MaxIdleConns: clients,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { submit.Close() })
	body := "From: Shop <shop@customer.example>\r\nTo: <rcpt@receiver.example>\r\nSubject: an order\r\n\r\n" +
		strings.Repeat("A line of the order, as ordinary mail goes, ending here.\r\n", size/58)
	env := &relay.Envelope{From: "shop@customer.example", To: relay.To("rcpt@receiver.example")}

	var mu sync.Mutex
	var lat []time.Duration
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for range next {
				t0 := time.Now()
				if _, err := submit.Send(context.Background(), env, relay.Bytes(body)); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer wcancel()
	if _, err := sink.WaitMessages(wctx, b.N); err != nil {
		b.Fatalf("the sink has %d of %d messages: %v", len(sink.Messages()), b.N, err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "accept-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "accept-p99-ms")
	}
}
