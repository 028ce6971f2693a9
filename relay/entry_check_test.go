package relay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// Entry.Check refuses each field the Deliverer could not act on, and
// Entry.Prepare fills the states of an entry to commit or refuses ones
// that do not match its envelope.
func TestEntryCheck(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	good := func() *relay.Entry {
		return &relay.Entry{
			ID:       "ABC",
			Envelope: relay.Envelope{From: "b@relay.example", To: relay.To("x@example.org", "y@example.org")},
			Rcpts: []relay.RcptState{
				{Addr: "x@example.org", Status: relay.RcptDelivered, Reply: &relay.Reply{Code: 250}},
				{Addr: "y@example.org", Status: relay.RcptPending},
			},
			Created: at, NextAttempt: at, Attempts: 1,
		}
	}
	if err := good().Check(); err != nil {
		t.Fatalf("a good entry: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(e *relay.Entry)
		want string
	}{
		"no recipients":   {func(e *relay.Entry) { e.Envelope.To, e.Rcpts = nil, nil }, "no recipients"},
		"a state short":   {func(e *relay.Entry) { e.Rcpts = e.Rcpts[:1] }, "1 recipient states for 2"},
		"states swapped":  {func(e *relay.Entry) { e.Rcpts[0], e.Rcpts[1] = e.Rcpts[1], e.Rcpts[0] }, `state 0 is for "y@example.org"`},
		"unknown status":  {func(e *relay.Entry) { e.Rcpts[1].Status = "lost" }, `status "lost"`},
		"reply code 199":  {func(e *relay.Entry) { e.Rcpts[0].Reply.Code = 199 }, "reply code 199"},
		"reply code 600":  {func(e *relay.Entry) { e.Rcpts[0].Reply.Code = 600 }, "reply code 600"},
		"no created":      {func(e *relay.Entry) { e.Created = time.Time{} }, "created"},
		"no next attempt": {func(e *relay.Entry) { e.NextAttempt = time.Time{} }, "next attempt"},
		"attempts -1":     {func(e *relay.Entry) { e.Attempts = -1 }, "attempts -1"},
	} {
		e := good()
		tc.edit(e)
		if err := e.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check() = %v, want an error with %q", name, err, tc.want)
		}
	}

	e := &relay.Entry{Envelope: relay.Envelope{To: relay.To("x@example.org", "y@example.org")}}
	if err := e.Prepare(); err != nil || len(e.Rcpts) != 2 || e.Rcpts[1].Addr != "y@example.org" || e.Rcpts[1].Status != relay.RcptPending {
		t.Errorf("Prepare of an entry without states: %v, %+v", err, e.Rcpts)
	}
	e = good()
	e.Rcpts = e.Rcpts[1:]
	if err := e.Prepare(); err == nil {
		t.Error("Prepare took a state short")
	}
	if err := (&relay.Entry{}).Prepare(); err == nil {
		t.Error("Prepare took an entry without recipients")
	}
}
