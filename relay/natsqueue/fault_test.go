package natsqueue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

// A Commit of a content in the object store that fails after the object
// is stored (here the publish, the queue's stream being gone) returns its
// error, and leaves neither the object nor the entry behind.
func TestCommitFailureAfterObject(t *testing.T) {
	t.Parallel()
	s := runServer(t)
	_, js := connect(t, s.ClientURL())
	q, err := natsqueue.New(t.Context(), js, &natsqueue.Options{Prefix: "CF", MaxInline: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	w, err := q.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(strings.Repeat("0123456789abcdef", 512))); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), "CF_QUEUE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- w.Commit(t.Context(), &relay.Entry{Envelope: relay.Envelope{To: relay.To("a@example.org")}})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Commit without a stream returned nil")
		}
	case <-time.After(time.Minute):
		t.Fatal("Commit still blocked a minute after its publish failed")
	}
	obs, err := js.ObjectStore(t.Context(), "CF_CONTENT")
	if err != nil {
		t.Fatal(err)
	}
	if l, err := obs.List(t.Context()); !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Errorf("object store after a failed Commit: %d objects, err %v; want none", len(l), err)
	}
	kv, err := js.KeyValue(t.Context(), "CF_ENTRIES")
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := kv.Keys(t.Context()); !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Errorf("bucket after a failed Commit: keys %v, err %v; want none", keys, err)
	}
}

// Extend, which the Deliverer calls with a context that has no deadline,
// returns even when the server never answers its progress
// acknowledgement (here refused by the user's permissions; in a cluster,
// a consumer leader that dies with the request).
func TestExtendWithoutAnswer(t *testing.T) {
	t.Parallel()
	s, err := server.NewServer(&server.Options{
		ServerName: "noack",
		Host:       "127.0.0.1",
		Port:       -1,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		Users: []*server.User{{Username: "relay", Password: "secret", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.ACK.>"}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	_, js := connect(t, s.ClientURL(), nats.UserInfo("relay", "secret"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	q, err := natsqueue.New(t.Context(), js, &natsqueue.Options{Prefix: "NOACK"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	commitTo(t, q, "a@example.org")
	l := pollQueue(t, q)
	if l == nil {
		t.Fatal("the message just committed is not due")
	}
	done := make(chan error, 1)
	go func() { done <- l.Extend(context.WithoutCancel(t.Context()), time.Minute) }()
	select {
	case err := <-done:
		t.Logf("Extend: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("Extend still blocked a minute after its acknowledgement went unanswered")
	}
}

// A quarantined message keeps its content for an operator, as the
// package documentation says: terminating it deletes its stream message,
// which holds the content of a small message, so that content is first
// kept in the object store, under the queue ID.
func TestQuarantineKeepsInlineContent(t *testing.T) {
	t.Parallel()
	s := runServer(t)
	_, js := connect(t, s.ClientURL())
	q, err := natsqueue.New(t.Context(), js, &natsqueue.Options{Prefix: "QK"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	e := commitTo(t, q, "a@example.org")
	kv, err := js.KeyValue(t.Context(), "QK_ENTRIES")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), e.ID, []byte(`{"entry": {"id": `)); err != nil {
		t.Fatal(err)
	}
	if l := pollQueue(t, q); l != nil {
		t.Fatalf("leased %s, whose entry is corrupt", l.Entry().ID)
	}
	obs, err := js.ObjectStore(t.Context(), "QK_CONTENT")
	if err != nil {
		t.Fatal(err)
	}
	got, err := obs.GetBytes(t.Context(), e.ID)
	if err != nil {
		t.Fatalf("content of the quarantined message: %v", err)
	}
	if want := "Subject: test\r\n\r\nHello.\r\n"; string(got) != want {
		t.Errorf("content of the quarantined message %q, want %q", got, want)
	}
	if v, err := kv.Get(t.Context(), e.ID); err != nil || string(v.Value()) != `{"entry": {"id": ` {
		t.Errorf("entry of the quarantined message not left as it was: %v", err)
	}
}
