package relay

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// seedEntry is a valid entry file for the message "AAAA".
func seedEntry(f *testing.F) []byte {
	f.Helper()
	e := &Entry{
		ID: "AAAA",
		Envelope: Envelope{From: "bounces@relay.example", To: []Recipient{
			{Addr: "bob@example.org", Notify: []DSNNotify{NotifyFailure}, ORcpt: "rfc822;bob@example.org"},
			{Addr: "carol@example.org"},
		}, Return: ReturnHeaders, EnvID: "x1"},
		Sender: "alice@example.com",
		Header: []byte("DKIM-Signature: v=1\r\n"),
		Rcpts: []RcptState{
			{Addr: "bob@example.org", Status: RcptDelivered, Reply: &Reply{Code: 250, Message: "OK"}, Host: "mx:25"},
			{Addr: "carol@example.org", Status: RcptPending},
		},
		Created:     time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		NextAttempt: time.Date(2030, 1, 2, 3, 5, 5, 0, time.UTC),
		Attempts:    1,
	}
	b, err := json.Marshal(e)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// decodeEntry reads any bytes without panicking; what it accepts is an
// entry a spool could have written, which writes and reads back the same.
func FuzzDecodeEntry(f *testing.F) {
	valid := seedEntry(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	f.Add([]byte("null"))
	f.Add([]byte(`{"id":"AAAA"}`))
	f.Add([]byte(`{"id":"AAAA","envelope":{"To":[{"Addr":"a"}]},"rcpts":[{"addr":"a","status":"pending"}],"created":"2030-01-02T03:04:05Z","next_attempt":"2030-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"id":"AAAA","envelope":{"To":[{"Addr":"a"}]},"rcpts":[{"addr":"a","status":"pending","reply":{"Code":99}}],"created":"2030-01-02T03:04:05Z","next_attempt":"2030-01-02T03:04:05Z"}`))
	f.Add(append(valid, []byte(" {}")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry("AAAA", data)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v is not errCorrupt", err)
			}
			return
		}
		if e.ID != "AAAA" || len(e.Rcpts) != len(e.Envelope.To) || len(e.Rcpts) == 0 {
			t.Fatalf("accepted an entry of %q with %d states for %d recipients", e.ID, len(e.Rcpts), len(e.Envelope.To))
		}
		if len(e.Pending()) > len(e.Rcpts) {
			t.Fatalf("%d pending of %d recipients", len(e.Pending()), len(e.Rcpts))
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("accepted an entry that does not encode: %v", err)
		}
		e2, err := decodeEntry("AAAA", b)
		if err != nil {
			t.Fatalf("an accepted entry, written again, reads as %v", err)
		}
		b2, _ := json.Marshal(e2)
		if string(b) != string(b2) {
			t.Fatalf("entry written twice differs:\n%s\n%s", b, b2)
		}
	})
}
