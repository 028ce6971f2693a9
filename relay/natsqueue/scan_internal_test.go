package natsqueue

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
)

// A round of Lease stops looking at messages not yet due once it holds
// scanBytes of their content: with twenty of 10 KiB and a bound of 25 KiB
// it looks at three, not twenty.
func TestPickBoundsContentHeld(t *testing.T) {
	t.Parallel()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	q, err := New(ctx, js, &Options{AckWait: time.Second, MaxDelay: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	content := bytes.Repeat([]byte("0123456789abcdef"), 640) // 10 KiB
	for range 20 {
		w, err := q.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(content)
		if err := w.Commit(ctx, &relay.Entry{Envelope: relay.Envelope{From: "b@relay.example", To: relay.To("x@example.org")}}); err != nil {
			t.Fatal(err)
		}
	}
	// Every message due in an hour.
	for range 20 {
		l, err := q.Lease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Retry(ctx, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	q.scanBytes = 25 << 10
	msgs, err := q.fetch(ctx, true)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	l, seen := q.pick(msgs)
	if l != nil {
		t.Fatalf("leased %s, due in an hour", l.Entry().ID)
	}
	if seen != 3 {
		t.Errorf("looked at %d messages holding 10 KiB each, want 3 under a bound of 25 KiB", seen)
	}
}
