package natsqueue

import (
	"bytes"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// FuzzDecodeRecord feeds decodeRecord what a bucket might hold: it must
// not panic, and a record it accepts must survive a round trip.
func FuzzDecodeRecord(f *testing.F) {
	const id = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	good, err := encodeRecord(&record{Entry: &relay.Entry{
		ID:       id,
		Envelope: relay.Envelope{From: "bounces@relay.example", To: relay.To("a@example.org", "b@example.org")},
		Sender:   "alice@example.com",
		Rcpts: []relay.RcptState{{Addr: "a@example.org", Status: relay.RcptDelivered, Reply: &relay.Reply{Code: 250, Message: "OK"}},
			{Addr: "b@example.org", Status: relay.RcptPending}},
		Created: now, NextAttempt: now, Attempts: 1,
	}, Until: now.Add(time.Minute)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"entry":null}`))
	f.Add([]byte(`{"entry":{"id":"` + id + `","envelope":{"to":[]},"rcpts":[]}}`))
	f.Add([]byte(`{"entry":{"id":"` + id + `","envelope":{"to":[{"addr":"a@x"}]},"rcpts":[{"addr":"a@x","status":"pending","reply":{"code":99}}],"created":"2030-01-01T00:00:00Z","next_attempt":"2030-01-01T00:00:00Z"}}`))
	f.Add([]byte("\x00not json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(id, b)
		if err != nil {
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeRecord(id, again)
		if err != nil {
			t.Fatalf("a record accepted, written again, is refused: %v", err)
		}
		if third, _ := encodeRecord(r2); !bytes.Equal(third, again) {
			t.Fatalf("round trip changed the record:\n%s\n%s", again, third)
		}
	})
}
