package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrStale is the error of Keys.Authenticate and Suppressions.Suppressed
// and List when the instance has been out of step with its bucket for
// longer than its MaxStale (the connection to NATS is lost, or the
// watcher cannot be started again): a temporary error, which a relay
// Server answers 454 (AUTH, RFC 4954 §6) or 451 (RCPT).
var ErrStale = errors.New("natsqueue: the local copy of the bucket is out of date")

// Defaults of the options of Keys and Suppressions.
const (
	// DefaultMaxStale is how long a local copy of a bucket serves after
	// it fell out of step, before its reads fail with ErrStale.
	DefaultMaxStale = 10 * time.Second
	// DefaultRewatch is the wait between two attempts to watch a bucket
	// again after its watcher failed.
	DefaultRewatch = time.Second
)

// kvTable is what a kvMirror keeps: the decoded values of a bucket's keys.
type kvTable interface {
	// put stores the value of key, or returns why it is not valid.
	put(key string, value []byte) error
	// remove forgets key.
	remove(key string)
}

// kvMirror keeps in memory the values of the keys of a bucket that match
// a filter, decoded into a table, in step with the bucket through a KV
// watcher: its first values are the bucket's content, then each change
// follows as it is written. A watcher that ends (its subscription closed)
// or a connection that was lost and is back makes the mirror watch again
// from the start and replace its table, so that a change missed meanwhile
// (a deletion too) is not kept. Reads take a read lock and cost no round
// trip.
type kvMirror[T kvTable] struct {
	kv       jetstream.KeyValue
	nc       *nats.Conn
	filter   string
	newTable func() T
	log      *slog.Logger
	now      func() time.Time
	maxStale time.Duration
	rewatch  time.Duration

	mu    sync.RWMutex
	table T
	rev   uint64 // revision of the last change applied
	// synced: the watcher runs and its first values are in table.
	// staleSince: when synced last turned false.
	synced     bool
	staleSince time.Time
	// changed is closed, and replaced, at each change of table or synced.
	changed chan struct{}
	closed  bool

	stop context.CancelFunc
	done chan struct{}
}

// mirrorOptions are the settings common to Keys and Suppressions.
type mirrorOptions struct {
	log      *slog.Logger
	now      func() time.Time
	maxStale time.Duration
	rewatch  time.Duration
}

// startMirror watches kv's keys of filter, and returns once the mirror
// holds the bucket's content, or ctx ends.
func startMirror[T kvTable](ctx context.Context, kv jetstream.KeyValue, nc *nats.Conn, filter string, newTable func() T, o mirrorOptions) (*kvMirror[T], error) {
	m := &kvMirror[T]{
		kv: kv, nc: nc, filter: filter, newTable: newTable,
		log: o.log, now: o.now, maxStale: o.maxStale, rewatch: o.rewatch,
		table: newTable(), changed: make(chan struct{}), done: make(chan struct{}),
	}
	m.staleSince = m.now()
	// The status listener first: a reconnection after the watch started
	// is seen.
	status := nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	// The watcher lives as long as the mirror, not ctx: its subscription
	// ends when the context it was made with does.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	w, cancelW, err := m.startWatch(runCtx)
	if err != nil {
		stop()
		nc.RemoveStatusListener(status)
		return nil, fmt.Errorf("natsqueue: watching bucket %s: %w", kv.Bucket(), err)
	}
	m.stop = stop
	go m.run(runCtx, w, cancelW, status)
	if err := m.waitFor(ctx, func(_ T, _ uint64, synced bool) bool { return synced }); err != nil {
		m.close()
		return nil, fmt.Errorf("natsqueue: reading bucket %s: %w", kv.Bucket(), err)
	}
	return m, nil
}

// run keeps the mirror in step until ctx ends, watching again whenever a
// watch ends.
func (m *kvMirror[T]) run(ctx context.Context, w jetstream.KeyWatcher, cancelW context.CancelFunc, status chan nats.Status) {
	defer close(m.done)
	defer m.nc.RemoveStatusListener(status)
	for {
		var err error
		if w == nil {
			w, cancelW, err = m.startWatch(ctx)
		}
		if err == nil {
			err = m.watch(ctx, w, status)
			stopWatcher(w)
			cancelW()
			w = nil
		}
		if ctx.Err() != nil {
			return // closed
		}
		m.setStale()
		switch {
		case errors.Is(err, nats.ErrConnectionClosed):
			m.log.Error("natsqueue: the NATS connection is closed; the local copy of the bucket stays as it is", "bucket", m.kv.Bucket(), "max_stale", m.maxStale)
			return
		case errors.Is(err, errReconnected):
			m.log.Info("natsqueue: reconnected to NATS; reading the bucket again", "bucket", m.kv.Bucket())
			continue
		}
		m.log.Error("natsqueue: watching the bucket failed; watching it again", "bucket", m.kv.Bucket(), "err", err, "in", m.rewatch)
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.rewatch):
		}
	}
}

var (
	errReconnected   = errors.New("natsqueue: reconnected")
	errWatcherClosed = errors.New("natsqueue: the watcher's subscription ended")
)

// watch applies the entries of w until it ends, ctx ends or the
// connection changes state.
func (m *kvMirror[T]) watch(ctx context.Context, w jetstream.KeyWatcher, status chan nats.Status) error {
	fresh := m.newTable()
	var rev uint64
	initial := true
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case s := <-status:
			switch s {
			case nats.CONNECTED:
				return errReconnected
			case nats.CLOSED:
				return nats.ErrConnectionClosed
			default:
				// Disconnected: the mirror is out of step until
				// it is connected and has read the bucket again.
				m.setStale()
			}
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				if m.nc.IsClosed() {
					return nats.ErrConnectionClosed
				}
				return errWatcherClosed
			case e == nil && initial:
				// The bucket's content is in: it replaces the table.
				m.mu.Lock()
				m.table, m.rev, m.synced, m.staleSince = fresh, rev, true, time.Time{}
				m.notify()
				m.mu.Unlock()
				m.log.Debug("natsqueue: bucket read", "bucket", m.kv.Bucket(), "revision", rev)
				initial = false
			case e == nil:
			case initial:
				m.apply(fresh, e)
				rev = max(rev, e.Revision())
			default:
				m.mu.Lock()
				m.apply(m.table, e)
				m.rev = max(m.rev, e.Revision())
				m.notify()
				m.mu.Unlock()
			}
		}
	}
}

// watchTimeout bounds the creation of a watcher's consumer, whose request
// would otherwise wait without end for a reply lost with a server.
const watchTimeout = 15 * time.Second

// startWatch starts a watcher of the mirror's keys, whose subscription
// lasts until ctx ends or cancel is called.
func (m *kvMirror[T]) startWatch(ctx context.Context) (w jetstream.KeyWatcher, cancel context.CancelFunc, err error) {
	wctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(watchTimeout, cancel)
	w, err = m.kv.Watch(wctx, m.filter)
	if !timer.Stop() && err == nil {
		// Made as the time ran out: wctx has ended, and so will its
		// subscription.
		stopWatcher(w)
		err = fmt.Errorf("natsqueue: starting the watcher took over %v", watchTimeout)
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return w, cancel, nil
}

// stopWatcher stops w, and drains what it still delivers, so that its
// subscription's handler, which may be blocked on a full channel, ends.
func stopWatcher(w jetstream.KeyWatcher) {
	w.Stop()
	go func() {
		for range w.Updates() {
		}
	}()
}

// apply applies one entry to t. A value that is not valid is logged,
// never shown, and removes what the key held: the writer meant to
// replace it.
func (m *kvMirror[T]) apply(t T, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		t.remove(e.Key())
		return
	}
	if err := t.put(e.Key(), e.Value()); err != nil {
		t.remove(e.Key())
		m.log.Error("natsqueue: a value in the bucket is not valid, and is ignored", "bucket", m.kv.Bucket(), "key", e.Key(), "revision", e.Revision(), "err", err)
	}
}

// notify wakes the waiters. The caller holds mu.
func (m *kvMirror[T]) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// setStale marks the mirror out of step, from now unless it already is.
func (m *kvMirror[T]) setStale() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.synced {
		m.synced, m.staleSince = false, m.now()
		m.notify()
		m.log.Warn("natsqueue: out of step with the bucket", "bucket", m.kv.Bucket(), "serving_for", m.maxStale)
	}
}

// read calls f with the table, under the read lock, unless the mirror has
// been out of step for MaxStale or longer.
func (m *kvMirror[T]) read(f func(T)) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return errMirrorClosed
	}
	if !m.synced {
		if since := m.now().Sub(m.staleSince); since >= m.maxStale {
			return fmt.Errorf("%w: bucket %s, for %s", ErrStale, m.kv.Bucket(), since.Round(time.Millisecond))
		}
	}
	f(m.table)
	return nil
}

// waitFor waits until cond, called under the read lock with the table,
// the revision of its last change and whether it is in step, holds.
func (m *kvMirror[T]) waitFor(ctx context.Context, cond func(t T, rev uint64, synced bool) bool) error {
	for {
		m.mu.RLock()
		ok, changed := cond(m.table, m.rev, m.synced), m.changed
		m.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-m.done:
			return errMirrorClosed
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

var errMirrorClosed = errors.New("natsqueue: closed")

// ownWriteWait bounds how long a write waits to see itself in the copy
// of its own instance, when ctx has no earlier deadline: the write is
// made, and a copy out of step catches up by itself.
const ownWriteWait = 5 * time.Second

// waitOwnWrite waits, within ownWriteWait, until cond holds: a write of
// this instance is in its copy.
func (m *kvMirror[T]) waitOwnWrite(ctx context.Context, cond func(t T, rev uint64, synced bool) bool) {
	ctx, cancel := context.WithTimeout(ctx, ownWriteWait)
	defer cancel()
	m.waitFor(ctx, cond)
}

// close stops the watcher and waits for it.
func (m *kvMirror[T]) close() {
	m.stop()
	<-m.done
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}

// openBucket binds the bucket of cfg, creating it when it does not exist.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket) // another instance was first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsqueue: bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
