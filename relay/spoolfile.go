package relay

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The files of a Spool: ID.msg, ID.json when the entry is not in the
// header region of ID.msg, ID.json.tmp while an entry is written, and the
// directory of entries set aside.
const (
	contentExt    = ".msg"
	entryExt      = ".json"
	tempExt       = ".tmp"
	quarantineDir = "quarantine"
)

// The commit record at the start of ID.msg (see Spool), in the
// spoolHeaderSize octets before the content: spoolMagic, the content's
// length (8 octets, big-endian) and CRC-32C (4), the entry's length (4;
// 0 when the entry is in ID.json), the entry, and the CRC-32C (4) of all
// that comes before it. The region is a hole until the record is written,
// and the content a client sends cannot reach it, so a record found there
// was written by Commit.
const (
	spoolHeaderSize = 16 << 10
	spoolMagic      = "SMHSPOOL"
	recordFixed     = len(spoolMagic) + 8 + 4 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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

// diskEntry is an entry as the commit of the format before the header
// region wrote it, with the size of its content.
type diskEntry struct {
	*Entry
	ContentSize int64 `json:"content_size,omitempty"`
}

// commitRecord is a decoded commit record.
type commitRecord struct {
	size  int64  // of the content
	crc   uint32 // of the content
	entry []byte // nil when the entry is in ID.json
}

// encodeRecord returns the commit record of a content of size octets
// with the given CRC, holding entry (nil: the entry is in ID.json).
func encodeRecord(size int64, crc uint32, entry []byte) []byte {
	b := make([]byte, 0, recordFixed+len(entry)+4)
	b = append(b, spoolMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint32(b, crc)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entry)))
	b = append(b, entry...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// errNoRecord marks a content file whose header region holds no commit
// record: a message not committed.
var errNoRecord = errors.New("relay: spool: no commit record")

// decodeRecord reads the commit record at the start of region (the
// header region, or as much of it as the file has). A region that does
// not start with spoolMagic holds none (errNoRecord); one that does but
// fails its checks is corrupt (errCorrupt).
func decodeRecord(region []byte) (*commitRecord, error) {
	if len(region) < recordFixed || string(region[:len(spoolMagic)]) != spoolMagic {
		return nil, errNoRecord
	}
	p := region[len(spoolMagic):]
	r := &commitRecord{size: int64(binary.BigEndian.Uint64(p)), crc: binary.BigEndian.Uint32(p[8:])}
	n := int(binary.BigEndian.Uint32(p[12:]))
	if n > len(region)-recordFixed-4 || r.size < 0 {
		return nil, fmt.Errorf("%w: commit record of %d octets", errCorrupt, n)
	}
	end := recordFixed + n
	if crc32.Checksum(region[:end], castagnoli) != binary.BigEndian.Uint32(region[end:]) {
		return nil, fmt.Errorf("%w: commit record fails its check", errCorrupt)
	}
	if n > 0 {
		r.entry = region[recordFixed:end]
	}
	return r, nil
}

// readRecord reads the commit record of a file of size octets: its first
// 4 KiB, and the rest of the header region only when the record is longer.
func readRecord(f *os.File, size int64) (*commitRecord, error) {
	region := make([]byte, min(size, 4<<10, spoolHeaderSize))
	if _, err := f.ReadAt(region, 0); err != nil {
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	if len(region) >= recordFixed && string(region[:len(spoolMagic)]) == spoolMagic {
		if n := int64(binary.BigEndian.Uint32(region[recordFixed-4:])); int64(recordFixed)+n+4 > int64(len(region)) && len(region) < spoolHeaderSize {
			region = make([]byte, min(size, spoolHeaderSize))
			if _, err := f.ReadAt(region, 0); err != nil {
				return nil, fmt.Errorf("relay: spool: %w", err)
			}
		}
	}
	return decodeRecord(region)
}

// commitFiles makes a new message durable in one round of syncs: the
// commit record, with the entry when it fits, goes into the header region
// of the content file (else the entry is written whole to ID.json.tmp and
// renamed to ID.json), and then the file (and ID.json) and the directory
// are synced at once (with SyncFS, the file system, once for the commits
// under way). Until they have ended, what a crash of the system
// leaves may be in any state; the 250 comes only after. After such a
// crash, a record cut short, or content that fails the record's CRC, is
// corrupt (quarantined by NewSpool), never delivered. A process killed in
// the middle leaves a whole record, or none. content is closed. inJSON
// reports that the entry went to ID.json.
func (s *Spool) commitFiles(content *os.File, e *Entry, size int64, crc uint32) (inJSON bool, err error) {
	data, err := json.Marshal(e)
	if err != nil {
		content.Close()
		return false, fmt.Errorf("relay: spool: %w", err)
	}
	inJSON = recordFixed+len(data)+4 > spoolHeaderSize
	var f *os.File
	if inJSON {
		// Written whole under a temporary name and renamed, so that a
		// process killed in between leaves no entry cut short.
		tmp := s.path(e.ID, entryExt+tempExt)
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil {
			if _, err = f.Write(data); err == nil {
				err = os.Rename(tmp, s.path(e.ID, entryExt))
			}
			if err != nil {
				f.Close()
				os.Remove(tmp)
			}
		}
		if err != nil {
			content.Close()
			return false, fmt.Errorf("relay: spool: %w", err)
		}
		data = nil
	}
	if _, err := content.WriteAt(encodeRecord(size, crc, data), 0); err != nil {
		content.Close()
		if f != nil {
			f.Close()
		}
		return false, fmt.Errorf("relay: spool: %w", err)
	}
	var errs [3]error
	var wg sync.WaitGroup
	if s.syncFS {
		// The file system's sync below covers the file.
		errs[0] = content.Close()
	} else {
		wg.Go(func() { errs[0] = errors.Join(s.fsync(content), content.Close()) })
	}
	if f != nil {
		wg.Go(func() { errs[1] = errors.Join(s.fsync(f), f.Close()) })
	}
	errs[2] = s.syncer.sync()
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return false, fmt.Errorf("relay: spool: sync a new message: %w", err)
	}
	return inJSON, nil
}

// writeEntry replaces the entry of m with e durably: a temporary file,
// synced, renamed to ID.json, and the directory synced.
func (s *Spool) writeEntry(m *spooled, e *Entry) error {
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
	m.json = true
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

// readEntry reads the entry of the message id, from ID.json when inJSON
// and else from the commit record of ID.msg, and returns it with the
// size of the content, which starts at dataOff in ID.msg. A message that
// is gone is an error for which errors.Is(err, os.ErrNotExist); one whose
// entry cannot be read, or whose content is missing, an errCorrupt.
func (s *Spool) readEntry(id string, inJSON bool, dataOff int64) (*Entry, int64, error) {
	f, err := os.Open(s.path(id, contentExt))
	if errors.Is(err, os.ErrNotExist) && inJSON {
		if _, jerr := os.Stat(s.path(id, entryExt)); jerr == nil {
			return nil, 0, fmt.Errorf("%w: content file missing", errCorrupt)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("relay: spool: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("relay: spool: %w", err)
	}
	var size int64
	var data []byte
	if dataOff == 0 {
		// The format before the header region: the content is the file.
		size = fi.Size()
	} else {
		r, err := readRecord(f, fi.Size())
		if errors.Is(err, errNoRecord) {
			return nil, 0, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if err != nil {
			return nil, 0, err
		}
		if dataOff+r.size != fi.Size() {
			return nil, 0, fmt.Errorf("%w: content of %d octets, %d committed", errCorrupt, fi.Size()-dataOff, r.size)
		}
		size, data = r.size, r.entry
	}
	committed := size
	if inJSON {
		if data, err = readJSON(s.path(id, entryExt)); err != nil {
			return nil, 0, err
		}
	} else if data == nil {
		return nil, 0, fmt.Errorf("%w: entry missing", errCorrupt)
	}
	e, recorded, err := decodeDiskEntry(id, data)
	if err != nil {
		return nil, 0, err
	}
	if dataOff == 0 && recorded > 0 {
		committed = recorded
	}
	if committed != size {
		return nil, 0, fmt.Errorf("%w: content of %d octets, %d committed", errCorrupt, size, committed)
	}
	return e, size, nil
}

// readJSON reads an entry file.
func readJSON(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	if fi.Size() > maxEntrySize {
		return nil, fmt.Errorf("%w: %d octets", errCorrupt, fi.Size())
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && len(data) == 0) {
		return nil, fmt.Errorf("relay: spool: %w", err)
	}
	return data, nil
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

// checkEntry checks a decoded entry: Entry.Check, and that it is the
// entry of id.
func checkEntry(id string, e *Entry) error {
	if e.ID != id {
		return fmt.Errorf("%w: ID %q in the entry of %s", errCorrupt, e.ID, id)
	}
	if err := e.Check(); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return nil
}

// remove removes the message m: its ID.json, when it has one, then
// ID.msg with its commit record. The directory is not synced: a crash
// before the file system writes the removal brings the message back,
// delivered again, as the Queue contract allows for Done. The sync would
// cost a disk flush per message delivered.
func (s *Spool) remove(m *spooled) error {
	if m.json {
		if err := os.Remove(s.path(m.id, entryExt)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("relay: spool: %w", err)
		}
	}
	if err := os.Remove(s.path(m.id, contentExt)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("relay: spool: %w", err)
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
// files and content without a commit record (a message not committed, or
// done), quarantines the messages it cannot read (a record, an entry or
// content that fails its check), and makes the others ready for their
// NextAttempt.
func (s *Spool) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	jsons := map[string]bool{}
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
			jsons[id] = true
		}
		if id, ok := strings.CutSuffix(name, contentExt); ok && validID(id) {
			contents = append(contents, id)
		}
	}
	var found []*spooled
	for _, id := range contents {
		m := &spooled{id: id, json: jsons[id], dataOff: spoolHeaderSize}
		delete(jsons, id)
		err := s.checkContent(m)
		switch {
		case errors.Is(err, errNoRecord) && m.json:
			m.dataOff = 0 // the format before the header region
		case errors.Is(err, errNoRecord):
			if err := os.Remove(s.path(id, contentExt)); err != nil {
				return err
			}
			removed = true
			continue
		case errors.Is(err, errCorrupt):
			s.quarantine(id, err)
			continue
		case err != nil:
			return err
		}
		found = append(found, m)
	}
	if removed {
		if err := s.fsync(s.d); err != nil {
			return err
		}
	}
	for id := range jsons {
		s.quarantine(id, fmt.Errorf("%w: content file missing", errCorrupt))
	}
	type loaded struct {
		m *spooled
		e *Entry
	}
	var ready []loaded
	for _, m := range found {
		e, _, err := s.readEntry(m.id, m.json, m.dataOff)
		switch {
		case errors.Is(err, errCorrupt):
			s.quarantine(m.id, err)
		case err != nil:
			return err
		default:
			m.next, m.created = e.NextAttempt, e.Created
			ready = append(ready, loaded{m, e})
		}
	}
	// Messages due at the same time go in the order they came.
	slices.SortFunc(ready, func(a, b loaded) int {
		if c := a.e.Created.Compare(b.e.Created); c != 0 {
			return c
		}
		return strings.Compare(a.e.ID, b.e.ID)
	})
	for _, r := range ready {
		s.msgs[r.m.id] = r.m
		s.push(r.m)
	}
	s.log.Debug("relay: spool open", "dir", s.dir, "messages", len(ready))
	return nil
}

// checkContent checks, when a Spool opens, the content file of a message
// committed before: that its header region holds a commit record
// (errNoRecord if not) and that the content matches the record's length
// and CRC (errCorrupt if not), which a crash of the system during the
// commit's syncs, before its 250, may have left otherwise. Messages
// committed by the running Spool are not checked again: their syncs
// succeeded.
func (s *Spool) checkContent(m *spooled) error {
	f, err := os.Open(s.path(m.id, contentExt))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	r, err := readRecord(f, fi.Size())
	if err != nil {
		return err
	}
	if spoolHeaderSize+r.size != fi.Size() {
		return fmt.Errorf("%w: content of %d octets, %d committed", errCorrupt, fi.Size()-spoolHeaderSize, r.size)
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(f, spoolHeaderSize, r.size)); err != nil {
		return err
	}
	if h.Sum32() != r.crc {
		return fmt.Errorf("%w: content fails the commit record's CRC", errCorrupt)
	}
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
