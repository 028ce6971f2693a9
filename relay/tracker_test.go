package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// trackClock is a clock tests move by hand.
type trackClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *trackClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *trackClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func trackRec(id string, created time.Time) *relay.TrackRecord {
	return &relay.TrackRecord{ID: id, QueueID: "Q-" + id, MessageID: "<" + id + "@customer.example>",
		Account: "shop", Sender: "orders@customer.example", Rcpts: []string{"buyer@example.net"}, Created: created.UTC()}
}

func TestFileTracker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracking.jsonl")
	clock := &trackClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	opts := &relay.FileTrackerOptions{Now: clock.now}
	a, err := relay.NewFileTracker(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := relay.NewFileTracker(path, opts) // another process's view
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r1 := trackRec("aaaaaaaa", clock.now())
	if err := a.Record(ctx, r1); err != nil {
		t.Fatal(err)
	}
	for name, tr := range map[string]*relay.FileTracker{"writer": a, "other": b} {
		got, err := tr.Lookup(ctx, "AAAAAAAA")
		if err != nil || !reflect.DeepEqual(got, r1) {
			t.Errorf("%s: Lookup = %+v, %v; want %+v", name, got, err, r1)
		}
		if got, err := tr.Lookup(ctx, "bbbbbbbb"); got != nil || err != nil {
			t.Errorf("%s: unknown id: %+v, %v", name, got, err)
		}
	}
	// A file opened anew has it; a partial last line (a write under way)
	// and a corrupt one are skipped.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "not json\n{\"id\":\"cccccccc\",\"queue_id\":")
	f.Close()
	c, err := relay.NewFileTracker(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, _ := c.Lookup(ctx, "aaaaaaaa"); !reflect.DeepEqual(got, r1) {
		t.Errorf("reopened: Lookup = %+v", got)
	}
	if c.Len() != 1 {
		t.Errorf("reopened: %d records, want 1", c.Len())
	}
	// The next record after the partial line is not joined to it.
	r2 := trackRec("dddddddd", clock.now().Add(time.Hour))
	if err := c.Record(ctx, r2); err != nil {
		t.Fatal(err)
	}
	e, err := relay.NewFileTracker(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got, _ := e.Lookup(ctx, "dddddddd"); !reflect.DeepEqual(got, r2) {
		t.Errorf("the record after a partial line: Lookup = %+v", got)
	}
	if got, _ := e.Lookup(ctx, "cccccccc"); got != nil {
		t.Errorf("the partial line read as %+v", got)
	}
	// Retention: 30 days by default.
	clock.add(30*24*time.Hour - time.Second)
	if got, _ := a.Lookup(ctx, "aaaaaaaa"); got == nil {
		t.Errorf("record gone before 30 days")
	}
	clock.add(2 * time.Second)
	if got, _ := a.Lookup(ctx, "aaaaaaaa"); got != nil {
		t.Errorf("record kept after 30 days: %+v", got)
	}
	d, err := relay.NewFileTracker(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Len() != 1 {
		t.Errorf("expired record read from the file: %d records, want only dddddddd", d.Len())
	}
}

func TestFileTrackerBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracking.jsonl")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	opts := &relay.FileTrackerOptions{MaxRecords: 10, Now: func() time.Time { return now }}
	a, err := relay.NewFileTracker(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const n = 2000
	for i := range n {
		if err := a.Record(ctx, trackRec(fmt.Sprintf("id%06d", i), now)); err != nil {
			t.Fatal(err)
		}
	}
	if a.Len() != 10 {
		t.Errorf("%d records held, want 10", a.Len())
	}
	if got, _ := a.Lookup(ctx, fmt.Sprintf("id%06d", n-11)); got != nil {
		t.Errorf("the 11th newest record is kept")
	}
	if got, _ := a.Lookup(ctx, fmt.Sprintf("id%06d", n-10)); got == nil {
		t.Errorf("the 10th newest record is gone")
	}
	// The file was compacted: it holds fewer lines than records written,
	// and the newest ones.
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(text, []byte("\n"))
	if lines >= n || lines > 2*10+1024 {
		t.Errorf("%d lines in the file after %d records, want it compacted", lines, n)
	}
	b, err := relay.NewFileTracker(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := b.Lookup(ctx, fmt.Sprintf("id%06d", n-1)); got == nil {
		t.Errorf("the newest record is not in the compacted file")
	}
}

func TestServerTracksReturnPath(t *testing.T) {
	t.Parallel()
	tr := &relay.MemoryTracker{}
	fx := srvStart(t, func(o *relay.ServerOptions) { o.Tracker = tr })
	to := []string{"buyer@example.net", "second@example.org"}
	if _, err := srvSend(t, fx, srvKey, "orders@customer.example", to, srvMessage); err != nil {
		t.Fatal(err)
	}
	entries, _ := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued", len(entries))
	}
	e := entries[0]
	id, ok := relay.ReturnPathID(e.Envelope.From)
	if !ok {
		t.Fatalf("Envelope.From %q is no return path", e.Envelope.From)
	}
	got, err := tr.Lookup(context.Background(), id)
	if err != nil || got == nil {
		t.Fatalf("Lookup(%q) = %+v, %v", id, got, err)
	}
	want := relay.TrackRecord{ID: id, QueueID: e.ID, MessageID: e.MessageID, Account: "shop",
		Sender: "orders@customer.example", Rcpts: to, Created: e.Created}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("record\n%+v\nwant\n%+v", *got, want)
	}

	// A message of a domain without a return path (SRS) is not tracked.
	tr2 := &countingTracker{}
	fx2 := srvStart(t, func(o *relay.ServerOptions) { o.Tracker = tr2; o.ReturnPaths = nil })
	if _, err := srvSend(t, fx2, srvKey, "orders@customer.example", to, srvMessage); err != nil {
		t.Fatal(err)
	}
	if e2, _ := fx2.q.stored(); len(e2) != 1 || e2[0].Envelope.From[:5] != "SRS0=" {
		t.Fatalf("not SRS: %+v", e2)
	}
	tr2.mu.Lock()
	defer tr2.mu.Unlock()
	if tr2.n != 0 {
		t.Errorf("SRS message tracked: %d records", tr2.n)
	}
}

// countingTracker counts the records made.
type countingTracker struct {
	relay.MemoryTracker
	mu sync.Mutex
	n  int
}

func (c *countingTracker) Record(ctx context.Context, r *relay.TrackRecord) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.MemoryTracker.Record(ctx, r)
}
