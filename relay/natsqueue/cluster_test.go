package natsqueue_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// A fleet of three relays on a 3-node JetStream cluster (R3), one sink:
// concurrent clients send through all three; during the run one relay is
// killed (its leases abandoned) and one NATS node restarted. Every
// message that got a 250 reaches the sink; duplicates (at least once)
// are counted and logged.
func TestClusterFleet(t *testing.T) {
	t.Parallel()
	messages := 2000
	if testing.Short() || os.Getenv("CI") != "" {
		messages = 300
	}
	const clients = 12

	c := startCluster(t, 3)
	sink, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	var relays []*relayInstance
	for i := range 3 {
		q := newQueue(t, c.url(i), &natsqueue.Options{Replicas: 3, AckWait: 3 * time.Second})
		relays = append(relays, startRelay(t, q, sink.Addr, 8))
	}
	submit := make([]*relay.Client, 3)
	for i, r := range relays {
		submit[i], err = relay.NewClient(r.addr, &relay.ClientOptions{TLS: relay.NoTLS, MaxConns: clients, LocalName: "app.test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { submit[i].Close() })
	}

	var (
		next     atomic.Int64
		accepted = make([]atomic.Bool, messages)
		killed   atomic.Bool
		refused  atomic.Int64
		wg       sync.WaitGroup
	)
	for w := range clients {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= messages {
					return
				}
				switch n {
				case messages / 3:
					t.Logf("killing relay 2 after %d messages", n)
					killed.Store(true)
					relays[1].kill()
				case 2 * messages / 3:
					t.Logf("restarting NATS node 3 after %d messages", n)
					c.restart(2)
				}
				body := testMessage(n, 2<<10)
				// A client tries another relay when one refuses or
				// is gone, as behind a load balancer.
				for try := range 40 {
					i := (n + w + try) % 3
					if i == 1 && killed.Load() {
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err := submit[i].Send(ctx, testEnvelope, relay.Bytes(body))
					cancel()
					if err == nil {
						accepted[n].Store(true)
						break
					}
					refused.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	want := 0
	for i := range accepted {
		if accepted[i].Load() {
			want++
		}
	}
	t.Logf("%d of %d messages accepted (%d refusals retried)", want, messages, refused.Load())
	if want < messages*9/10 {
		t.Errorf("only %d of %d messages accepted", want, messages)
	}

	var got map[int]int
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got = map[int]int{}
		for _, m := range sink.Messages() {
			if n, ok := testSeq(m.Data); ok {
				got[n]++
			}
		}
		missing := 0
		for i := range accepted {
			if accepted[i].Load() && got[i] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages accepted with a 250 never reached the sink", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	dups := 0
	for n, k := range got {
		if k > 1 {
			dups += k - 1
			t.Logf("message %d delivered %d times", n, k)
		}
	}
	t.Logf("%d messages delivered, %d duplicates (at least once: deliveries of the killed relay were taken over)", len(got), dups)
}
