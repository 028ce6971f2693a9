package natsqueue_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// BenchmarkFleet is the load of relay's BenchmarkRelay (10 KiB messages,
// each signed twice with DKIM, Ed25519 and RSA, as it is queued; a
// Deliverer hands it to an smtptest sink) on three queues: one relay on
// the on-disk spool (fsync before 250), one relay on a single-node
// JetStream (as configured by default, syncing its files every two
// minutes, and with sync_interval: always, an fsync before each
// acknowledgement, the spool's guarantee), and three relays on a 3-node JetStream cluster (R3), the
// clients spread over them. The clients are in a trusted network (no
// AUTH, no TLS), the same for all three. One op is a message accepted AND
// delivered; accept-p50-ms and accept-p99-ms are the client's time from
// MAIL to the 250 after the content.
func BenchmarkFleet(b *testing.B) {
	for _, clients := range []int{1, 20} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchFleet(b, clients) })
	}
}

func benchFleet(b *testing.B, clients int) {
	b.Run("spool", func(b *testing.B) {
		sink := benchSink(b)
		q, err := relay.NewSpool(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		r := startRelay(b, q, sink.Addr, 20)
		benchLoad(b, sink, []string{r.addr}, clients)
	})
	for _, sync := range []bool{false, true} {
		name := "jetstream"
		if sync {
			name = "jetstream-syncalways"
		}
		b.Run(name, func(b *testing.B) {
			sink := benchSink(b)
			s := runServerSync(b, sync)
			r := startRelay(b, newQueue(b, s.ClientURL(), nil), sink.Addr, 20)
			benchLoad(b, sink, []string{r.addr}, clients)
		})
	}
	b.Run("jetstream-cluster3", func(b *testing.B) {
		sink := benchSink(b)
		c := startCluster(b, 3)
		var addrs []string
		for i := range 3 {
			q := newQueue(b, c.url(i), &natsqueue.Options{Replicas: 3})
			addrs = append(addrs, startRelay(b, q, sink.Addr, 20).addr)
		}
		benchLoad(b, sink, addrs, clients)
	})
}

func benchSink(b *testing.B) *smtptest.Server {
	sink, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	return sink
}

// benchLoad sends b.N messages from clients concurrent clients, spread
// over the relays at addrs, and waits until the sink has them all.
func benchLoad(b *testing.B, sink *smtptest.Server, addrs []string, clients int) {
	var submit []*relay.Client
	for _, a := range addrs {
		c, err := relay.NewClient(a, &relay.ClientOptions{TLS: relay.NoTLS, MaxConns: clients, MaxIdleConns: clients, LocalName: "app.test"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		submit = append(submit, c)
	}
	body := testMessage(0, 10<<10)
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			var mine []time.Duration
			for range next {
				t0 := time.Now()
				if _, err := submit[w%len(submit)].Send(context.Background(), testEnvelope, relay.Bytes(body)); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := sink.WaitMessages(ctx, b.N); err != nil {
		b.Fatalf("the sink has %d of %d messages: %v", len(sink.Messages()), b.N, err)
	}
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	// The CPU time of the whole process (clients, relays, servers, sink)
	// per message.
	b.ReportMetric(float64(cpu)/1e6/float64(b.N), "cpu-ms/msg")
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "accept-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "accept-p99-ms")
	}
}
