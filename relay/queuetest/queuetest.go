// Package queuetest checks an implementation of relay.Queue against the
// contract that the relay's Deliverer relies on, as testing/fstest does for
// an fs.FS: the on-disk spool runs it, and so does every other queue (the
// NATS JetStream one of relay/natsqueue).
//
// The tests give the queue a clock of their own, which moves only when
// they move it: a message is due, and a lease expires, when that clock
// says so. They never sleep. A test that needs a lease to have expired
// moves the clock to the lease's Deadline and then waits in Lease, so that
// a queue whose leases run out on a clock it does not own (a JetStream
// consumer's ack wait) passes too, only more slowly. A test that checks
// that no message is due calls Lease with a context already done, which
// the contract makes a poll.
package queuetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// NewQueue opens a queue on new, empty storage for one test, with now as
// its clock. It also returns reopen, which opens another queue on the same
// storage with the same clock, as a restart of the process does: the
// queue before it has been closed, or only abandoned as after a crash.
// reopen is nil when the storage does not outlive its queue; the tests of
// restarts are then skipped. The tests close each queue they are given,
// and may run in parallel.
type NewQueue func(t *testing.T, now func() time.Time) (q relay.Queue, reopen func() relay.Queue)

// Run runs the behavioural tests of relay.Queue, each a subtest with
// queues from newQueue.
func Run(t *testing.T, newQueue NewQueue) {
	tests := []struct {
		name string
		f    func(t *testing.T, h *harness)
	}{
		{"CommitLeaseDone", testCommitLeaseDone},
		{"CommitFillsEntry", testCommitFillsEntry},
		{"CommitChecksRecipients", testCommitChecksRecipients},
		{"EntryRoundTrip", testEntryRoundTrip},
		{"LargeContent", testLargeContent},
		{"Abort", testAbort},
		{"WriterAfterCommit", testWriterAfterCommit},
		{"RetryNotDueBefore", testRetryNotDueBefore},
		{"OrderByNextAttempt", testOrderByNextAttempt},
		{"LeaseExpiresAndIsTakenOver", testLeaseExpires},
		{"ExtendKeepsLease", testExtend},
		{"EndedLease", testEndedLease},
		{"LeaseWaitsForCommit", testLeaseWaitsForCommit},
		{"LeaseWaitsForRetry", testLeaseWaitsForRetry},
		{"LeaseEndsWithContext", testLeaseEndsWithContext},
		{"ConcurrentWorkers", testConcurrentWorkers},
		{"Close", testClose},
		{"SaveSurvivesReopen", testSaveSurvivesReopen},
		{"RetrySurvivesReopen", testRetrySurvivesReopen},
		{"DoneSurvivesReopen", testDoneSurvivesReopen},
		{"AbortSurvivesReopen", testAbortSurvivesReopen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &harness{clock: &clock{now: start}}
			q, reopen := newQueue(t, h.clock.Now)
			h.q = h.track(t, q)
			if reopen != nil {
				h.reopen = func(t *testing.T) relay.Queue {
					t.Helper()
					return h.track(t, reopen())
				}
			}
			tt.f(t, h)
		})
	}
}

// start is where the clock of every test starts, far from the time of
// day, so that a queue that reads the system's clock shows it.
var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a clock that moves only when a test moves it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t, if t is later.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

type harness struct {
	q      relay.Queue
	clock  *clock
	reopen func(t *testing.T) relay.Queue // nil: not reopenable

	mu     sync.Mutex
	closed map[relay.Queue]bool
}

// track closes q at the end of the test, unless the test did.
func (h *harness) track(t *testing.T, q relay.Queue) relay.Queue {
	t.Helper()
	if q == nil {
		t.Fatal("newQueue returned a nil queue")
	}
	t.Cleanup(func() { h.close(t, q) })
	return q
}

func (h *harness) close(t *testing.T, q relay.Queue) {
	h.mu.Lock()
	if h.closed == nil {
		h.closed = map[relay.Queue]bool{}
	}
	done := h.closed[q]
	h.closed[q] = true
	h.mu.Unlock()
	if !done {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func (h *harness) needReopen(t *testing.T) {
	if h.reopen == nil {
		t.Skip("the queue cannot be reopened")
	}
}

// patient is the context of a call expected to return: it ends only if the
// queue hangs, to fail the test rather than time it out.
func patient(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// envelope is the envelope of test messages to n recipients.
func envelope(n int) relay.Envelope {
	env := relay.Envelope{From: "bounces@relay.example"}
	for i := range n {
		env.To = append(env.To, relay.Recipient{Addr: fmt.Sprintf("rcpt%d@example.org", i)})
	}
	return env
}

// commit queues content with an entry made of e.
func commit(t *testing.T, q relay.Queue, e *relay.Entry, content string) *relay.Entry {
	t.Helper()
	w, err := q.Create(patient(t))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Commit(patient(t), e); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return e
}

// commitN queues a message to n recipients.
func commitN(t *testing.T, q relay.Queue, n int) *relay.Entry {
	t.Helper()
	return commit(t, q, &relay.Entry{Envelope: envelope(n), Sender: "alice@example.com"}, "Subject: test\r\n\r\nHello.\r\n")
}

// lease leases a message, waiting for it.
func lease(t *testing.T, q relay.Queue) relay.Lease {
	t.Helper()
	l, err := q.Lease(patient(t))
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	return l
}

// poll leases a message due now, or returns nil.
func poll(t *testing.T, q relay.Queue) relay.Lease {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l, err := q.Lease(ctx)
	switch {
	case err == nil:
		return l
	case errors.Is(err, context.Canceled):
		return nil
	}
	t.Fatalf("Lease with a done context: %v, want a due message or context.Canceled", err)
	return nil
}

// noneDue checks that no message is due.
func noneDue(t *testing.T, q relay.Queue, why string) {
	t.Helper()
	if l := poll(t, q); l != nil {
		t.Fatalf("%s: leased %s", why, l.Entry().ID)
	}
}

func read(t *testing.T, m relay.Message) string {
	t.Helper()
	rc, err := m.Open()
	if err != nil {
		t.Fatalf("Message.Open: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading the message: %v", err)
	}
	return string(b)
}

// sameEntry fails the test when got and want differ.
func sameEntry(t *testing.T, got, want *relay.Entry) {
	t.Helper()
	g, w := entryJSON(t, got), entryJSON(t, want)
	if g != w {
		t.Fatalf("entry\n got %s\nwant %s", g, w)
	}
}

// entryJSON writes e with its times in UTC, for comparisons.
func entryJSON(t *testing.T, e *relay.Entry) string {
	t.Helper()
	c := *e
	c.Created, c.NextAttempt = c.Created.UTC(), c.NextAttempt.UTC()
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantLost(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, relay.ErrLeaseLost) {
		t.Errorf("%s: %v, want ErrLeaseLost", op, err)
	}
}

func testCommitLeaseDone(t *testing.T, h *harness) {
	e := commitN(t, h.q, 2)
	l := lease(t, h.q)
	if l.Entry().ID != e.ID {
		t.Fatalf("leased %q, committed %q", l.Entry().ID, e.ID)
	}
	sameEntry(t, l.Entry(), e)
	const want = "Subject: test\r\n\r\nHello.\r\n"
	for i := range 2 {
		if got := read(t, l.Message()); got != want {
			t.Fatalf("reading %d: message %q, want %q", i+1, got, want)
		}
	}
	if got := l.Message().Size(); got != int64(len(want)) {
		t.Errorf("Size %d, want %d", got, len(want))
	}
	if !l.Deadline().After(h.clock.Now()) {
		t.Errorf("Deadline %v is not after now %v", l.Deadline(), h.clock.Now())
	}
	noneDue(t, h.q, "while the only message is leased")
	if err := l.Done(patient(t)); err != nil {
		t.Fatalf("Done: %v", err)
	}
	noneDue(t, h.q, "after Done")
	h.clock.Advance(24 * time.Hour)
	noneDue(t, h.q, "a day after Done")
}

func testCommitFillsEntry(t *testing.T, h *harness) {
	h.clock.Advance(time.Hour)
	now := h.clock.Now()
	e := &relay.Entry{Envelope: envelope(3), Sender: "alice@example.com"}
	commit(t, h.q, e, "x")
	if e.ID == "" {
		t.Error("Commit did not set the ID")
	}
	if !e.Created.Equal(now) || !e.NextAttempt.Equal(now) {
		t.Errorf("Created %v, NextAttempt %v, want both %v (the queue's clock)", e.Created, e.NextAttempt, now)
	}
	if len(e.Rcpts) != 3 {
		t.Fatalf("Rcpts %+v, want 3", e.Rcpts)
	}
	for i, r := range e.Rcpts {
		if r.Addr != e.Envelope.To[i].Addr || r.Status != relay.RcptPending || r.Reply != nil {
			t.Errorf("Rcpts[%d] = %+v, want %s pending", i, r, e.Envelope.To[i].Addr)
		}
	}
	e2 := commitN(t, h.q, 1)
	if e2.ID == e.ID {
		t.Errorf("two messages have the ID %q", e.ID)
	}
}

func testCommitChecksRecipients(t *testing.T, h *harness) {
	bad := []*relay.Entry{
		{Sender: "alice@example.com"},
		{Envelope: envelope(2), Rcpts: []relay.RcptState{{Addr: "rcpt0@example.org", Status: relay.RcptPending}}},
		{Envelope: envelope(1), Rcpts: []relay.RcptState{{Addr: "someone@example.org", Status: relay.RcptPending}}},
	}
	for i, e := range bad {
		w, err := h.q.Create(patient(t))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "x")
		if err := w.Commit(patient(t), e); err == nil {
			t.Errorf("entry %d (%d recipients, %d states): Commit succeeded", i, len(e.Envelope.To), len(e.Rcpts))
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after a failed Commit: %v", err)
		}
	}
	noneDue(t, h.q, "after refused commits")
	// States given in full are kept.
	e := &relay.Entry{Envelope: envelope(2), Rcpts: []relay.RcptState{
		{Addr: "rcpt0@example.org", Status: relay.RcptDelivered},
		{Addr: "rcpt1@example.org", Status: relay.RcptPending},
	}}
	commit(t, h.q, e, "x")
	sameEntry(t, lease(t, h.q).Entry(), e)
}

// fullEntry has every field of an entry set.
func fullEntry() *relay.Entry {
	return &relay.Entry{
		Envelope: relay.Envelope{
			From: "SRS0=abcd=XY=example.com=alice@relay.example",
			To: []relay.Recipient{
				{Addr: "bob@example.org", Notify: []relay.DSNNotify{relay.NotifyFailure, relay.NotifyDelay}, ORcpt: "rfc822;bob@example.org"},
				{Addr: "carol@example.net", Notify: []relay.DSNNotify{relay.NotifyNever}},
				{Addr: "dörte@example.de"},
			},
			SMTPUTF8:   true,
			Body:       relay.BodyEightBit,
			RequireTLS: true,
			Return:     relay.ReturnHeaders,
			EnvID:      "QQ314159",
		},
		Sender:    "alice@example.com",
		Account:   "billing-app",
		MessageID: "<20300102030405.1@example.com>",
		Header:    []byte("DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=s1;\r\n b=abc\r\n"),
	}
}

func testEntryRoundTrip(t *testing.T, h *harness) {
	e := commit(t, h.q, fullEntry(), "Subject: hi\r\n\r\nbody\r\n")
	l := lease(t, h.q)
	sameEntry(t, l.Entry(), e)
	if got, want := read(t, l.Message()), string(e.Header)+"Subject: hi\r\n\r\nbody\r\n"; got != want {
		t.Errorf("message %q, want the entry's Header then the content: %q", got, want)
	}
	if got, want := l.Message().Size(), int64(len(e.Header)+len("Subject: hi\r\n\r\nbody\r\n")); got != want {
		t.Errorf("Size %d, want %d", got, want)
	}
	le := l.Entry()
	le.Attempts = 2
	le.Rcpts[0] = relay.RcptState{Addr: le.Rcpts[0].Addr, Status: relay.RcptDelivered, Host: "mx.example.org:25",
		Reply: &relay.Reply{Code: 250, Enhanced: relay.EnhancedCode{2, 0, 0}, Message: "OK queued as 1234"}}
	le.Rcpts[1] = relay.RcptState{Addr: le.Rcpts[1].Addr, Status: relay.RcptDSNSent, Host: "mx.example.net:25",
		Reply: &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "no such user\nsee https://example.net/550"}}
	le.Rcpts[2] = relay.RcptState{Addr: le.Rcpts[2].Addr, Status: relay.RcptPending,
		Reply: &relay.Reply{Code: 451, Message: "try later"}}
	saved := *le
	saved.Rcpts = append([]relay.RcptState(nil), le.Rcpts...)
	if err := l.Retry(patient(t), h.clock.Now()); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	sameEntry(t, lease(t, h.q).Entry(), &saved)
}

func testLargeContent(t *testing.T, h *harness) {
	var content bytes.Buffer
	for i := 0; content.Len() < 1<<20; i++ {
		fmt.Fprintf(&content, "line %d of a large message, with some text to fill it up\r\n", i)
	}
	w, err := h.q.Create(patient(t))
	if err != nil {
		t.Fatal(err)
	}
	for b := content.Bytes(); len(b) > 0; {
		n := min(len(b), 4093)
		if _, err := w.Write(b[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		b = b[n:]
	}
	if err := w.Commit(patient(t), &relay.Entry{Envelope: envelope(1)}); err != nil {
		t.Fatal(err)
	}
	l := lease(t, h.q)
	if got := read(t, l.Message()); got != content.String() {
		t.Errorf("message of %d octets read back as %d octets, or different", content.Len(), len(got))
	}
	if got := l.Message().Size(); got != int64(content.Len()) {
		t.Errorf("Size %d, want %d", got, content.Len())
	}
}

func testAbort(t *testing.T, h *harness) {
	w, err := h.q.Create(patient(t))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: never\r\n\r\n")
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := w.Commit(patient(t), &relay.Entry{Envelope: envelope(1)}); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	noneDue(t, h.q, "after Abort")
}

func testWriterAfterCommit(t *testing.T, h *harness) {
	w, err := h.q.Create(patient(t))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "x")
	e := &relay.Entry{Envelope: envelope(1)}
	if err := w.Commit(patient(t), e); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit(patient(t), &relay.Entry{Envelope: envelope(1)}); err == nil {
		t.Error("a second Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	l := lease(t, h.q)
	if l.Entry().ID != e.ID || read(t, l.Message()) != "x" {
		t.Errorf("after Abort following Commit: leased %s %q, want %s \"x\"", l.Entry().ID, read(t, l.Message()), e.ID)
	}
}

func testRetryNotDueBefore(t *testing.T, h *harness) {
	e := commitN(t, h.q, 1)
	l := lease(t, h.q)
	l.Entry().Attempts = 1
	at := h.clock.Now().Add(time.Hour)
	if err := l.Retry(patient(t), at); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if !l.Entry().NextAttempt.Equal(at) {
		t.Errorf("after Retry, NextAttempt %v, want %v", l.Entry().NextAttempt, at)
	}
	noneDue(t, h.q, "just after Retry in an hour")
	h.clock.Advance(time.Hour - time.Second)
	noneDue(t, h.q, "a second before the retry")
	h.clock.Advance(time.Second)
	l = poll(t, h.q)
	if l == nil {
		t.Fatal("no message due at its retry time")
	}
	if l.Entry().ID != e.ID || l.Entry().Attempts != 1 || !l.Entry().NextAttempt.Equal(at) {
		t.Errorf("leased %s, attempts %d, next attempt %v; want %s, 1, %v", l.Entry().ID, l.Entry().Attempts, l.Entry().NextAttempt, e.ID, at)
	}
}

func testOrderByNextAttempt(t *testing.T, h *harness) {
	ids := map[string]int{}
	for range 4 {
		e := commitN(t, h.q, 1)
		ids[e.ID] = len(ids)
	}
	// Retry message i in delays[i] minutes.
	delays := []int{3, 1, 4, 2}
	now := h.clock.Now()
	for range 4 {
		l := lease(t, h.q)
		i := ids[l.Entry().ID]
		if err := l.Retry(patient(t), now.Add(time.Duration(delays[i])*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	noneDue(t, h.q, "before the first retry")
	want := []int{1, 3, 0}
	h.clock.Advance(3 * time.Minute)
	for _, w := range want {
		l := lease(t, h.q)
		if got := ids[l.Entry().ID]; got != w {
			t.Fatalf("leased message %d (next attempt %v), want %d", got, l.Entry().NextAttempt, w)
		}
	}
	noneDue(t, h.q, "before the last retry")
	h.clock.Advance(time.Minute)
	if got := ids[lease(t, h.q).Entry().ID]; got != 2 {
		t.Fatalf("leased message %d, want 2", got)
	}
}

func testLeaseExpires(t *testing.T, h *harness) {
	e := commitN(t, h.q, 3)
	a := lease(t, h.q)
	a.Entry().Attempts = 1
	a.Entry().Rcpts[0].Status = relay.RcptDelivered
	a.Entry().Rcpts[0].Reply = &relay.Reply{Code: 250, Message: "OK"}
	if err := a.Save(patient(t)); err != nil {
		t.Fatalf("Save: %v", err)
	}
	// A change not saved is not seen by the next worker.
	a.Entry().Rcpts[1].Status = relay.RcptBounced
	noneDue(t, h.q, "while the lease holds")

	h.clock.Set(a.Deadline())
	// Expired, though no other worker has the message yet.
	wantLost(t, "Save at the deadline", a.Save(patient(t)))
	b := lease(t, h.q)
	if b.Entry().ID != e.ID {
		t.Fatalf("leased %s, want %s", b.Entry().ID, e.ID)
	}
	want := *e
	want.Attempts = 1
	want.Rcpts = []relay.RcptState{
		{Addr: e.Rcpts[0].Addr, Status: relay.RcptDelivered, Reply: &relay.Reply{Code: 250, Message: "OK"}},
		e.Rcpts[1], e.Rcpts[2],
	}
	sameEntry(t, b.Entry(), &want)
	if got := b.Entry().Pending(); len(got) != 2 || got[0].Addr != e.Rcpts[1].Addr || got[1].Addr != e.Rcpts[2].Addr {
		t.Errorf("Pending after takeover: %+v", got)
	}

	wantLost(t, "Extend after expiry", a.Extend(patient(t), time.Hour))
	wantLost(t, "Save after expiry", a.Save(patient(t)))
	wantLost(t, "Retry after expiry", a.Retry(patient(t), h.clock.Now()))
	wantLost(t, "Done after expiry", a.Done(patient(t)))
	noneDue(t, h.q, "while the new lease holds")
	// The failed calls of the first worker changed nothing.
	b.Entry().Rcpts[1].Status = relay.RcptDelivered
	if err := b.Save(patient(t)); err != nil {
		t.Fatalf("Save by the new holder: %v", err)
	}
	if err := b.Retry(patient(t), h.clock.Now()); err != nil {
		t.Fatalf("Retry by the new holder: %v", err)
	}
	c := lease(t, h.q)
	if got := c.Entry().Pending(); len(got) != 1 || got[0].Addr != e.Rcpts[2].Addr {
		t.Errorf("Pending after the second worker's save: %+v", got)
	}
	if err := c.Done(patient(t)); err != nil {
		t.Fatal(err)
	}
	noneDue(t, h.q, "after Done")
}

func testExtend(t *testing.T, h *harness) {
	commitN(t, h.q, 1)
	l := lease(t, h.q)
	first := l.Deadline()
	leaseTime := first.Sub(h.clock.Now())
	if leaseTime <= 0 {
		t.Fatalf("Deadline %v is not after now %v", first, h.clock.Now())
	}
	h.clock.Advance(leaseTime / 2)
	if err := l.Extend(patient(t), leaseTime); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if want := h.clock.Now().Add(leaseTime); l.Deadline().Before(want) {
		t.Errorf("Deadline after Extend(%v) is %v, want %v", leaseTime, l.Deadline(), want)
	}
	h.clock.Set(first)
	noneDue(t, h.q, "at the first deadline, after Extend")
	if err := l.Save(patient(t)); err != nil {
		t.Errorf("Save after the first deadline, extended: %v", err)
	}
	h.clock.Set(l.Deadline())
	if l2 := lease(t, h.q); l2 == nil {
		t.Fatal("no takeover after the extended deadline")
	}
	wantLost(t, "Save after the extended deadline", l.Save(patient(t)))
}

func testEndedLease(t *testing.T, h *harness) {
	commitN(t, h.q, 1)
	l := lease(t, h.q)
	if err := l.Retry(patient(t), h.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantLost(t, "Save after Retry", l.Save(patient(t)))
	wantLost(t, "Extend after Retry", l.Extend(patient(t), time.Minute))
	wantLost(t, "Retry after Retry", l.Retry(patient(t), h.clock.Now()))
	wantLost(t, "Done after Retry", l.Done(patient(t)))
	noneDue(t, h.q, "after Retry in a minute, and calls on the ended lease")

	h.clock.Advance(time.Minute)
	l = lease(t, h.q)
	if err := l.Done(patient(t)); err != nil {
		t.Fatal(err)
	}
	wantLost(t, "Save after Done", l.Save(patient(t)))
	wantLost(t, "Extend after Done", l.Extend(patient(t), time.Minute))
	wantLost(t, "Retry after Done", l.Retry(patient(t), h.clock.Now()))
	wantLost(t, "Done after Done", l.Done(patient(t)))
	noneDue(t, h.q, "after Done and calls on the ended lease")
}

// leaseAsync leases in a goroutine; the result comes on the channel.
func leaseAsync(ctx context.Context, q relay.Queue) <-chan leaseResult {
	c := make(chan leaseResult, 1)
	go func() {
		l, err := q.Lease(ctx)
		c <- leaseResult{l, err}
	}()
	return c
}

type leaseResult struct {
	l   relay.Lease
	err error
}

func testLeaseWaitsForCommit(t *testing.T, h *harness) {
	c := leaseAsync(patient(t), h.q)
	e := commitN(t, h.q, 1)
	r := <-c
	if r.err != nil {
		t.Fatalf("Lease: %v", r.err)
	}
	if r.l.Entry().ID != e.ID {
		t.Errorf("leased %s, want %s", r.l.Entry().ID, e.ID)
	}
}

func testLeaseWaitsForRetry(t *testing.T, h *harness) {
	e := commitN(t, h.q, 1)
	l := lease(t, h.q)
	c := leaseAsync(patient(t), h.q)
	if err := l.Retry(patient(t), h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r := <-c
	if r.err != nil {
		t.Fatalf("Lease: %v", r.err)
	}
	if r.l.Entry().ID != e.ID {
		t.Errorf("leased %s, want %s", r.l.Entry().ID, e.ID)
	}
}

func testLeaseEndsWithContext(t *testing.T, h *harness) {
	commitN(t, h.q, 1)
	lease(t, h.q)
	ctx, cancel := context.WithCancel(t.Context())
	c := leaseAsync(ctx, h.q)
	cancel()
	if r := <-c; !errors.Is(r.err, context.Canceled) {
		t.Errorf("Lease with a context cancelled while waiting: %v, %v; want context.Canceled", r.l, r.err)
	}
}

func testConcurrentWorkers(t *testing.T, h *harness) {
	const messages, workers = 40, 8
	want := map[string]bool{}
	for range messages {
		want[commitN(t, h.q, 2).ID] = true
	}
	ctx, cancel := context.WithCancel(patient(t))
	defer cancel()
	var (
		mu      sync.Mutex
		held    = map[string]bool{}
		retried = map[string]bool{}
		done    = map[string]int{}
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				l, err := h.q.Lease(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("Lease: %v", err)
					}
					return
				}
				id := l.Entry().ID
				mu.Lock()
				if held[id] {
					t.Errorf("message %s leased by two workers at once", id)
				}
				held[id] = true
				retry := !retried[id] && len(retried)%2 == 0
				retried[id] = true
				mu.Unlock()

				l.Entry().Rcpts[0].Status = relay.RcptDelivered
				if err := l.Save(ctx); err != nil {
					t.Errorf("Save %s: %v", id, err)
				}
				mu.Lock()
				held[id] = false
				mu.Unlock()
				if retry {
					if err := l.Retry(ctx, h.clock.Now()); err != nil {
						t.Errorf("Retry %s: %v", id, err)
					}
					continue
				}
				if err := l.Done(ctx); err != nil {
					t.Errorf("Done %s: %v", id, err)
				}
				mu.Lock()
				done[id]++
				if len(done) == messages {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for id := range want {
		if done[id] != 1 {
			t.Errorf("message %s done %d times", id, done[id])
		}
	}
	noneDue(t, h.q, "after every message is done")
}

func testClose(t *testing.T, h *harness) {
	e := commitN(t, h.q, 2)
	l := lease(t, h.q)
	l.Entry().Rcpts[0].Status = relay.RcptDelivered
	if err := l.Save(patient(t)); err != nil {
		t.Fatal(err)
	}
	h.close(t, h.q)
	if _, err := h.q.Lease(patient(t)); !errors.Is(err, relay.ErrQueueClosed) {
		t.Errorf("Lease after Close: %v, want ErrQueueClosed", err)
	}
	if w, err := h.q.Create(patient(t)); !errors.Is(err, relay.ErrQueueClosed) {
		t.Errorf("Create after Close: %v, want ErrQueueClosed", err)
		if w != nil {
			w.Abort()
		}
	}
	wantLost(t, "Save after Close", l.Save(patient(t)))
	wantLost(t, "Done after Close", l.Done(patient(t)))
	if h.reopen == nil {
		return
	}
	q := h.reopen(t)
	h.clock.Set(l.Deadline())
	l = lease(t, q)
	if l.Entry().ID != e.ID || len(l.Entry().Pending()) != 1 {
		t.Errorf("after Close and reopen: leased %s with %d pending, want %s with 1", l.Entry().ID, len(l.Entry().Pending()), e.ID)
	}
}

func testSaveSurvivesReopen(t *testing.T, h *harness) {
	h.needReopen(t)
	e := commit(t, h.q, fullEntry(), "Subject: hi\r\n\r\nbody\r\n")
	l := lease(t, h.q)
	le := l.Entry()
	le.Attempts = 1
	le.Rcpts[0].Status = relay.RcptDelivered
	le.Rcpts[0].Reply = &relay.Reply{Code: 250, Enhanced: relay.EnhancedCode{2, 6, 0}, Message: "queued"}
	le.Rcpts[0].Host = "mx.example.org:25"
	if err := l.Save(patient(t)); err != nil {
		t.Fatal(err)
	}
	saved := entryJSON(t, le)

	// The first queue is abandoned with its lease, as in a crash.
	q := h.reopen(t)
	h.clock.Set(l.Deadline())
	l2 := lease(t, q)
	if got := entryJSON(t, l2.Entry()); got != saved {
		t.Fatalf("after reopen, entry\n got %s\nwant %s", got, saved)
	}
	if got, want := read(t, l2.Message()), string(e.Header)+"Subject: hi\r\n\r\nbody\r\n"; got != want {
		t.Errorf("after reopen, message %q, want %q", got, want)
	}
	if err := l2.Done(patient(t)); err != nil {
		t.Fatal(err)
	}
	noneDue(t, q, "after Done")
}

func testRetrySurvivesReopen(t *testing.T, h *harness) {
	h.needReopen(t)
	e := commitN(t, h.q, 1)
	l := lease(t, h.q)
	at := h.clock.Now().Add(time.Hour)
	if err := l.Retry(patient(t), at); err != nil {
		t.Fatal(err)
	}
	h.close(t, h.q)
	q := h.reopen(t)
	noneDue(t, q, "after reopen, before the retry")
	h.clock.Set(at)
	l = lease(t, q)
	if l.Entry().ID != e.ID || !l.Entry().NextAttempt.Equal(at) {
		t.Errorf("leased %s due %v, want %s due %v", l.Entry().ID, l.Entry().NextAttempt, e.ID, at)
	}
}

func testDoneSurvivesReopen(t *testing.T, h *harness) {
	h.needReopen(t)
	commitN(t, h.q, 1)
	l := lease(t, h.q)
	if err := l.Done(patient(t)); err != nil {
		t.Fatal(err)
	}
	q := h.reopen(t)
	h.clock.Set(l.Deadline())
	noneDue(t, q, "after Done and reopen")
}

func testAbortSurvivesReopen(t *testing.T, h *harness) {
	h.needReopen(t)
	w, err := h.q.Create(patient(t))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, strings.Repeat("x", 10000))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	// A message never committed is not there either.
	w, err = h.q.Create(patient(t))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "half a message")
	defer w.Abort()
	q := h.reopen(t)
	noneDue(t, q, "after Abort, and a message left uncommitted, and reopen")
}
