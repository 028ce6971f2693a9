package relay

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// syncLog is the fsync hook of a Spool under test. It records what each
// sync makes durable, from the file system itself rather than from the
// spool's account of it: for a file, its size when the sync began and
// whether it then held a commit record with an entry; for the directory,
// the names it held when the sync began, counted durable once that sync
// has returned.
type syncLog struct {
	dir string
	// gate, when set, holds the first directory sync until it is closed.
	gate chan struct{}

	mu      sync.Mutex
	files   map[string]int64 // base name: its size at its last sync
	records map[string]bool  // base name: a commit record with an entry at its last sync
	durable map[string]bool  // names covered by a directory sync that has ended
	// covered: files whose commit record (with an entry) was written when
	// a directory sync began, once that sync has ended
	covered  map[string]bool
	dirSyncs int // directory syncs begun
}

func newSyncLog(dir string) *syncLog {
	return &syncLog{dir: dir, files: map[string]int64{}, records: map[string]bool{}, durable: map[string]bool{}, covered: map[string]bool{}}
}

func (l *syncLog) fsync(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		region := make([]byte, min(fi.Size(), spoolHeaderSize))
		rf, rerr := os.Open(f.Name())
		if rerr == nil {
			_, rerr = rf.ReadAt(region, 0)
			rf.Close()
		}
		r, derr := decodeRecord(region)
		err := f.Sync()
		l.mu.Lock()
		l.files[filepath.Base(f.Name())] = fi.Size()
		l.records[filepath.Base(f.Name())] = rerr == nil && derr == nil && r.entry != nil
		l.mu.Unlock()
		return err
	}
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.dirSyncs++
	first := l.dirSyncs == 1
	l.mu.Unlock()
	if first && l.gate != nil {
		<-l.gate
	}
	var withRecord []string
	for _, de := range des {
		if hasRecord(filepath.Join(l.dir, de.Name())) {
			withRecord = append(withRecord, de.Name())
		}
	}
	err = f.Sync()
	l.mu.Lock()
	for _, de := range des {
		l.durable[de.Name()] = true
	}
	for _, name := range withRecord {
		l.covered[name] = true
	}
	l.mu.Unlock()
	return err
}

// hasRecord reports whether the file at path begins with a commit record
// that holds an entry.
func hasRecord(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	r, err := readRecord(f, fi.Size())
	return err == nil && r.entry != nil
}

// checkDurable fails t unless the message id, whose Commit has just
// returned, had its file synced at its full size (the header region and
// the content) with its commit record and entry in it, and its name
// covered by a directory sync that ended.
func (l *syncLog) checkDurable(t *testing.T, id string, size int64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if got, ok := l.files[id+contentExt]; !ok || got != spoolHeaderSize+size {
		t.Errorf("%s: Commit returned with its file synced at %d octets (synced: %v), want %d", id, got, ok, spoolHeaderSize+size)
	}
	if !l.records[id+contentExt] {
		t.Errorf("%s: Commit returned before its commit record was synced", id)
	}
	if !l.durable[id+contentExt] {
		t.Errorf("%s: Commit returned before a directory sync that covers %s ended", id, id+contentExt)
	}
}

// An entry too large for the header region goes to ID.json, synced and
// covered by a directory sync before Commit returns, with a commit record
// that says so; one larger than the first 4 KiB that the spool reads of a
// record, but within the region, stays in the record. The spool reads
// both back after a restart.
func TestSpoolLargeEntry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rcpts  int
		inJSON bool
	}{
		{100, false},
		{400, true},
	} {
		t.Run(fmt.Sprint(tt.rcpts), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			log := newSyncLog(dir)
			s, err := NewSpool(dir, &SpoolOptions{fsync: log.fsync})
			if err != nil {
				t.Fatal(err)
			}
			var to []string
			for i := range tt.rcpts {
				to = append(to, fmt.Sprintf("recipient-with-a-long-name-%03d@example.org", i))
			}
			w, err := s.Create(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			w.Write(commitContent)
			e := &Entry{Envelope: Envelope{From: "a@example.com", To: To(to...)}}
			if err := w.Commit(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			log.mu.Lock()
			n, synced := log.files[e.ID+entryExt+tempExt]
			switch {
			case tt.inJSON && (!synced || n <= spoolHeaderSize):
				t.Errorf("the entry file was not synced, or is small: %d octets (synced: %v)", n, synced)
			case tt.inJSON && (!log.durable[e.ID+entryExt] || !log.durable[e.ID+contentExt]):
				t.Errorf("Commit returned before a directory sync that covers both files ended")
			case tt.inJSON && log.records[e.ID+contentExt]:
				t.Errorf("the commit record holds the entry too")
			case !tt.inJSON && (synced || !log.records[e.ID+contentExt]):
				t.Errorf("entry file synced: %v, commit record with the entry: %v; want false, true", synced, log.records[e.ID+contentExt])
			}
			log.mu.Unlock()
			s.Close()
			s, err = NewSpool(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			l, err := s.Lease(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := len(l.Entry().Rcpts); got != tt.rcpts || l.Entry().Rcpts[tt.rcpts-1].Addr != to[tt.rcpts-1] {
				t.Errorf("leased an entry of %d recipients, want the %d", got, tt.rcpts)
			}
			if err := l.Done(t.Context()); err != nil {
				t.Fatal(err)
			}
			des, _ := os.ReadDir(dir)
			for _, de := range des {
				if de.Name() != quarantineDir {
					t.Errorf("left after Done: %s", de.Name())
				}
			}
		})
	}
}

// commitContent is 10 KiB of message content.
var commitContent = bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 160)

// commitOne commits commitContent to s and returns its ID.
func commitOne(ctx context.Context, s *Spool, rcpt string) (string, error) {
	w, err := s.Create(ctx)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(commitContent); err != nil {
		return "", err
	}
	e := &Entry{Envelope: Envelope{From: "a@example.com", To: To(rcpt)}}
	if err := w.Commit(ctx, e); err != nil {
		return "", err
	}
	return e.ID, nil
}

// Commit returns only once the content and the entry are synced, and
// their names are covered by a directory sync that ended: for one
// message, and for many committed at once.
func TestSpoolCommitDurable(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			log := newSyncLog(dir)
			s, err := NewSpool(dir, &SpoolOptions{fsync: log.fsync})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					id, err := commitOne(t.Context(), s, fmt.Sprintf("rcpt%d@example.org", i))
					if err != nil {
						t.Error(err)
						return
					}
					log.checkDurable(t, id, int64(len(commitContent)))
				})
			}
			wg.Wait()
		})
	}
}

// Commits that come while a directory sync is under way wait for the
// next one, which covers them all: 32 commits at once take two directory
// syncs, and none returns on the first sync when its rename came after
// that sync began. Without grouping they take one sync each.
func TestSpoolGroupCommit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		noGroup bool
		want    int // directory syncs
	}{
		{false, 2},
		{true, 32},
	} {
		t.Run(fmt.Sprintf("noGroup=%v", tt.noGroup), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				log := newSyncLog(dir)
				log.gate = make(chan struct{})
				s, err := NewSpool(dir, &SpoolOptions{fsync: log.fsync, noGroup: tt.noGroup})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var wg sync.WaitGroup
				var mu sync.Mutex
				var returned []string
				for i := range 32 {
					wg.Go(func() {
						id, err := commitOne(t.Context(), s, fmt.Sprintf("rcpt%d@example.org", i))
						if err != nil {
							t.Error(err)
							return
						}
						log.checkDurable(t, id, int64(len(commitContent)))
						mu.Lock()
						returned = append(returned, id)
						mu.Unlock()
					})
				}
				// Every commit has renamed its entry and waits on a
				// directory sync: the first, held at the gate, or (grouped)
				// the one after it.
				synctest.Wait()
				mu.Lock()
				early := len(returned)
				mu.Unlock()
				if !tt.noGroup && early != 0 {
					t.Errorf("%d commits returned while the only directory sync begun had not ended", early)
				}
				close(log.gate)
				wg.Wait()
				if log.dirSyncs != tt.want {
					t.Errorf("%d directory syncs for 32 commits, want %d", log.dirSyncs, tt.want)
				}
				if got := s.syncer.syncs.Load(); got != int64(tt.want) {
					t.Errorf("the spool counted %d directory syncs, want %d", got, tt.want)
				}
				if s.Len() != 32 {
					t.Errorf("Len %d, want 32", s.Len())
				}
			})
		})
	}
}

// Once a directory sync has failed, every operation that needs one fails:
// the directory may have lost the names written before it.
func TestSpoolDirSyncFailureSticks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var fail bool
	var mu sync.Mutex
	s, err := NewSpool(dir, &SpoolOptions{fsync: func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if fi, err := f.Stat(); err == nil && fi.IsDir() && fail {
			fail = false // once only: what follows must fail anyway
			return fmt.Errorf("injected directory sync failure")
		}
		return f.Sync()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := commitOne(t.Context(), s, "a@example.org"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	for i := range 2 {
		if _, err := commitOne(t.Context(), s, "b@example.org"); err == nil || !strings.Contains(err.Error(), "injected directory sync failure") {
			t.Errorf("commit %d after the failed sync: %v, want the sync's error", i+1, err)
		}
	}
}

// A crash before a commit's syncs ended (so before its 250) may leave a
// file whose content is shorter than its commit record says, a record cut
// short, or content the record's CRC does not match (a page of it not
// written): the next Spool sets them aside in quarantine and never
// delivers them.
func TestSpoolTornCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	short, err := commitOne(t.Context(), s, "a@example.org")
	if err != nil {
		t.Fatal(err)
	}
	torn, err := commitOne(t.Context(), s, "b@example.org")
	if err != nil {
		t.Fatal(err)
	}
	garbled, err := commitOne(t.Context(), s, "d@example.org")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := commitOne(t.Context(), s, "c@example.org")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Truncate(filepath.Join(dir, short+contentExt), spoolHeaderSize+100); err != nil {
		t.Fatal(err)
	}
	// The record's second half as zeros: the hole it was before.
	writeAt := func(id string, data []byte, off int64) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, id+contentExt), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	writeAt(torn, make([]byte, 200), 100)
	writeAt(garbled, make([]byte, 4096), spoolHeaderSize+4096)

	s, err = NewSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 1 {
		t.Fatalf("Len %d after the restart, want 1 (the whole message)", s.Len())
	}
	l, err := s.Lease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l.Entry().ID != whole {
		t.Errorf("leased %s, want the whole message %s", l.Entry().ID, whole)
	}
	for _, id := range []string{short, torn, garbled} {
		if _, err := os.Stat(filepath.Join(dir, quarantineDir, id+contentExt)); err != nil {
			t.Errorf("%s is not in quarantine: %v", id, err)
		}
	}
}

// With SyncFS a commit syncs no file of its own: it returns once a sync of
// the file system (here the hook, given the directory) that began after
// its commit record was written has ended, and 32 commits at once share
// two such syncs.
func TestSpoolSyncFS(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		log := newSyncLog(dir)
		log.gate = make(chan struct{})
		var fileSyncs atomic.Int32
		s, err := NewSpool(dir, &SpoolOptions{
			SyncFS: true,
			syncfs: log.fsync,
			fsync: func(f *os.File) error {
				fileSyncs.Add(1)
				return f.Sync()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				id, err := commitOne(t.Context(), s, fmt.Sprintf("rcpt%d@example.org", i))
				if err != nil {
					t.Error(err)
					return
				}
				log.mu.Lock()
				defer log.mu.Unlock()
				if !log.covered[id+contentExt] {
					t.Errorf("%s: Commit returned before a sync that began after its commit record was written ended", id)
				}
			})
		}
		synctest.Wait()
		close(log.gate)
		wg.Wait()
		if n := fileSyncs.Load(); n != 0 {
			t.Errorf("%d files synced one by one, want none", n)
		}
		if log.dirSyncs != 2 {
			t.Errorf("%d syncs for 32 commits, want 2", log.dirSyncs)
		}
	})
}

// The real syncfs, where the kernel has it: messages committed with it are
// there after a restart.
func TestSpoolSyncFSRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewSpool(dir, &SpoolOptions{SyncFS: true})
	if err != nil {
		t.Skipf("no SyncFS here: %v", err)
	}
	id, err := commitOne(t.Context(), s, "a@example.org")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = NewSpool(dir, &SpoolOptions{SyncFS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.Lease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l.Entry().ID != id || l.Message().Size() != int64(len(commitContent)) {
		t.Errorf("leased %s of %d octets, want %s of %d", l.Entry().ID, l.Message().Size(), id, len(commitContent))
	}
}
