package relay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/queuetest"
)

func TestSpoolQueue(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, now func() time.Time) (relay.Queue, func() relay.Queue) {
		dir := t.TempDir()
		open := func() relay.Queue {
			s, err := relay.NewSpool(dir, &relay.SpoolOptions{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(), open
	})
}

// newSpool opens a spool in dir for the test, closed at its end.
func newSpool(t *testing.T, dir string, opts *relay.SpoolOptions) *relay.Spool {
	t.Helper()
	s, err := relay.NewSpool(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// spoolMessage queues a message to rcpts.
func spoolMessage(t *testing.T, q relay.Queue, content string, rcpts ...string) *relay.Entry {
	t.Helper()
	w, err := q.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	e := &relay.Entry{Envelope: relay.Envelope{From: "bounces@relay.example", To: relay.To(rcpts...)}, Sender: "alice@example.com"}
	if err := w.Commit(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

// spoolFiles lists the names in dir, its quarantine directory's with the
// prefix "quarantine/".
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, sub := range []string{"", "quarantine"} {
		des, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			if sub == "" && de.Name() == "quarantine" {
				continue
			}
			names = append(names, filepath.ToSlash(filepath.Join(sub, de.Name())))
		}
	}
	slices.Sort(names)
	return names
}

func pollSpool(t *testing.T, q relay.Queue) relay.Lease {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l, err := q.Lease(ctx)
	if err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	return l
}

// A message is an entry and a content file; Done and Abort leave nothing.
func TestSpoolFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSpool(t, dir, nil)
	if got := spoolFiles(t, dir); len(got) != 0 {
		t.Fatalf("new spool holds %v", got)
	}
	w, err := s.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "aborted")
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := spoolFiles(t, dir); len(got) != 0 {
		t.Fatalf("after Abort the spool holds %v", got)
	}

	e := spoolMessage(t, s, "Subject: x\r\n\r\n", "bob@example.org")
	if got, want := spoolFiles(t, dir), []string{e.ID + ".msg"}; !slices.Equal(got, want) {
		t.Fatalf("after Commit the spool holds %v, want %v", got, want)
	}
	// The file: a 16 KiB header region that begins with the commit record
	// (which holds the entry), then the content.
	got, err := os.ReadFile(filepath.Join(dir, e.ID+".msg"))
	if err != nil || len(got) != 16<<10+len("Subject: x\r\n\r\n") || string(got[16<<10:]) != "Subject: x\r\n\r\n" {
		t.Errorf("content file: %q, %v", got, err)
	} else if !bytes.HasPrefix(got, []byte("SMHSPOOL")) || !bytes.Contains(got[:16<<10], []byte(`"id":"`+e.ID+`"`)) {
		t.Errorf("content file's header region: %q", bytes.TrimRight(got[:16<<10], "\x00"))
	}
	if s.Len() != 1 {
		t.Errorf("Len %d, want 1", s.Len())
	}
	l := pollSpool(t, s)
	// Save writes the entry to ID.json, which Done removes too.
	if err := l.Save(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := spoolFiles(t, dir), []string{e.ID + ".json", e.ID + ".msg"}; !slices.Equal(got, want) {
		t.Fatalf("after Save the spool holds %v, want %v", got, want)
	}
	if err := l.Done(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := spoolFiles(t, dir); len(got) != 0 {
		t.Fatalf("after Done the spool holds %v", got)
	}
	if s.Len() != 0 {
		t.Errorf("Len %d after Done, want 0", s.Len())
	}
}

// Opening a spool removes what a crash left behind: temporary entries, and
// content whose entry was never written (or was removed by Done); it keeps
// every committed message.
func TestSpoolCleansUpAtOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSpool(t, dir, nil)
	kept := spoolMessage(t, s, "kept", "bob@example.org")
	s.Close()

	for name, content := range map[string]string{
		"AAAAAAAAAAAAAAAAAAAAAAAAAA.msg":      "content of a message never committed",
		"BBBBBBBBBBBBBBBBBBBBBBBBBB.json.tmp": `{"id":"BBBBBBBBBBBBBBBBBBBBBBBBBB"`,
		kept.ID + ".json.tmp":                 `{"id":"` + kept.ID + `", "half": a save`,
		"notes.txt":                           "not the spool's",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = newSpool(t, dir, nil)
	if got, want := spoolFiles(t, dir), []string{kept.ID + ".msg", "notes.txt"}; !slices.Equal(got, want) {
		t.Errorf("after open the spool holds %v, want %v", got, want)
	}
	l := pollSpool(t, s)
	if l == nil || l.Entry().ID != kept.ID {
		t.Fatalf("after open, leased %v, want %s", l, kept.ID)
	}
}

// logRecords keeps the log records of a test.
type logRecords struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// errors returns the messages of the records at error level, with their
// "id" attribute.
func (h *logRecords) errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level < slog.LevelError {
			continue
		}
		s := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "id" {
				s += " " + a.Value.String()
			}
			return true
		})
		out = append(out, s)
	}
	return out
}

// An entry that cannot be read is moved aside with its content, and
// reported; the other messages go on.
func TestSpoolQuarantine(t *testing.T) {
	t.Parallel()
	corruptions := map[string]func(t *testing.T, dir, id string){
		"record cut short": func(t *testing.T, dir, id string) {
			editRecord(t, dir, id, func(entry []byte) []byte { return entry[:len(entry)/2] }, false)
		},
		"entry cut short": func(t *testing.T, dir, id string) {
			editRecord(t, dir, id, func(entry []byte) []byte { return entry[:len(entry)/2] }, true)
		},
		"empty entry": func(t *testing.T, dir, id string) {
			editRecord(t, dir, id, func([]byte) []byte { return []byte("{}") }, true)
		},
		"other ID": func(t *testing.T, dir, id string) {
			editRecord(t, dir, id, func(entry []byte) []byte { return bytes.Replace(entry, []byte(id), []byte("ZZZZ"), 1) }, true)
		},
		"unknown status": func(t *testing.T, dir, id string) {
			editRecord(t, dir, id, func(entry []byte) []byte {
				return bytes.Replace(entry, []byte(`"pending"`), []byte(`"lost"`), 1)
			}, true)
		},
		"content cut short": func(t *testing.T, dir, id string) {
			fi, err := os.Stat(filepath.Join(dir, id+".msg"))
			if err != nil {
				t.Fatal(err)
			}
			os.Truncate(filepath.Join(dir, id+".msg"), fi.Size()-1)
		},
		"saved entry cut short": func(t *testing.T, dir, id string) {
			os.WriteFile(filepath.Join(dir, id+".json"), []byte(`{"id":"`+id+`","envelope":`), 0o600)
		},
	}
	for name, corrupt := range corruptions {
		for _, when := range []string{"at open", "at lease"} {
			if name == "saved entry cut short" && when == "at lease" {
				continue // ID.json is read when the Spool wrote it, or at open
			}
			t.Run(name+" "+when, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				logs := &logRecords{}
				opts := &relay.SpoolOptions{Logger: slog.New(logs)}
				s := newSpool(t, dir, opts)
				bad := spoolMessage(t, s, "bad", "bob@example.org")
				good := spoolMessage(t, s, "good", "carol@example.org")
				if when == "at open" {
					s.Close()
					corrupt(t, dir, bad.ID)
					s = newSpool(t, dir, opts)
				} else {
					corrupt(t, dir, bad.ID)
				}
				l := pollSpool(t, s)
				if l == nil || l.Entry().ID != good.ID {
					t.Fatalf("leased %v, want the good message %s", l, good.ID)
				}
				if l := pollSpool(t, s); l != nil {
					t.Fatalf("leased %s too", l.Entry().ID)
				}
				var want []string
				for _, ext := range []string{".json", ".msg"} {
					if _, err := os.Stat(filepath.Join(dir, bad.ID+ext)); err == nil {
						t.Errorf("%s%s still in the spool", bad.ID, ext)
					}
				}
				for _, f := range spoolFiles(t, dir) {
					if strings.HasPrefix(f, "quarantine/") {
						want = append(want, strings.TrimPrefix(f, "quarantine/"))
					}
				}
				got, err := s.Quarantined()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) || len(got) == 0 || !strings.HasPrefix(got[0], bad.ID) {
					t.Errorf("Quarantined() = %v; quarantine directory %v", got, want)
				}
				if got := logs.errors(); len(got) != 1 || got[0] != "relay: spool: entry quarantined "+bad.ID {
					t.Errorf("error records %q, want one for the quarantined entry", got)
				}
				if s.Len() != 1 {
					t.Errorf("Len %d, want 1", s.Len())
				}
			})
		}
	}
}

// A Lease waiting for a retry sleeps until it is due, on a timer: time in
// the bubble moves only when every goroutine is blocked, so a Lease that
// polled would never let it.
func TestSpoolLeaseSleepsUntilDue(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSpool(t, t.TempDir(), &relay.SpoolOptions{LeaseTime: 10 * time.Minute})
		e := spoolMessage(t, s, "x", "bob@example.org")
		l := pollSpool(t, s)
		start := time.Now()
		if err := l.Retry(t.Context(), start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got := make(chan relay.Lease)
		go func() {
			l, err := s.Lease(t.Context())
			if err != nil {
				t.Error(err)
			}
			got <- l
		}()
		l2 := <-got
		if l2.Entry().ID != e.ID || time.Since(start) != time.Hour {
			t.Errorf("leased %s after %v, want %s after 1h", l2.Entry().ID, time.Since(start), e.ID)
		}

		// A Lease waiting while another worker holds the message gets it
		// when that lease runs out.
		go func() {
			l, err := s.Lease(t.Context())
			if err != nil {
				t.Error(err)
			}
			got <- l
		}()
		start = time.Now()
		l3 := <-got
		if l3.Entry().ID != e.ID || time.Since(start) != 10*time.Minute {
			t.Errorf("leased %s after %v, want %s after the lease time, 10m", l3.Entry().ID, time.Since(start), e.ID)
		}
		if err := l2.Save(t.Context()); err == nil {
			t.Error("Save of the expired lease succeeded")
		}
		if err := l3.Done(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}

// Whatever an entry file holds, opening the spool keeps the message or
// quarantines it, entry and content; it never fails, panics or deletes.
func FuzzSpoolOpen(f *testing.F) {
	dir := f.TempDir()
	s, err := relay.NewSpool(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	w, err := s.Create(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	e := &relay.Entry{Envelope: relay.Envelope{To: relay.To("bob@example.org")}}
	if err := w.Commit(f.Context(), e); err != nil {
		f.Fatal(err)
	}
	s.Close()
	file, err := os.ReadFile(filepath.Join(dir, e.ID+".msg"))
	if err != nil {
		f.Fatal(err)
	}
	valid := file[24 : 24+binary.BigEndian.Uint32(file[20:24])]
	f.Add(valid, false)
	f.Add(valid, true)
	f.Add(valid[:len(valid)-1], false)
	f.Add([]byte(strings.Replace(string(valid), `"rcpts":[`, `"rcpts":[{"addr":"x","status":"pending"},`, 1)), false)
	f.Add([]byte("{}"), true)
	// Each entry is written in a commit record (with its CRC right), or,
	// with legacy, as the ID.json of the format before the record.
	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		dir := t.TempDir()
		const id = "AAAAAAAAAAAAAAAAAAAAAAAAAA"
		entry := []byte(strings.Replace(string(data), e.ID, id, 1))
		want := []string{id + ".msg"}
		if legacy {
			os.WriteFile(filepath.Join(dir, id+".json"), entry, 0o600)
			os.WriteFile(filepath.Join(dir, id+".msg"), []byte("x"), 0o600)
			want = []string{id + ".json", id + ".msg"}
		} else {
			if len(entry) > spoolHeaderSize-28 {
				return
			}
			head := binary.BigEndian.AppendUint64([]byte("SMHSPOOL"), 1)
			head = binary.BigEndian.AppendUint32(head, crc32.Checksum([]byte("x"), crc32.MakeTable(crc32.Castagnoli)))
			region := make([]byte, spoolHeaderSize)
			copy(region, appendRecord(head, entry))
			os.WriteFile(filepath.Join(dir, id+".msg"), append(region, 'x'), 0o600)
		}
		s, err := relay.NewSpool(dir, nil)
		if err != nil {
			t.Fatalf("NewSpool: %v", err)
		}
		defer s.Close()
		files := spoolFiles(t, dir)
		switch s.Len() {
		case 1:
			if !slices.Equal(files, want) {
				t.Fatalf("message kept, with files %v", files)
			}
			l := pollSpool(t, s)
			if l == nil || l.Entry().ID != id || string(readAll(t, l.Message())) != string(l.Entry().Header)+"x" {
				t.Fatalf("kept message not leased whole: %v", l)
			}
		case 0:
			var q []string
			for _, f := range want {
				q = append(q, "quarantine/"+f)
			}
			if !slices.Equal(files, q) {
				t.Fatalf("message not kept, files %v", files)
			}
		default:
			t.Fatalf("Len %d", s.Len())
		}
	})
}

// The commit record at the start of a spool file, as the Spool's doc
// describes it: "SMHSPOOL", the content's length (8 octets) and CRC-32C
// (4), the entry's length (4), the entry, and the CRC-32C of all before.
const spoolHeaderSize = 16 << 10

// editRecord replaces the entry in the commit record of the message id by
// edit's result; with fixCRC the record's CRC is computed anew, so that
// only the entry's own checks can tell, and without it the CRC is wrong.
func editRecord(t *testing.T, dir, id string, edit func(entry []byte) []byte, fixCRC bool) {
	t.Helper()
	path := filepath.Join(dir, id+".msg")
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte("SMHSPOOL")) {
		t.Fatalf("%s: no commit record (%v)", id, err)
	}
	n := binary.BigEndian.Uint32(data[20:24])
	entry := edit(bytes.Clone(data[24 : 24+n]))
	record := appendRecord(data[:20:20], entry)
	if !fixCRC {
		record[len(record)-1] ^= 0xff
	}
	region := make([]byte, spoolHeaderSize)
	copy(region, record)
	if err := os.WriteFile(path, append(region, data[spoolHeaderSize:]...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// appendRecord appends the entry's length, the entry and the CRC-32C of
// the whole to the first 20 octets of a commit record.
func appendRecord(head, entry []byte) []byte {
	b := binary.BigEndian.AppendUint32(head, uint32(len(entry)))
	b = append(b, entry...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// A spool opened anew on the directory of one that was abandoned (as in a
// crash: no Close, leases held) takes up every message committed and not
// done, each with the entry last saved and due at its NextAttempt: the one
// never leased, the one leased and saved, the one leased and never saved,
// at once; the one retried later, at its time. The message done and the
// one never committed are not there, nor their files.
func TestSpoolRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newManualClock()
	opts := &relay.SpoolOptions{Now: clock.Now, LeaseTime: time.Hour}
	old := newSpool(t, dir, opts)

	saved := spoolMessage(t, old, "saved", "b@example.org", "c@example.org")
	unsaved := spoolMessage(t, old, "unsaved", "d@example.org")
	retried := spoolMessage(t, old, "retried", "e@example.org")
	done := spoolMessage(t, old, "done", "f@example.org")
	leases := map[string]relay.Lease{}
	for range 4 {
		l := pollSpool(t, old)
		leases[l.Entry().ID] = l
	}
	untouched := spoolMessage(t, old, "untouched", "a@example.org")
	w, err := old.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "never committed")

	ls := leases[saved.ID]
	ls.Entry().Attempts = 1
	ls.Entry().Rcpts[0].Status = relay.RcptDelivered
	ls.Entry().Rcpts[0].Reply = &relay.Reply{Code: 250, Message: "OK"}
	if err := ls.Save(t.Context()); err != nil {
		t.Fatal(err)
	}
	retryAt := clock.Now().Add(30 * time.Minute)
	if err := leases[retried.ID].Retry(t.Context(), retryAt); err != nil {
		t.Fatal(err)
	}
	if err := leases[done.ID].Done(t.Context()); err != nil {
		t.Fatal(err)
	}
	// unsaved stays leased; old is abandoned.

	clock.Advance(time.Minute)
	s := newSpool(t, dir, opts)
	if s.Len() != 4 {
		t.Errorf("Len %d after restart, want 4", s.Len())
	}
	got := map[string]relay.Lease{}
	for {
		l := pollSpool(t, s)
		if l == nil {
			break
		}
		got[l.Entry().ID] = l
	}
	if len(got) != 3 || got[untouched.ID] == nil || got[saved.ID] == nil || got[unsaved.ID] == nil {
		var ids []string
		for id := range got {
			ids = append(ids, id)
		}
		t.Fatalf("due after restart: %v; want %s, %s, %s", ids, untouched.ID, saved.ID, unsaved.ID)
	}
	e := got[saved.ID].Entry()
	if e.Attempts != 1 || e.Rcpts[0].Status != relay.RcptDelivered || e.Rcpts[0].Reply == nil || e.Rcpts[0].Reply.Code != 250 ||
		len(e.Pending()) != 1 || e.Pending()[0].Addr != "c@example.org" {
		t.Errorf("saved entry after restart: %+v", e)
	}
	if c := string(readAll(t, got[unsaved.ID].Message())); c != "unsaved" {
		t.Errorf("content of the unsaved message %q, want %q", c, "unsaved")
	}
	if e := got[untouched.ID].Entry(); e.Attempts != 0 || len(e.Pending()) != 1 {
		t.Errorf("untouched entry after restart: %+v", e)
	}
	clock.Advance(29*time.Minute - time.Nanosecond)
	if l := pollSpool(t, s); l != nil {
		t.Fatalf("%s due before its retry time", l.Entry().ID)
	}
	clock.Advance(time.Nanosecond)
	if l := pollSpool(t, s); l == nil || l.Entry().ID != retried.ID {
		t.Fatalf("at its retry time, leased %v, want %s", l, retried.ID)
	}
	// ID.json for the entries written again (saved, retried), the commit
	// record for the others; none for the message done.
	want := []string{saved.ID + ".json", retried.ID + ".json"}
	for _, id := range []string{untouched.ID, saved.ID, unsaved.ID, retried.ID} {
		want = append(want, id+".msg")
	}
	slices.Sort(want)
	if files := spoolFiles(t, dir); !slices.Equal(files, want) {
		t.Errorf("files after restart %v, want %v", files, want)
	}
}
