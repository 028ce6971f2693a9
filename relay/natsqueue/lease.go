package natsqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
)

// Lease waits for a due message (see relay.Queue). It fetches from the
// consumer; a message that is not due yet on the queue's clock, or that
// another worker's lease still holds, goes back with a negative
// acknowledgement delayed until then (at most MaxDelay). Of the first
// Options.Peek due messages it finds, it hands out the one with the
// earliest NextAttempt.
func (q *Queue) Lease(ctx context.Context) (relay.Lease, error) {
	if q.isClosed() {
		return nil, relay.ErrQueueClosed
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(q.base, cancel)
	defer stop()
	wait := false
	for {
		msgs, err := q.fetch(wctx, wait)
		if err != nil && wctx.Err() == nil {
			return nil, err
		}
		l, seen := q.pick(msgs)
		if l != nil {
			return l, nil
		}
		if q.isClosed() {
			return nil, relay.ErrQueueClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if seen == 0 {
			wait = true
			continue
		}
		// Only messages not due: pause before the next round, as the
		// delays of their negative acknowledgements may be short.
		wait = false
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-wctx.Done():
			t.Stop()
		}
	}
}

// pause is how long Lease waits after a round that found only messages
// not due.
const pause = 20 * time.Millisecond

// fetchWait is how long one pull request waits for a message.
const fetchWait = 5 * time.Second

// fetch pulls messages from the consumer: up to Peek of those available
// now, or, with wait, the first to come.
func (q *Queue) fetch(ctx context.Context, wait bool) ([]jetstream.Msg, error) {
	var (
		batch jetstream.MessageBatch
		err   error
	)
	if wait {
		c, cancel := context.WithTimeout(ctx, fetchWait)
		defer cancel()
		batch, err = q.cons.Fetch(1, jetstream.FetchContext(c))
	} else {
		batch, err = q.cons.FetchNoWait(q.o.Peek)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("natsqueue: fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && len(msgs) == 0 && !errors.Is(err, jetstream.ErrNoMessages) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("natsqueue: fetch: %w", err)
	}
	return msgs, nil
}

// candidate is a fetched message that is due.
type candidate struct {
	m    jetstream.Msg
	id   string
	rec  *record
	rev  uint64
	size int64
	obj  bool
}

// maxScan bounds the messages one round of Lease looks at, and
// maxScanBytes the content it holds while it does: up to 1,000 messages of
// up to a megabyte inline would otherwise be a gigabyte per Lease.
const (
	maxScan      = 1000
	maxScanBytes = 32 << 20
)

// deferred is a fetched message not due, and when to look at it again.
type deferred struct {
	m jetstream.Msg
	d time.Duration
}

// pick hands out the due message of msgs, and of the messages available
// after them, with the earliest NextAttempt. It looks at messages until
// it has Peek due ones, or none is left (or maxScan, or maxScanBytes of
// content held): the messages not due
// are given back only at the end, so that a fetch does not return them
// again while newer messages wait behind them. It returns how many
// messages it looked at.
func (q *Queue) pick(msgs []jetstream.Msg) (relay.Lease, int) {
	now := q.o.Now()
	var (
		due  []*candidate
		back []deferred
		seen int
		held int // octets of the messages in due and back
	)
	for {
		for _, m := range msgs {
			if c, d := q.inspect(m, now); c != nil {
				due = append(due, c)
				held += len(m.Data())
			} else if d >= 0 {
				back = append(back, deferred{m, d})
				held += len(m.Data())
			}
		}
		seen += len(msgs)
		if len(msgs) == 0 || len(due) >= q.o.Peek || seen >= maxScan || held >= q.scanBytes || q.isClosed() {
			break
		}
		msgs, _ = q.fetch(q.base, false)
	}
	slices.SortStableFunc(due, func(a, b *candidate) int {
		return a.rec.Entry.NextAttempt.Compare(b.rec.Entry.NextAttempt)
	})
	var l relay.Lease
	for _, c := range due {
		if l == nil && !q.isClosed() {
			if l = q.claim(c, now); l != nil {
				continue
			}
		}
		q.nak(c.m, 0)
	}
	for _, b := range back {
		q.nak(b.m, b.d)
	}
	return l, seen
}

// inspect reads the record of a fetched message, and returns it when the
// message is due, or else how long until it is. A message without a
// record has been done (its acknowledgement was lost) and is
// acknowledged; one that cannot be read is quarantined; for both, and for
// one given back after an error, the duration is negative.
func (q *Queue) inspect(m jetstream.Msg, now time.Time) (*candidate, time.Duration) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if !validID(id) {
		q.quarantine(m, id, fmt.Errorf("%w: message ID %q", errCorrupt, id))
		return nil, -1
	}
	c := &candidate{m: m, id: id, obj: m.Headers().Get(hdrObject) == "1"}
	size, err := strconv.ParseInt(m.Headers().Get(hdrSize), 10, 64)
	if err != nil || size < 0 || !c.obj && size != int64(len(m.Data())) {
		q.quarantine(m, id, fmt.Errorf("%w: size %q for %d octets", errCorrupt, m.Headers().Get(hdrSize), len(m.Data())))
		return nil, -1
	}
	c.size = size
	kve, err := q.kv.Get(q.base, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		q.o.Logger.Debug("natsqueue: done before", "id", id)
		q.ack(m)
		if c.obj {
			q.deleteObject(id)
		}
		return nil, -1
	case err != nil:
		q.o.Logger.Warn("natsqueue: reading an entry", "id", id, "err", err)
		q.nak(m, time.Second)
		return nil, -1
	}
	if c.rec, err = decodeRecord(id, kve.Value()); err != nil {
		q.quarantine(m, id, err)
		return nil, -1
	}
	c.rev = kve.Revision()
	at := c.rec.Entry.NextAttempt
	if c.rec.Until.After(at) {
		at = c.rec.Until
	}
	if at.After(now) {
		return nil, at.Sub(now)
	}
	return c, 0
}

// claim records the lease of c in the bucket, which fails when another
// worker changed the record since it was read.
func (q *Queue) claim(c *candidate, now time.Time) relay.Lease {
	until := now.Add(q.o.AckWait)
	b, err := encodeRecord(&record{Entry: c.rec.Entry, Until: until})
	if err == nil {
		var rev uint64
		if rev, err = q.kv.Update(q.base, c.id, b, c.rev); err == nil {
			q.o.Logger.Debug("natsqueue: lease", "id", c.id, "attempts", c.rec.Entry.Attempts)
			return &lease{q: q, m: c.m, id: c.id, e: c.rec.Entry, rev: rev, deadline: until,
				msg: &content{q: q, id: c.id, header: c.rec.Entry.Header, data: c.m.Data(), size: c.size, obj: c.obj}}
		}
	}
	q.o.Logger.Debug("natsqueue: lease taken", "id", c.id, "err", err)
	q.nak(c.m, time.Second)
	return nil
}

// quarantine terminates a message that cannot be read: JetStream will
// not deliver it again. Its entry and content stay for an operator.
// Terminating deletes the stream message (the stream's retention is the
// work queue's), the only copy of a content kept inline: that content
// first goes to the object store under the ID, and a message whose
// content cannot be kept there is given back, to be looked at again.
func (q *Queue) quarantine(m jetstream.Msg, id string, why error) {
	ctx, cancel := context.WithTimeout(q.base, fetchWait)
	defer cancel()
	if validID(id) && m.Headers().Get(hdrObject) != "1" {
		if _, err := q.obs.PutBytes(ctx, id, m.Data()); err != nil {
			q.o.Logger.Error("natsqueue: cannot keep the content of a message to quarantine", "id", id, "err", why, "put_err", err)
			q.nak(m, quarantineRetry)
			return
		}
	}
	q.o.Logger.Error("natsqueue: quarantined", "id", id, "err", why)
	if err := q.ackReply(ctx, m, "+TERM corrupt"); err != nil {
		q.o.Logger.Warn("natsqueue: terminating", "id", id, "err", err)
	}
}

// quarantineRetry is when a message whose content could not be kept is
// looked at again.
const quarantineRetry = time.Minute

// nak gives m back to the consumer, to be delivered again in d (at most
// MaxDelay). It waits for the server's answer, so that a Lease after it
// finds the message.
func (q *Queue) nak(m jetstream.Msg, d time.Duration) {
	d = min(d, q.o.MaxDelay)
	body := "-NAK"
	if d > 0 {
		body = fmt.Sprintf(`-NAK {"delay": %d}`, d.Nanoseconds())
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.base), fetchWait)
	defer cancel()
	if err := q.ackReply(ctx, m, body); err != nil {
		q.o.Logger.Warn("natsqueue: negative acknowledgement", "err", err)
	}
}

// ack acknowledges m, waiting for the server's answer.
func (q *Queue) ack(m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.base), fetchWait)
	defer cancel()
	if err := m.DoubleAck(ctx); err != nil {
		q.o.Logger.Warn("natsqueue: acknowledgement", "err", err)
	}
}

// ackReply sends an acknowledgement of any kind and waits for the
// server's answer (the jetstream package waits only for a positive one).
func (q *Queue) ackReply(ctx context.Context, m jetstream.Msg, body string) error {
	if m.Reply() == "" {
		return errors.New("natsqueue: message without a reply subject")
	}
	_, err := q.js.Conn().RequestWithContext(ctx, m.Reply(), []byte(body))
	return err
}

func (q *Queue) deleteObject(id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.base), fetchWait)
	defer cancel()
	if err := q.obs.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		q.o.Logger.Warn("natsqueue: deleting content", "id", id, "err", err)
	}
}

// lease is a message leased to one worker; its record in the bucket has
// the revision rev, which every store checks.
type lease struct {
	q   *Queue
	m   jetstream.Msg
	id  string
	e   *relay.Entry
	msg *content

	mu       sync.Mutex
	rev      uint64
	deadline time.Time
	ended    bool
}

func (l *lease) Entry() *relay.Entry    { return l.e }
func (l *lease) Message() relay.Message { return l.msg }

func (l *lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// live checks that the lease holds. l.mu is held.
func (l *lease) live() error {
	if l.ended || l.q.isClosed() {
		return relay.ErrLeaseLost
	}
	if !l.q.o.Now().Before(l.deadline) {
		l.ended = true
		return relay.ErrLeaseLost
	}
	return nil
}

// store writes the entry, held until until, if the record is still the
// one this lease wrote last. l.mu is held.
func (l *lease) store(ctx context.Context, until time.Time) error {
	b, err := encodeRecord(&record{Entry: l.e, Until: until})
	if err != nil {
		return err
	}
	rev, err := l.q.kv.Update(ctx, l.id, b, l.rev)
	switch {
	case lostRevision(err):
		l.ended = true
		return relay.ErrLeaseLost
	case err != nil:
		return fmt.Errorf("natsqueue: storing the entry: %w", err)
	}
	l.rev = rev
	return nil
}

// Extend records the new deadline and resets the consumer's ack wait.
func (l *lease) Extend(ctx context.Context, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.live(); err != nil {
		return err
	}
	until := l.q.o.Now().Add(d)
	if err := l.store(ctx, until); err != nil {
		return err
	}
	l.deadline = until
	// The acknowledgement is a plain request, which waits for ctx alone
	// (the Deliverer's has no deadline): bound it, as nak and ack are.
	actx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	if err := l.q.ackReply(actx, l.m, "+WPI"); err != nil {
		return fmt.Errorf("natsqueue: extending: %w", err)
	}
	return nil
}

func (l *lease) Save(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.live(); err != nil {
		return err
	}
	return l.store(ctx, l.deadline)
}

// Retry stores the entry, released, and gives the message back to the
// consumer with a delay until at (at most MaxDelay).
func (l *lease) Retry(ctx context.Context, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.live(); err != nil {
		return err
	}
	l.e.NextAttempt = at
	if err := l.store(ctx, time.Time{}); err != nil {
		return err
	}
	l.ended = true
	l.q.nak(l.m, at.Sub(l.q.o.Now()))
	l.q.o.Logger.Debug("natsqueue: retry", "id", l.id, "at", at)
	return nil
}

// Done purges the record (if its revision is still the one this lease
// wrote), leaving a marker that JetStream removes after markerTTL, then acknowledges the message and deletes a large content.
// A lost acknowledgement brings the message back without a record, and it
// is then dropped.
func (l *lease) Done(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.live(); err != nil {
		return err
	}
	err := l.q.kv.Purge(ctx, l.id, jetstream.LastRevision(l.rev), jetstream.PurgeTTL(markerTTL))
	switch {
	case lostRevision(err):
		l.ended = true
		return relay.ErrLeaseLost
	case err != nil:
		return fmt.Errorf("natsqueue: deleting the entry: %w", err)
	}
	l.ended = true
	l.q.ack(l.m)
	if l.msg.obj {
		l.q.deleteObject(l.id)
	}
	l.q.o.Logger.Debug("natsqueue: done", "id", l.id)
	return nil
}

// lostRevision reports whether err is the refusal of a write whose
// expected revision is no longer the key's: another worker wrote since.
func lostRevision(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// markerTTL is how long the bucket keeps the marker of a purged record.
// Nothing depends on it: a message that comes back without a record, marker
// or not, is dropped.
const markerTTL = time.Minute

// content is a leased message's content: inline in the stream message,
// or in the object store.
type content struct {
	q      *Queue
	id     string
	header []byte
	data   []byte
	size   int64
	obj    bool
}

func (c *content) Size() int64 { return int64(len(c.header)) + c.size }

func (c *content) Open() (io.ReadCloser, error) {
	if !c.obj {
		return io.NopCloser(io.MultiReader(bytes.NewReader(c.header), bytes.NewReader(c.data))), nil
	}
	// The object was stored before the message was published, but the
	// object store's reads may be answered by a replica that has not got
	// it yet: look again a few times before failing the attempt.
	var (
		r   jetstream.ObjectResult
		err error
	)
	for i := range 4 {
		if r, err = c.q.obs.Get(c.q.base, c.id); !errors.Is(err, jetstream.ErrObjectNotFound) {
			break
		}
		t := time.NewTimer(time.Duration(i+1) * 100 * time.Millisecond)
		select {
		case <-t.C:
		case <-c.q.base.Done():
			t.Stop()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsqueue: content of %s: %w", c.id, err)
	}
	return &objReader{Reader: io.MultiReader(bytes.NewReader(c.header), r), c: r}, nil
}

type objReader struct {
	io.Reader
	c io.Closer
}

func (r *objReader) Close() error { return r.c.Close() }
