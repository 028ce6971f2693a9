package relay

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultLeaseTime is how long a lease of a Spool lasts unless extended.
const DefaultLeaseTime = 5 * time.Minute

// Spool is the durable on-disk Queue, one directory on a local file
// system, for one process at a time.
//
// Each message is one file named by its ID, ID.msg: a header region of
// spoolHeaderSize octets, then the content as written to the
// QueueWriter. The header region is a hole until Commit writes the
// commit record into it: a magic string, the content's length and CRC-32C,
// and the Entry as JSON, with a CRC-32C of the record. Commit then syncs
// the file and the directory, so that once it returns the message and its
// name survive a crash: one file created and one sync of it per message.
// A content file whose header region holds no commit record is a message
// not committed (or done), removed when a Spool next opens the directory;
// one whose record or content fails its check is quarantined (see below),
// so that a crash during the syncs, before the 250, never delivers a
// message cut short. An entry too large for the header region is written
// as ID.json instead (the record then says so), the way Save and Retry
// replace the entry: a temporary file, synced, renamed to ID.json, and the
// directory synced; ID.json, when present, is the entry. Done removes
// ID.json, then ID.msg, without a sync (see Lease.Done).
//
// The directory syncs are shared among the operations under way (group
// commit): an operation whose rename or removal comes while a directory
// sync is running waits for the next one, which then covers every
// operation that came meanwhile, so that N sessions committing at once
// take about two directory syncs rather than N, and none returns before
// a sync that began after its change. The files' own syncs are not
// shared. Once a directory sync has failed, every operation that needs
// one fails: the directory can no longer be trusted to hold the names
// written before.
//
// Leases are held in memory, with an expiry: a lease that is not extended
// in time is lost, and its message is leased again with the entry last
// saved. A Spool opened on the directory after a crash or a Close
// leases every message again when its entry's NextAttempt comes.
// Leftover temporary files are removed at open; an entry that cannot be
// read, or whose content is missing, is moved with its content to the
// subdirectory "quarantine", reported to the Logger at error level, and
// left there for an operator, never deleted.
//
// Lease waits on a timer set to the earliest NextAttempt (or lease
// expiry), and is woken early by Commit and Retry: it does not poll.
//
// A Spool is safe for concurrent use.
type Spool struct {
	dir       string
	d         *os.File // the directory, for its syncs
	syncer    *dirSyncer
	fsync     func(*os.File) error
	syncFS    bool // syncer syncs the file system: no fsync of a new file
	now       func() time.Time
	leaseTime time.Duration
	log       *slog.Logger

	mu      sync.Mutex
	msgs    map[string]*spooled // every committed message
	ready   spoolHeap           // the messages no worker holds, by NextAttempt
	leased  map[*spooled]bool   // the messages held, or set aside until expires
	changed chan struct{}       // closed when a message may have become due
	seq     uint64
	closed  bool
	ops     sync.WaitGroup // file operations under way, for Close
}

// SpoolOptions are the optional settings of a Spool. nil means every
// default.
type SpoolOptions struct {
	// LeaseTime is how long a lease lasts unless extended. Default
	// DefaultLeaseTime.
	LeaseTime time.Duration
	// Now is the clock: when messages are created and due, when leases
	// expire. Default time.Now.
	Now func() time.Time
	// Logger gets one debug record per operation, and an error record for
	// each entry quarantined. Default: none.
	Logger *slog.Logger

	// SyncFS makes the syncs of a new message's commit one syncfs(2) of
	// the spool's file system, shared by every commit under way (group
	// commit), in place of an fsync of its file and one of the directory.
	// It is as durable, and far cheaper when many sessions commit at once
	// (BENCHMARKS.md: the relay against Postfix), but it writes out every
	// file with changes on the whole file system: give the spool a file
	// system of its own. Save and Retry still sync their entry file before
	// renaming it. Linux only, from 5.8 (before it syncfs did not report
	// write-back errors): NewSpool fails elsewhere. Default false.
	SyncFS bool

	noGroup bool                   // sync the directory once per change, for the benchmark
	fsync   func(f *os.File) error // (*os.File).Sync, or a test's hook
	syncfs  func(f *os.File) error // syncfs of f's file system, or a test's hook
}

// spooled is what a Spool keeps in memory of a message.
type spooled struct {
	id      string
	next    time.Time // the entry's NextAttempt
	created time.Time // the entry's Created
	seq     uint64    // order of commits and retries, among equal next
	index   int       // place in Spool.ready; -1 when leased

	holder  *spoolLease // the lease held, nil when none
	expires time.Time   // when holder's lease (or the set-aside) ends

	// fmu orders the file operations on the message: a worker's Save,
	// Retry or Done, begun while its lease held, ends before the next
	// holder reads the entry.
	fmu sync.Mutex
	// json says that the entry is in ID.json rather than in the header
	// region of ID.msg; dataOff is where the content starts in ID.msg
	// (0 in a spool written by the format before the header region).
	// Both under fmu.
	json    bool
	dataOff int64
}

// NewSpool opens the spool in dir, creating the directory when it does
// not exist, and takes up the messages it holds (see Spool).
func NewSpool(dir string, opts *SpoolOptions) (*Spool, error) {
	var o SpoolOptions
	if opts != nil {
		o = *opts
	}
	if o.LeaseTime < 0 {
		return nil, fmt.Errorf("relay: NewSpool: negative LeaseTime %v", o.LeaseTime)
	}
	if o.LeaseTime == 0 {
		o.LeaseTime = DefaultLeaseTime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.fsync == nil {
		o.fsync = (*os.File).Sync
	}
	dirSync := o.fsync
	if o.SyncFS {
		if o.syncfs == nil {
			f, err := syncFS()
			if err != nil {
				return nil, fmt.Errorf("relay: NewSpool: SyncFS: %w", err)
			}
			o.syncfs = f
		}
		dirSync = o.syncfs
	}
	if err := os.MkdirAll(filepath.Join(dir, quarantineDir), 0o700); err != nil {
		return nil, fmt.Errorf("relay: NewSpool: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("relay: NewSpool: %w", err)
	}
	s := &Spool{
		dir:       dir,
		d:         d,
		syncer:    newDirSyncer(d, dirSync, o.noGroup),
		fsync:     o.fsync,
		syncFS:    o.SyncFS,
		now:       o.Now,
		leaseTime: o.LeaseTime,
		log:       o.Logger,
		msgs:      make(map[string]*spooled),
		leased:    make(map[*spooled]bool),
		changed:   make(chan struct{}),
	}
	if err := s.load(); err != nil {
		d.Close()
		return nil, fmt.Errorf("relay: NewSpool: %w", err)
	}
	return s, nil
}

// Len returns the number of messages in the spool, leased or not.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Stats returns the number of messages in the spool, leased or not, and
// when the oldest of them was accepted (zero when there is none): the
// queue depth and age a monitor watches.
func (s *Spool) Stats() (n int, oldest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if oldest.IsZero() || m.created.Before(oldest) {
			oldest = m.created
		}
	}
	return len(s.msgs), oldest
}

// Close stops the spool: Create and Lease return ErrQueueClosed, and
// leases held are lost. It waits for the file operations under way, and
// writes nothing.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.changed)
	s.mu.Unlock()
	s.ops.Wait()
	return s.d.Close()
}

// begin counts a file operation for Close, or fails once the spool is
// closed.
func (s *Spool) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrQueueClosed
	}
	s.ops.Add(1)
	return nil
}

// signal wakes the Leases waiting. s.mu is held.
func (s *Spool) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Create starts a message in a new content file.
func (s *Spool) Create(ctx context.Context) (QueueWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.ops.Done()
	id := rand.Text()
	f, err := os.OpenFile(s.path(id, contentExt), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	// The content goes after the header region, which stays a hole
	// until Commit writes the commit record.
	if _, err := f.Seek(spoolHeaderSize, io.SeekStart); err != nil {
		f.Close()
		os.Remove(s.path(id, contentExt))
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	return &spoolWriter{s: s, id: id, f: f, bw: bufio.NewWriterSize(f, 32<<10)}, nil
}

// spoolWriter writes a message's content to its file.
type spoolWriter struct {
	s    *Spool
	id   string
	f    *os.File
	bw   *bufio.Writer
	n    int64
	crc  uint32 // CRC-32C of the content
	err  error  // the first write error
	done bool   // committed or aborted
}

var errWriterDone = errors.New("relay: spool: message already committed or aborted")

func (w *spoolWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.bw.Write(p)
	w.n += int64(n)
	w.crc = crc32.Update(w.crc, castagnoli, p[:n])
	if err != nil {
		w.err = fmt.Errorf("relay: spool: %w", err)
	}
	return n, w.err
}

// Abort removes the content file.
func (w *spoolWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.s.path(w.id, contentExt)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("relay: spool: %w", err)
	}
	return nil
}

// Commit syncs the content, writes the entry and syncs the directory.
func (w *spoolWriter) Commit(ctx context.Context, e *Entry) error {
	if w.done {
		return errWriterDone
	}
	if err := w.commit(ctx, e); err != nil {
		e.ID = ""
		w.Abort()
		os.Remove(w.s.path(w.id, entryExt))
		return err
	}
	w.done = true
	return nil
}

func (w *spoolWriter) commit(ctx context.Context, e *Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if err := e.Prepare(); err != nil {
		return err
	}
	s := w.s
	if err := s.begin(); err != nil {
		return err
	}
	defer s.ops.Done()
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("relay: spool: %w", err)
	}
	now := s.now()
	e.ID, e.Created, e.NextAttempt = w.id, now, now
	inJSON, err := s.commitFiles(w.f, e, w.n, w.crc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	m := &spooled{id: e.ID, next: e.NextAttempt, created: e.Created, json: inJSON, dataOff: spoolHeaderSize}
	s.msgs[m.id] = m
	s.push(m)
	s.signal()
	s.mu.Unlock()
	s.log.Debug("relay: spool commit", "id", e.ID, "size", w.n, "rcpts", len(e.Rcpts))
	return nil
}

// push puts m among the messages ready to lease. s.mu is held.
func (s *Spool) push(m *spooled) {
	s.seq++
	m.seq = s.seq
	heap.Push(&s.ready, m)
}

// Lease returns the due message with the earliest NextAttempt, waiting for
// one (see Queue).
func (s *Spool) Lease(ctx context.Context) (Lease, error) {
	for {
		m, wait, changed, err := s.take()
		if err != nil {
			return nil, err
		}
		if m != nil {
			l, err := s.open(m)
			if err == nil {
				return l, nil
			}
			if errors.Is(err, errNotSpooled) {
				continue
			}
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var timer *time.Timer
		var fired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fired = timer.C
		}
		select {
		case <-changed:
		case <-fired:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// take leases the due message with the earliest NextAttempt, or says how
// long until one may be due (0: no message at all) and returns the
// channel closed when that may change sooner.
func (s *Spool) take() (m *spooled, wait time.Duration, changed <-chan struct{}, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, nil, ErrQueueClosed
	}
	now := s.now()
	var soonest time.Time
	for m := range s.leased {
		if !now.Before(m.expires) {
			m.holder = nil
			delete(s.leased, m)
			s.push(m)
		} else if soonest.IsZero() || m.expires.Before(soonest) {
			soonest = m.expires
		}
	}
	if len(s.ready) > 0 {
		m := s.ready[0]
		if !now.Before(m.next) {
			heap.Pop(&s.ready)
			m.expires = now.Add(s.leaseTime)
			s.leased[m] = true
			s.ops.Add(1) // until open
			return m, 0, nil, nil
		}
		if soonest.IsZero() || m.next.Before(soonest) {
			soonest = m.next
		}
	}
	if !soonest.IsZero() {
		wait = max(soonest.Sub(now), time.Nanosecond)
	}
	return nil, wait, s.changed, nil
}

// errNotSpooled says that a message taken to lease has gone: a worker
// whose lease had run out removed it (Done), or it was quarantined.
var errNotSpooled = errors.New("relay: spool: message gone")

// open reads the entry of m, which take has set aside, and makes it the
// lease of the caller.
func (s *Spool) open(m *spooled) (*spoolLease, error) {
	defer s.ops.Done()
	m.fmu.Lock()
	defer m.fmu.Unlock()
	e, size, err := s.readEntry(m.id, m.json, m.dataOff)
	if errors.Is(err, errCorrupt) {
		s.quarantine(m.id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, errCorrupt):
		s.drop(m)
		return nil, errNotSpooled
	case err != nil:
		// Leave the message set aside until its lease time has passed.
		return nil, err
	case s.closed:
		return nil, ErrQueueClosed
	}
	l := &spoolLease{
		s:        s,
		m:        m,
		e:        e,
		msg:      spoolMessage{header: e.Header, path: s.path(m.id, contentExt), off: m.dataOff, size: size},
		deadline: m.expires,
	}
	m.holder = l
	s.log.Debug("relay: spool lease", "id", m.id, "attempts", e.Attempts)
	return l, nil
}

// drop forgets m. s.mu is held.
func (s *Spool) drop(m *spooled) {
	if s.msgs[m.id] == m {
		delete(s.msgs, m.id)
	}
	delete(s.leased, m)
	if m.index >= 0 {
		heap.Remove(&s.ready, m.index)
	}
	m.holder = nil
}

// spoolLease is a message of a Spool leased to one worker.
type spoolLease struct {
	s        *Spool
	m        *spooled
	e        *Entry
	msg      spoolMessage
	deadline time.Time // under s.mu
}

func (l *spoolLease) Entry() *Entry    { return l.e }
func (l *spoolLease) Message() Message { return l.msg }
func (l *spoolLease) Deadline() time.Time {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.deadline
}

// held reports whether the lease still holds: ErrLeaseLost if not. s.mu is
// held.
func (l *spoolLease) held() error {
	if l.s.closed || l.m.holder != l || !l.s.now().Before(l.m.expires) {
		return ErrLeaseLost
	}
	return nil
}

func (l *spoolLease) Extend(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("relay: spool: Extend by %v", d)
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if err := l.held(); err != nil {
		return err
	}
	l.m.expires = l.s.now().Add(d)
	l.deadline = l.m.expires
	return nil
}

// update runs op on the message's files while the lease holds.
func (l *spoolLease) update(ctx context.Context, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.m.fmu.Lock()
	defer l.m.fmu.Unlock()
	l.s.mu.Lock()
	err := l.held()
	if err == nil {
		l.s.ops.Add(1)
	}
	l.s.mu.Unlock()
	if err != nil {
		return err
	}
	defer l.s.ops.Done()
	return op()
}

func (l *spoolLease) Save(ctx context.Context) error {
	err := l.update(ctx, func() error { return l.s.writeEntry(l.m, l.e) })
	if err == nil {
		l.s.log.Debug("relay: spool save", "id", l.m.id)
	}
	return err
}

func (l *spoolLease) Retry(ctx context.Context, at time.Time) error {
	err := l.update(ctx, func() error {
		l.e.NextAttempt = at
		return l.s.writeEntry(l.m, l.e)
	})
	if err != nil {
		return err
	}
	s := l.s
	s.mu.Lock()
	if l.m.holder == l {
		l.m.holder = nil
		delete(s.leased, l.m)
		l.m.next = at
		s.push(l.m)
		s.signal()
	}
	s.mu.Unlock()
	s.log.Debug("relay: spool retry", "id", l.m.id, "at", at)
	return nil
}

func (l *spoolLease) Done(ctx context.Context) error {
	s := l.s
	err := l.update(ctx, func() error { return s.remove(l.m) })
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.drop(l.m)
	s.mu.Unlock()
	s.log.Debug("relay: spool done", "id", l.m.id)
	return nil
}

// spoolMessage is the content of a leased message: the entry's Header,
// then the size octets of the content file from off.
type spoolMessage struct {
	header []byte
	path   string
	off    int64
	size   int64
}

func (m spoolMessage) Open() (io.ReadCloser, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	content := io.NewSectionReader(f, m.off, m.size)
	if len(m.header) == 0 {
		return multiReadCloser{content, f}, nil
	}
	return multiReadCloser{io.MultiReader(bytes.NewReader(m.header), content), f}, nil
}

func (m spoolMessage) Size() int64 { return int64(len(m.header)) + m.size }

// spoolHeap orders messages by NextAttempt, then by when they were
// committed or retried.
type spoolHeap []*spooled

func (h spoolHeap) Len() int { return len(h) }
func (h spoolHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].seq < h[j].seq
}
func (h spoolHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *spoolHeap) Push(x any) {
	m := x.(*spooled)
	m.index = len(*h)
	*h = append(*h, m)
}
func (h *spoolHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	m.index = -1
	return m
}
