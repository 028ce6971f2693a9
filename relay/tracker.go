package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// TrackRecord maps the ID of a return-path address (bounces+ID@domain, see
// ReturnPathID) back to the message it was the envelope sender of, so
// that a bounce sent to that address can be told apart from a forged one
// and reported for the right message, recipient and account.
type TrackRecord struct {
	// ID is the return-path ID.
	ID string `json:"id"`
	// QueueID and MessageID name the message, as in its events.
	QueueID   string `json:"queue_id"`
	MessageID string `json:"message_id,omitempty"`
	// Account is the sending account (Account.Name), "" for a trusted
	// network.
	Account string `json:"account,omitempty"`
	// Sender is the reverse-path the client gave (Entry.Sender).
	Sender string `json:"sender"`
	// Rcpts are the message's recipients: only a bounce for one of them
	// counts.
	Rcpts []string `json:"rcpts"`
	// Created is when the message was accepted.
	Created time.Time `json:"created"`
}

// Tracker keeps a TrackRecord for each message a Server accepts with a
// return-path address, for the BounceServer to look up. Implementations
// are safe for concurrent use.
type Tracker interface {
	// Record stores r, replacing the record of the same ID.
	Record(ctx context.Context, r *TrackRecord) error
	// Lookup returns the record of id, or nil when there is none (never
	// recorded, or expired).
	Lookup(ctx context.Context, id string) (*TrackRecord, error)
}

// hasRcpt returns the recipient of r that addr names, compared with its
// domain in any case (RFC 5321 §2.4), and whether there is one.
//
// A local part is compared exactly first and then, failing that, without
// regard to case: RFC 5321 §2.4 lets a server tell case apart in local
// parts, but few do, and many report the recipient in lower case.
func (r *TrackRecord) hasRcpt(addr string) (string, bool) {
	k := suppressionKey("", addr)
	for _, a := range r.Rcpts {
		if suppressionKey("", a) == k {
			return a, true
		}
	}
	for _, a := range r.Rcpts {
		if strings.EqualFold(a, addr) {
			return a, true
		}
	}
	return "", false
}

func (r *TrackRecord) clone() *TrackRecord {
	c := *r
	c.Rcpts = slices.Clone(r.Rcpts)
	return &c
}

// MemoryTracker is a Tracker held in memory, for tests: it forgets
// nothing. The zero value is empty and ready.
type MemoryTracker struct {
	mu sync.Mutex
	m  map[string]*TrackRecord
}

// Record implements Tracker.
func (t *MemoryTracker) Record(ctx context.Context, r *TrackRecord) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]*TrackRecord)
	}
	t.m[strings.ToLower(r.ID)] = r.clone()
	return nil
}

// Lookup implements Tracker.
func (t *MemoryTracker) Lookup(ctx context.Context, id string) (*TrackRecord, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.m[strings.ToLower(id)]; ok {
		return r.clone(), nil
	}
	return nil, nil
}

// The defaults of FileTrackerOptions.
const (
	defaultTrackRetention  = 30 * 24 * time.Hour
	defaultTrackMaxRecords = 1_000_000
	trackCompactSlack      = 1024
)

// FileTrackerOptions are the optional settings of a FileTracker; nil
// means every default.
type FileTrackerOptions struct {
	// Retention is how long a record is kept: bounces come back within
	// days (RFC 5321 §4.5.4.1 suggests giving up delivery after 4-5 days),
	// feedback reports sometimes weeks later. Default 30 days.
	Retention time.Duration
	// MaxRecords bounds the records kept, and so the memory and the file;
	// beyond it the oldest are forgotten. Default 1,000,000.
	MaxRecords int
	// Logger receives debug records of loads and compactions. Default
	// none.
	Logger *slog.Logger
	// Now is the clock of the retention. Default time.Now.
	Now func() time.Time
}

// FileTracker is the file-backed Tracker: one JSON record a line, appended
// as messages are accepted, and held in memory by ID. Several processes
// may share the file (the relay and its bounce receiver): writers take an
// exclusive lock on the file named path+".lock" (as KeyFile does), and a
// Lookup that misses first reads what other processes appended, or the
// whole file again when it was replaced. The file is rewritten without
// its expired and forgotten records (by a rename, so a reader sees the old
// file or the new) once they outnumber the live ones.
//
// A record is written (not synced) before Record returns: it survives the
// process, and an operating system crash may lose the last ones, whose
// bounces then are refused as unknown like any bounce of an expired
// record.
type FileTracker struct {
	path, lockPath string
	retention      time.Duration
	max            int
	log            *slog.Logger
	now            func() time.Time

	mu    sync.Mutex
	f     *os.File // the file read, opened for appending
	fi    os.FileInfo
	off   int64 // the octets of f read (whole lines only)
	lines int   // the lines of f
	m     map[string]*TrackRecord
	order []*TrackRecord // oldest first; may hold records replaced or gone
}

// NewFileTracker opens the tracking file at path, creating it (mode 0600)
// when it does not exist, and reads it. opts may be nil.
func NewFileTracker(path string, opts *FileTrackerOptions) (*FileTracker, error) {
	var o FileTrackerOptions
	if opts != nil {
		o = *opts
	}
	t := &FileTracker{path: path, lockPath: path + ".lock", retention: o.Retention, max: o.MaxRecords, log: o.Logger, now: o.Now}
	if t.retention == 0 {
		t.retention = defaultTrackRetention
	}
	if t.retention < 0 {
		return nil, errors.New("relay: NewFileTracker: Retention is negative")
	}
	if t.max == 0 {
		t.max = defaultTrackMaxRecords
	}
	if t.max < 0 {
		return nil, errors.New("relay: NewFileTracker: MaxRecords is negative")
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.reopen(); err != nil {
		return nil, err
	}
	return t, nil
}

// reopen reads the file at path from its start.
func (t *FileTracker) reopen() error {
	f, err := os.OpenFile(t.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("relay: tracking file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("relay: tracking file: %w", err)
	}
	if t.f != nil {
		t.f.Close()
	}
	t.f, t.fi, t.off, t.lines = f, fi, 0, 0
	t.m = make(map[string]*TrackRecord)
	t.order = t.order[:0]
	return t.readNew()
}

// readNew reads the whole lines appended to the file since the last read.
func (t *FileTracker) readNew() error {
	fi, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("relay: tracking file: %w", err)
	}
	if fi.Size() <= t.off {
		return nil
	}
	br := bufio.NewReader(io.NewSectionReader(t.f, t.off, fi.Size()-t.off))
	expired := t.now().Add(-t.retention)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			break // EOF: a partial line is left for when it is whole
		}
		t.off += int64(len(line))
		t.lines++
		var r TrackRecord
		if err := json.Unmarshal(bytes.TrimSpace(line), &r); err != nil || r.ID == "" {
			t.log.Debug("relay: tracking file: line skipped", "path", t.path, "offset", t.off-int64(len(line)))
			continue
		}
		if r.Created.Before(expired) {
			continue
		}
		t.put(&r)
	}
	return nil
}

// put adds r to the memory, forgetting the oldest records beyond the
// limit.
func (t *FileTracker) put(r *TrackRecord) {
	t.m[strings.ToLower(r.ID)] = r
	t.order = append(t.order, r)
	for len(t.m) > t.max && len(t.order) > 0 {
		old := t.order[0]
		t.order[0] = nil
		t.order = t.order[1:]
		if id := strings.ToLower(old.ID); t.m[id] == old {
			delete(t.m, id)
		}
	}
}

// catchUp reads what other processes wrote: the appended lines, or the
// whole file when it was replaced.
func (t *FileTracker) catchUp() error {
	fi, err := os.Stat(t.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("relay: tracking file: %w", err)
	}
	if err != nil || !os.SameFile(fi, t.fi) {
		return t.reopen()
	}
	return t.readNew()
}

// Record implements Tracker: it appends r to the file.
func (t *FileTracker) Record(ctx context.Context, r *TrackRecord) error {
	if r.ID == "" {
		return errors.New("relay: FileTracker.Record: no ID")
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("relay: FileTracker.Record: %w", err)
	}
	line = append(line, '\n')
	unlock, err := lockFile(ctx, t.lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return errors.New("relay: FileTracker.Record: closed")
	}
	if err := t.catchUp(); err != nil {
		return err
	}
	fi, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("relay: tracking file: %w", err)
	}
	if fi.Size() > t.off {
		// A writer died in the middle of its line: end that line, so
		// that it is skipped rather than joined to this one.
		line = append([]byte{'\n'}, line...)
		t.lines++
	}
	if _, err := t.f.Write(line); err != nil {
		return fmt.Errorf("relay: tracking file: %w", err)
	}
	t.off = fi.Size() + int64(len(line))
	t.lines++
	t.put(r.clone())
	if t.lines > 2*len(t.m)+trackCompactSlack {
		if err := t.compact(); err != nil {
			t.log.Debug("relay: tracking file not compacted", "path", t.path, "err", err)
		}
	}
	return nil
}

// compact rewrites the file with the live records only. The caller holds
// the lock file.
func (t *FileTracker) compact() error {
	expired := t.now().Add(-t.retention)
	var buf bytes.Buffer
	var order []*TrackRecord
	for _, r := range t.order {
		if t.m[strings.ToLower(r.ID)] == r && !r.Created.Before(expired) {
			order = append(order, r)
		}
	}
	for _, r := range order {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := writeFileAtomic(t.path, buf.Bytes()); err != nil {
		return err
	}
	t.log.Debug("relay: tracking file compacted", "path", t.path, "lines", t.lines, "records", len(order))
	return t.reopen()
}

// Lookup implements Tracker.
func (t *FileTracker) Lookup(ctx context.Context, id string) (*TrackRecord, error) {
	id = strings.ToLower(id)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil, errors.New("relay: FileTracker.Lookup: closed")
	}
	r, ok := t.m[id]
	if !ok {
		if err := t.catchUp(); err != nil {
			return nil, err
		}
		if r, ok = t.m[id]; !ok {
			return nil, nil
		}
	}
	if r.Created.Before(t.now().Add(-t.retention)) {
		delete(t.m, id)
		return nil, nil
	}
	return r.clone(), nil
}

// Len returns the number of records held.
func (t *FileTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Close closes the file; Record and Lookup fail after it.
func (t *FileTracker) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// String names the file.
func (t *FileTracker) String() string { return "relay.FileTracker(" + t.path + ")" }
