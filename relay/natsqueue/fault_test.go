package natsqueue_test

import (
	"errors"
	"strings"
	"testing"
	"time"

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
