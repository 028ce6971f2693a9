package natsqueue

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
)

// Options configures a Queue. The zero value, or nil, gives the defaults.
type Options struct {
	// Prefix names the JetStream assets of the queue: the stream
	// Prefix+"_QUEUE" on the subject Prefix+".queue", its consumer
	// Prefix+"_DELIVER", the key-value bucket Prefix+"_ENTRIES" and the
	// object store Prefix+"_CONTENT". Every relay of one fleet uses the
	// same. Default "RELAY".
	Prefix string
	// Replicas is the number of copies JetStream keeps of each message
	// and entry: 1 on a single server, 3 in a cluster of three or more
	// (a write is acknowledged once a majority has it). Default 1.
	Replicas int
	// AckWait is the lease time: the consumer's ack wait, after which a
	// message a worker neither acknowledged nor extended goes to another
	// worker. Default 5 minutes.
	AckWait time.Duration
	// MaxDelay is the longest a message that is not due yet is held back
	// by a negative acknowledgement before Lease looks at it again; a
	// message due sooner comes back when it is due. Each look costs a
	// fetch and a read of the entry per deferred message. Default 15
	// minutes. A
	// negative value holds nothing back (for tests whose clock is not the
	// real one: Lease then pauses a little between rounds instead).
	MaxDelay time.Duration
	// Peek is how many due messages Lease takes at once to hand out the
	// one with the earliest NextAttempt, the others going back to the
	// consumer at once. JetStream redelivers a held-back message when its
	// delay runs out, which on the real clock is already NextAttempt
	// order, so 1 suffices in production; more orders messages that
	// became due together, at the cost of a negative acknowledgement for
	// each one not taken. Default 1.
	Peek int
	// MaxInline is the largest content stored in the stream message
	// itself; a larger one goes to the object store in chunks. Default:
	// the server's max_payload less 8 KiB for the headers.
	MaxInline int64
	// Now is the queue's clock (see relay.Queue). Default time.Now.
	Now func() time.Time
	// Logger receives a debug record per operation and an error record
	// for each message quarantined. Default: discard.
	Logger *slog.Logger
}

// Queue is a relay.Queue on NATS JetStream (see the package
// documentation). Its methods are safe for concurrent use.
type Queue struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	cons    jetstream.Consumer
	kv      jetstream.KeyValue
	obs     jetstream.ObjectStore
	subject string
	o       Options
	// scanBytes is maxScanBytes, or a test's smaller bound.
	scanBytes int

	base   context.Context // ends at Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
}

var _ relay.Queue = (*Queue)(nil)

// Header fields of the stream messages.
const (
	hdrSize   = "Relay-Size"   // the content's size in octets
	hdrObject = "Relay-Object" // "1": the content is in the object store
)

// New opens the queue on js, creating or updating its stream, consumer,
// bucket and object store (idempotently: every relay of a fleet calls
// New with the same options).
func New(ctx context.Context, js jetstream.JetStream, opts *Options) (*Queue, error) {
	if js == nil {
		return nil, errors.New("natsqueue: no JetStream")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "RELAY"
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.AckWait == 0 {
		o.AckWait = 5 * time.Minute
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 15 * time.Minute
	}
	if o.Peek == 0 {
		o.Peek = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxInline == 0 {
		o.MaxInline = js.Conn().MaxPayload() - 8<<10
	}
	switch {
	case o.Replicas < 1 || o.Replicas > 5:
		return nil, fmt.Errorf("natsqueue: %d replicas, want 1 to 5", o.Replicas)
	case o.AckWait < 0 || o.Peek < 0 || o.MaxInline <= 0:
		return nil, errors.New("natsqueue: negative AckWait, Peek or MaxInline")
	}
	q := &Queue{js: js, subject: o.Prefix + ".queue", o: o, scanBytes: maxScanBytes}
	var err error
	q.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        o.Prefix + "_QUEUE",
		Description: "relay queue: one message per queued mail, removed when it is done",
		Subjects:    []string{q.subject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("natsqueue: stream: %w", err)
	}
	q.cons, err = q.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       o.Prefix + "_DELIVER",
		Description:   "relay delivery workers, shared by every relay",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		Replicas:      o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("natsqueue: consumer: %w", err)
	}
	// The bucket's stream is made here rather than by
	// CreateOrUpdateKeyValue, for one difference: no direct gets. A
	// direct get may be answered by any replica, one that has not yet
	// got the entry just committed, or a Save: Lease would then take a
	// new message for one already done, or a live lease for none. A get
	// through the stream's API is answered by its leader, which has
	// every write acknowledged.
	bucket := o.Prefix + "_ENTRIES"
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       "relay queue entries: recipient states and leases",
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1, // the bucket's history: the entry only
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        2 * time.Minute,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       false,
		// Done purges an entry with a marker that expires.
		AllowMsgTTL:            true,
		SubjectDeleteMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("natsqueue: bucket: %w", err)
	}
	if q.kv, err = js.KeyValue(ctx, bucket); err != nil {
		return nil, fmt.Errorf("natsqueue: bucket: %w", err)
	}
	q.obs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      o.Prefix + "_CONTENT",
		Description: "relay queue: contents too large for one stream message",
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("natsqueue: object store: %w", err)
	}
	q.base, q.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return q, nil
}

// Close stops the queue (see relay.Queue). The leases held end without
// an acknowledgement: their messages return to the consumer when the ack
// wait has run out. It does not close the NATS connection.
func (q *Queue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cancel()
	return nil
}

func (q *Queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Create starts a message. The content is kept in memory up to
// MaxInline, beyond which it streams to the object store.
func (q *Queue) Create(ctx context.Context) (relay.QueueWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.isClosed() {
		return nil, relay.ErrQueueClosed
	}
	return &writer{q: q, id: rand.Text()}, nil
}

var errWriterDone = errors.New("natsqueue: message already committed or aborted")

// writer takes a message's content.
type writer struct {
	q      *Queue
	id     string
	buf    bytes.Buffer
	n      int64
	pw     *io.PipeWriter // to the object store, once the content is large
	put    chan error     // the object store's result, sent once: see putResult
	putErr error          // that result, once received
	putEnd bool           // putErr holds it
	err    error
	done   bool
	stored bool // the entry is in the bucket
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.pw == nil && int64(w.buf.Len()+len(p)) > w.q.o.MaxInline {
		w.startObject()
	}
	var n int
	if w.pw == nil {
		n, _ = w.buf.Write(p)
	} else {
		var err error
		if n, err = w.pw.Write(p); err != nil {
			w.err = fmt.Errorf("natsqueue: object store: %w", err)
		}
	}
	w.n += int64(n)
	return n, w.err
}

// startObject moves the content to the object store, streamed.
func (w *writer) startObject() {
	pr, pw := io.Pipe()
	w.pw, w.put = pw, make(chan error, 1)
	go func() {
		_, err := w.q.obs.Put(w.q.base, jetstream.ObjectMeta{Name: w.id}, pr)
		pr.CloseWithError(err)
		w.put <- err
	}()
	if _, err := pw.Write(w.buf.Bytes()); err != nil {
		w.err = fmt.Errorf("natsqueue: object store: %w", err)
	}
	w.buf = bytes.Buffer{}
}

// putResult waits for the result of the object store's Put, which is
// sent once: a Commit that fails after the object was stored calls Abort,
// which asks for it again to delete the object.
func (w *writer) putResult() error {
	if !w.putEnd {
		w.putErr, w.putEnd = <-w.put, true
	}
	return w.putErr
}

var errAborted = errors.New("natsqueue: message aborted")

// Abort drops the content, and the object of a large one.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.buf = bytes.Buffer{}
	if w.pw != nil {
		w.pw.CloseWithError(errAborted)
		if err := w.putResult(); err == nil {
			// Written in full before the abort: delete it.
			if err := w.q.obs.Delete(w.q.base, w.id); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return fmt.Errorf("natsqueue: object store: %w", err)
			}
		}
	}
	return nil
}

// Commit stores the content (the object of a large one first), then the
// entry in the bucket, then the message on the stream, each acknowledged
// by JetStream (by a majority of the replicas). The message ID is the
// queue ID, so a publish retried after a lost acknowledgement is not
// stored twice.
func (w *writer) Commit(ctx context.Context, e *relay.Entry) error {
	if w.done {
		return errWriterDone
	}
	if err := w.commit(ctx, e); err != nil {
		e.ID = ""
		w.Abort()
		if w.stored {
			// Best effort: an entry without a stream message is never
			// leased, only kept.
			w.q.kv.Purge(context.WithoutCancel(ctx), w.id, jetstream.PurgeTTL(markerTTL))
		}
		return err
	}
	w.done = true
	w.buf = bytes.Buffer{}
	return nil
}

func (w *writer) commit(ctx context.Context, e *relay.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if err := e.Prepare(); err != nil {
		return err
	}
	if w.q.isClosed() {
		return relay.ErrQueueClosed
	}
	q := w.q
	msg := nats.NewMsg(q.subject)
	msg.Header.Set(hdrSize, strconv.FormatInt(w.n, 10))
	if w.pw != nil {
		w.pw.Close()
		if err := w.putResult(); err != nil {
			w.pw = nil // the writer is gone
			return fmt.Errorf("natsqueue: object store: %w", err)
		}
		msg.Header.Set(hdrObject, "1")
	} else {
		msg.Data = w.buf.Bytes()
	}
	now := q.o.Now()
	e.ID, e.Created, e.NextAttempt = w.id, now, now
	rec, err := encodeRecord(&record{Entry: e})
	if err != nil {
		return err
	}
	if _, err := retry(ctx, func() (uint64, error) { return q.kv.Put(ctx, w.id, rec) }); err != nil {
		return fmt.Errorf("natsqueue: entry: %w", err)
	}
	w.stored = true
	msg.Header.Set(jetstream.MsgIDHeader, w.id)
	if _, err := retry(ctx, func() (*jetstream.PubAck, error) { return q.js.PublishMsg(ctx, msg) }); err != nil {
		return fmt.Errorf("natsqueue: publish: %w", err)
	}
	q.o.Logger.Debug("natsqueue: commit", "id", w.id, "size", w.n, "rcpts", len(e.Rcpts), "object", w.pw != nil)
	return nil
}

// retry calls f until it succeeds, up to three times while its error is
// one a publish retried with the same message ID may cure (no answer: a
// server restarting, a leader being elected).
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := range 3 {
		if v, err = f(); err == nil || !transient(err) || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(time.Duration(i+1) * 250 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return v, err
		}
	}
	return v, err
}

func transient(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}
