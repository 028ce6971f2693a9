package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The files of a Spool: ID.msg and ID.json, ID.json.tmp while an entry is
// written, and the directory of entries set aside.
const (
	contentExt    = ".msg"
	entryExt      = ".json"
	tempExt       = ".tmp"
	quarantineDir = "quarantine"
)

// maxEntrySize is the largest entry file read: far more than the entry of
// a message with thousands of recipients needs.
const maxEntrySize = 16 << 20

// errCorrupt marks an entry that cannot be read as one.
var errCorrupt = errors.New("relay: spool: corrupt entry")

func (s *Spool) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

// validID reports whether id has the form of the IDs a Spool makes (the
// base32 of crypto/rand.Text), so that no name read from the directory
// leads elsewhere.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// diskEntry is an entry as the first commit writes it: with the size of
// its content, so that an entry whose content did not reach the disk
// whole (a crash before the commit's syncs ended, and so before its 250)
// is never taken for a message. Entries rewritten later (Save, Retry)
// leave the size out: their content was synced by then.
type diskEntry struct {
	*Entry
	ContentSize int64 `json:"content_size,omitempty"`
}

// commitFiles makes a new message durable in one round of syncs: its
// entry is written whole and renamed into place, and then the content,
// the entry and the directory are synced at once, so that the file
// system can cover all three with one journal commit. Until all three
// have ended, what a crash of the system leaves on disk may be in any
// state; the 250 comes only after. After such a crash, an entry cut short
// or one whose content is shorter than its ContentSize is corrupt
// (quarantined by NewSpool), never delivered. A process killed in the
// middle leaves a whole entry, or none. content is closed.
func (s *Spool) commitFiles(content *os.File, e *Entry, size int64) error {
	data, err := json.Marshal(diskEntry{e, size})
	if err != nil {
		content.Close()
		return fmt.Errorf("relay: spool: %w", err)
	}
	// Written whole under a temporary name and renamed, so that a
	// process killed in between leaves no entry cut short; the syncs
	// that make both durable against a crash of the system follow.
	tmp := s.path(e.ID, entryExt+tempExt)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		content.Close()
		return fmt.Errorf("relay: spool: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = os.Rename(tmp, s.path(e.ID, entryExt))
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		content.Close()
		return fmt.Errorf("relay: spool: %w", err)
	}
	var errs [3]error
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = s.fsync(content) })
	wg.Go(func() { errs[1] = s.fsync(f) })
	errs[2] = s.syncer.sync()
	wg.Wait()
	errs[0] = errors.Join(errs[0], content.Close())
	errs[1] = errors.Join(errs[1], f.Close())
	if err := errors.Join(errs[:]...); err != nil {
		return fmt.Errorf("relay: spool: sync a new message: %w", err)
	}
	return nil
}

// writeEntry replaces the entry file of e durably: a temporary file,
// synced, renamed over the entry, and the directory synced.
func (s *Spool) writeEntry(e *Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("relay: spool: %w", err)
	}
	tmp := s.path(e.ID, entryExt+tempExt)
	err = s.writeSynced(tmp, data)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("relay: spool: %w", err)
	}
	if err := os.Rename(tmp, s.path(e.ID, entryExt)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("relay: spool: %w", err)
	}
	if err := s.syncer.sync(); err != nil {
		return fmt.Errorf("relay: spool: sync directory: %w", err)
	}
	return nil
}

// writeSynced writes data to a new file at name and syncs it.
func (s *Spool) writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = s.fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readEntry reads the entry of id and the size of its content. An entry
// file that is gone is an error for which errors.Is(err, os.ErrNotExist);
// one that cannot be read as an entry, or whose content is missing, an
// errCorrupt.
func (s *Spool) readEntry(id string) (*Entry, int64, error) {
	f, err := os.Open(s.path(id, entryExt))
	if err != nil {
		return nil, 0, fmt.Errorf("relay: spool: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("relay: spool: %w", err)
	}
	if fi.Size() > maxEntrySize {
		return nil, 0, fmt.Errorf("%w: %d octets", errCorrupt, fi.Size())
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, 0, fmt.Errorf("relay: spool: %w", err)
	}
	e, committed, err := decodeDiskEntry(id, data)
	if err != nil {
		return nil, 0, err
	}
	ci, err := os.Stat(s.path(id, contentExt))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: content file missing", errCorrupt)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("relay: spool: %w", err)
	}
	if committed > 0 && committed != ci.Size() {
		return nil, 0, fmt.Errorf("%w: content of %d octets, %d committed", errCorrupt, ci.Size(), committed)
	}
	return e, ci.Size(), nil
}

// decodeEntry reads the entry file of the message id.
func decodeEntry(id string, data []byte) (*Entry, error) {
	e, _, err := decodeDiskEntry(id, data)
	return e, err
}

// decodeDiskEntry is decodeEntry that also returns the content size the
// entry records, 0 when it records none.
func decodeDiskEntry(id string, data []byte) (*Entry, int64, error) {
	var e Entry
	d := diskEntry{Entry: &e}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if err := checkEntry(id, &e); err != nil {
		return nil, 0, err
	}
	return &e, d.ContentSize, nil
}

// checkEntry checks a decoded entry.
func checkEntry(id string, e *Entry) error {
	if e.ID != id {
		return fmt.Errorf("%w: ID %q in the entry of %s", errCorrupt, e.ID, id)
	}
	if len(e.Envelope.To) == 0 {
		return fmt.Errorf("%w: no recipients", errCorrupt)
	}
	if err := checkRcpts(e); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	for _, r := range e.Rcpts {
		switch r.Status {
		case RcptPending, RcptDelivered, RcptBounced, RcptDSNSent:
		default:
			return fmt.Errorf("%w: recipient %q has status %q", errCorrupt, r.Addr, r.Status)
		}
		if r.Reply != nil && (r.Reply.Code < 200 || r.Reply.Code > 599) {
			return fmt.Errorf("%w: recipient %q has reply code %d", errCorrupt, r.Addr, r.Reply.Code)
		}
	}
	if e.Created.IsZero() || e.NextAttempt.IsZero() || e.Attempts < 0 {
		return fmt.Errorf("%w: created %v, next attempt %v, attempts %d", errCorrupt, e.Created, e.NextAttempt, e.Attempts)
	}
	return nil
}

// checkRcpts checks that the entry has one state per recipient of its
// envelope, in order.
func checkRcpts(e *Entry) error {
	if len(e.Rcpts) != len(e.Envelope.To) {
		return fmt.Errorf("relay: queue: %d recipient states for %d recipients", len(e.Rcpts), len(e.Envelope.To))
	}
	for i, r := range e.Rcpts {
		if r.Addr != e.Envelope.To[i].Addr {
			return fmt.Errorf("relay: queue: recipient state %d is for %q, not %q", i, r.Addr, e.Envelope.To[i].Addr)
		}
	}
	return nil
}

// remove removes the message id: its entry (the commit record), then its
// content. The directory is not synced: a crash before the file system
// writes the removal brings the message back, delivered again, as the
// Queue contract allows for Done.
// The sync would cost a disk flush per message delivered.
func (s *Spool) remove(id string) error {
	for _, ext := range []string{entryExt, contentExt} {
		if err := os.Remove(s.path(id, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("relay: spool: %w", err)
		}
	}
	return nil
}

// quarantine moves the files of the message id into the quarantine
// directory, and reports it.
func (s *Spool) quarantine(id string, why error) {
	q := filepath.Join(s.dir, quarantineDir)
	var moved []string
	var err error
	for _, ext := range []string{entryExt, contentExt} {
		e := os.Rename(s.path(id, ext), filepath.Join(q, id+ext))
		switch {
		case e == nil:
			moved = append(moved, id+ext)
		case !errors.Is(e, os.ErrNotExist):
			err = errors.Join(err, e)
		}
	}
	if err == nil {
		err = syncDir(q)
	}
	if err == nil {
		err = s.syncer.sync()
	}
	s.log.Error("relay: spool: entry quarantined", "id", id, "reason", why.Error(), "files", moved, "err", err)
}

// Quarantined returns the names of the files set aside in the quarantine
// directory of the spool (a subdirectory named "quarantine"): entries that
// could not be read, and their content. Nothing removes them but an
// operator.
func (s *Spool) Quarantined() ([]string, error) {
	des, err := os.ReadDir(filepath.Join(s.dir, quarantineDir))
	if err != nil {
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names, nil
}

// load takes up the messages of the directory: it removes temporary
// files and content without an entry (a message not committed, or done),
// quarantines the entries it cannot read, and makes the others ready for
// their NextAttempt.
func (s *Spool) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	entries := map[string]bool{}
	var contents []string
	removed := false
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() {
			continue
		}
		if base, ok := strings.CutSuffix(name, tempExt); ok && validID(strings.TrimSuffix(base, entryExt)) {
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return err
			}
			removed = true
			continue
		}
		if id, ok := strings.CutSuffix(name, entryExt); ok && validID(id) {
			entries[id] = true
		}
		if id, ok := strings.CutSuffix(name, contentExt); ok && validID(id) {
			contents = append(contents, id)
		}
	}
	for _, id := range contents {
		if !entries[id] {
			if err := os.Remove(s.path(id, contentExt)); err != nil {
				return err
			}
			removed = true
		}
	}
	if removed {
		if err := s.fsync(s.d); err != nil {
			return err
		}
	}
	var ready []*Entry
	for id := range entries {
		e, _, err := s.readEntry(id)
		switch {
		case errors.Is(err, errCorrupt):
			s.quarantine(id, err)
		case err != nil:
			return err
		default:
			ready = append(ready, e)
		}
	}
	// Messages due at the same time go in the order they came.
	slices.SortFunc(ready, func(a, b *Entry) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, e := range ready {
		m := &spooled{id: e.ID, next: e.NextAttempt, created: e.Created}
		s.msgs[m.id] = m
		s.push(m)
	}
	s.log.Debug("relay: spool open", "dir", s.dir, "messages", len(ready))
	return nil
}

// dirSyncer syncs a directory for many goroutines at once (group
// commit): a sync makes durable every change to the directory's names made
// before it began, so a caller whose change came while a sync was under
// way waits for the next one, which covers at once every caller that came
// meanwhile. Once a sync has failed every sync after fails: a directory
// whose sync failed cannot be trusted to hold the names written before it.
type dirSyncer struct {
	d       *os.File
	fsync   func(*os.File) error
	noGroup bool         // sync once per caller, for the benchmark
	syncs   atomic.Int64 // syncs done, for the benchmark

	mu      sync.Mutex
	cond    sync.Cond
	started uint64 // syncs begun
	done    uint64 // syncs ended
	running bool
	err     error
}

func newDirSyncer(d *os.File, fsync func(*os.File) error, noGroup bool) *dirSyncer {
	g := &dirSyncer{d: d, fsync: fsync, noGroup: noGroup}
	g.cond.L = &g.mu
	return g
}

// sync makes durable the changes to the directory's names made before it
// was called.
func (g *dirSyncer) sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.noGroup {
		return g.syncLocked()
	}
	// A sync that begins from now on covers this caller's changes.
	need := g.started + 1
	for g.done < need && g.err == nil {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.syncLocked()
		g.running = false
		g.cond.Broadcast()
	}
	return g.err
}

// syncLocked syncs the directory, with g.mu released meanwhile.
func (g *dirSyncer) syncLocked() error {
	if g.err != nil {
		return g.err
	}
	g.started++
	g.mu.Unlock()
	err := g.fsync(g.d)
	g.syncs.Add(1)
	g.mu.Lock()
	g.done++
	if err != nil && g.err == nil {
		g.err = err
	}
	return g.err
}
