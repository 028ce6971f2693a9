package natsqueue_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

func commitTo(t *testing.T, q relay.Queue, rcpts ...string) *relay.Entry {
	t.Helper()
	w, err := q.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: test\r\n\r\nHello.\r\n")
	e := &relay.Entry{Envelope: relay.Envelope{From: "bounces@relay.example", To: relay.To(rcpts...)}, Sender: "alice@example.com"}
	if err := w.Commit(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

func pollQueue(t *testing.T, q relay.Queue) relay.Lease {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l, err := q.Lease(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Lease: %v", err)
	}
	return l
}

// A relay whose clock is behind still believes its lease holds when a
// relay whose clock is ahead takes the message over, once the ack wait
// has run out: the entry's revision, not the clocks, then refuses the
// first relay's writes.
func TestTakeoverRefusesTheFormerHolder(t *testing.T) {
	t.Parallel()
	s := runServer(t)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	open := func(now time.Time) *natsqueue.Queue {
		_, js := connect(t, s.ClientURL())
		q, err := natsqueue.New(t.Context(), js, &natsqueue.Options{Prefix: "SKEW", AckWait: time.Second, MaxDelay: -1,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	behind, ahead := open(t0), open(t0.Add(time.Hour))
	e := commitTo(t, behind, "a@example.org", "b@example.org")
	la, err := behind.Lease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	lb, err := ahead.Lease(ctx)
	if err != nil {
		t.Fatalf("no takeover: %v", err)
	}
	if lb.Entry().ID != e.ID {
		t.Fatalf("leased %s, want %s", lb.Entry().ID, e.ID)
	}
	lb.Entry().Rcpts[0].Status = relay.RcptDelivered
	if err := lb.Save(t.Context()); err != nil {
		t.Fatal(err)
	}
	la.Entry().Rcpts[1].Status = relay.RcptDelivered
	for name, f := range map[string]func() error{
		"Save":   func() error { return la.Save(t.Context()) },
		"Extend": func() error { return la.Extend(t.Context(), time.Minute) },
		"Retry":  func() error { return la.Retry(t.Context(), t0) },
		"Done":   func() error { return la.Done(t.Context()) },
	} {
		if err := f(); !errors.Is(err, relay.ErrLeaseLost) {
			t.Errorf("%s by the former holder: %v, want ErrLeaseLost", name, err)
		}
	}
	if err := lb.Retry(t.Context(), t0.Add(time.Hour)); err != nil {
		t.Fatalf("Retry by the new holder: %v", err)
	}
	lc := pollQueue(t, ahead)
	if lc == nil {
		t.Fatal("the message is not due after the new holder's Retry")
	}
	if got := lc.Entry().Pending(); len(got) != 1 || got[0].Addr != "b@example.org" {
		t.Errorf("pending %v, want b@example.org only: the former holder's writes must not count", got)
	}
}

// lockedBuffer is a log destination for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// What is read back from JetStream is checked: a message whose entry is
// not JSON, or makes no sense, or whose message ID is not one of the
// queue's, is quarantined (terminated and logged), never handed out; a
// message whose entry is gone (done, its ack lost) is dropped.
func TestQuarantine(t *testing.T) {
	t.Parallel()
	s := runServer(t)
	_, js := connect(t, s.ClientURL())
	var logs lockedBuffer
	q, err := natsqueue.New(t.Context(), js, &natsqueue.Options{Prefix: "BAD",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	kv, err := js.KeyValue(t.Context(), "BAD_ENTRIES")
	if err != nil {
		t.Fatal(err)
	}
	notJSON := commitTo(t, q, "a@example.org")
	if _, err := kv.Put(t.Context(), notJSON.ID, []byte(`{"entry": {"id": `)); err != nil {
		t.Fatal(err)
	}
	badState := commitTo(t, q, "a@example.org")
	if _, err := kv.Put(t.Context(), badState.ID, []byte(`{"entry":{"id":"`+badState.ID+
		`","envelope":{"to":[{"addr":"a@example.org"}]},"rcpts":[{"addr":"a@example.org","status":"gone"}],"created":"2030-01-01T00:00:00Z","next_attempt":"2030-01-01T00:00:00Z"}}`)); err != nil {
		t.Fatal(err)
	}
	gone := commitTo(t, q, "a@example.org")
	if err := kv.Purge(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("BAD.queue")
	m.Header.Set(jetstream.MsgIDHeader, "../KV_OTHER")
	m.Header.Set("Relay-Size", "1")
	m.Data = []byte("x")
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	good := commitTo(t, q, "a@example.org")

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	l, err := q.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Entry().ID != good.ID {
		t.Fatalf("leased %s, want only %s", l.Entry().ID, good.ID)
	}
	if err := l.Done(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l := pollQueue(t, q); l != nil {
		t.Fatalf("leased %s after the only good message was done", l.Entry().ID)
	}
	for _, id := range []string{notJSON.ID, badState.ID, `../KV_OTHER`} {
		if !strings.Contains(logs.String(), `quarantined" id=`+id) {
			t.Errorf("no quarantine of %s logged:\n%s", id, logs.String())
		}
	}
	if strings.Contains(logs.String(), `quarantined" id=`+gone.ID) {
		t.Errorf("the message without an entry was quarantined, not dropped")
	}
	// Nothing waits for a redelivery: terminated and dropped messages
	// are acknowledged.
	cons, err := js.Consumer(t.Context(), "BAD_QUEUE", "BAD_DELIVER")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer has %d pending acknowledgement and %d undelivered, want none", info.NumAckPending, info.NumPending)
	}
}

// Messages not due, given back at once (MaxDelay < 0), go to the head of
// the consumer's redeliveries; a Lease looking at one message at a time
// (Peek 1) must still get past them to a due message that has never been
// delivered.
func TestNotDueDoNotStarveNew(t *testing.T) {
	t.Parallel()
	s := runServer(t)
	_, js := connect(t, s.ClientURL())
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	q, err := natsqueue.New(t.Context(), js, &natsqueue.Options{Prefix: "STARVE", MaxDelay: -1, Peek: 1,
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for range 3 {
		commitTo(t, q, "a@example.org")
		l := pollQueue(t, q)
		if l == nil {
			t.Fatal("the message just committed is not due")
		}
		if err := l.Retry(t.Context(), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	fresh := commitTo(t, q, "b@example.org")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l, err := q.Lease(ctx)
	if err != nil {
		t.Fatalf("Lease behind three messages not due: %v", err)
	}
	if l.Entry().ID != fresh.ID {
		t.Errorf("leased %s, want %s", l.Entry().ID, fresh.ID)
	}
}
