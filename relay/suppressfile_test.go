package relay_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

var _ relay.Suppressions = (*relay.SuppressionFile)(nil)

func openSuppressions(t testing.TB, path string) *relay.SuppressionFile {
	t.Helper()
	s, err := relay.OpenSuppressionFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSuppressionFileRoundTrip: what Add writes, a SuppressionFile opened
// anew on the file reads back field for field, and the file is the JSON
// of the documented format.
func TestSuppressionFileRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "suppressions.json")
	s := openSuppressions(t, path)
	want := relay.Suppression{Account: "shop", Recipient: "bob@example.org", Source: relay.SuppressedByBounce,
		Reason: "550 5.1.1 user unknown", QueueID: "Q0001", Created: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	if err := s.Add(ctx, want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"version": 1`, `"account": "shop"`, `"recipient": "bob@example.org"`, `"source": "bounce"`,
		`"reason": "550 5.1.1 user unknown"`, `"queue_id": "Q0001"`, `"created": "2026-12-03T10:00:00Z"`} {
		if !strings.Contains(string(text), frag) {
			t.Errorf("file lacks %s:\n%s", frag, text)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	again := openSuppressions(t, path)
	got, err := again.Suppressed(ctx, "shop", "bob@example.org")
	if err != nil || got == nil || *got != want {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want)
	}
	l, err := again.List(ctx, "")
	if err != nil || len(l) != 1 || l[0] != want {
		t.Errorf("List = %+v, %v", l, err)
	}
}

// TestSuppressionFileCases runs the cases of TestMemorySuppressions on a
// file: per account, domain without case, local part with (RFC 5321
// §2.4), Add replaces, List oldest first, Remove of a missing one is no
// error.
func TestSuppressionFileCases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openSuppressions(t, filepath.Join(t.TempDir(), "s.json"))
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	add := func(acct, rcpt string, at time.Time) {
		t.Helper()
		if err := s.Add(ctx, relay.Suppression{Account: acct, Recipient: rcpt, Source: relay.SuppressedByBounce, Created: at}); err != nil {
			t.Fatal(err)
		}
	}
	add("shop", "Bob@Example.ORG", t0.Add(time.Hour))
	add("news", "carol@example.org", t0)
	for _, tt := range []struct {
		acct, rcpt string
		want       bool
	}{
		{"shop", "Bob@example.org", true},
		{"shop", "bob@example.org", false},
		{"news", "Bob@Example.ORG", false},
		{"news", "carol@EXAMPLE.org", true},
	} {
		got, err := s.Suppressed(ctx, tt.acct, tt.rcpt)
		if err != nil || (got != nil) != tt.want {
			t.Errorf("Suppressed(%q, %q) = %v, %v; want suppressed %v", tt.acct, tt.rcpt, got, err, tt.want)
		}
	}
	add("shop", "Bob@example.org", t0.Add(2*time.Hour))
	all, _ := s.List(ctx, "")
	if len(all) != 2 || all[0].Account != "news" || !all[1].Created.Equal(t0.Add(2*time.Hour)) || all[1].Recipient != "Bob@example.org" {
		t.Errorf("List = %+v", all)
	}
	if err := s.Remove(ctx, "shop", "Bob@EXAMPLE.org"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "shop", "nobody@example.org"); err != nil {
		t.Errorf("Remove of a missing one: %v", err)
	}
	if l, _ := s.List(ctx, "shop"); len(l) != 0 {
		t.Errorf("after Remove, List(shop) = %+v", l)
	}
	if err := s.Add(ctx, relay.Suppression{Account: "shop", Recipient: "no-domain", Source: relay.SuppressedByHand}); err == nil {
		t.Error("Add of an address without a domain: no error")
	}
	if err := s.Add(ctx, relay.Suppression{Account: "shop", Recipient: "a@example.org", Source: "guess"}); err == nil {
		t.Error("Add of an unknown source: no error")
	}
}

// TestSuppressionFileSeesOtherWriters: a change by another
// SuppressionFile of the file, and a file renamed over it from outside,
// are seen by the next Suppressed.
func TestSuppressionFileSeesOtherWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.json")
	served := openSuppressions(t, path)
	admin := openSuppressions(t, path)
	if got, _ := served.Suppressed(ctx, "shop", "bob@example.org"); got != nil {
		t.Fatalf("suppressed before any Add: %+v", got)
	}
	if err := admin.Add(ctx, relay.Suppression{Account: "shop", Recipient: "bob@example.org", Source: relay.SuppressedByHand, Reason: "asked"}); err != nil {
		t.Fatal(err)
	}
	got, err := served.Suppressed(ctx, "shop", "bob@example.org")
	if err != nil || got == nil || got.Reason != "asked" {
		t.Fatalf("after another's Add: %+v, %v", got, err)
	}
	// An outside program writes a new version and renames it over.
	text := `{"version": 1, "suppressions": [{"account": "news", "recipient": "carol@example.org", "source": "spamreport", "created": "2026-12-03T10:00:00Z"}]}`
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if got, err := served.Suppressed(ctx, "shop", "bob@example.org"); err != nil || got != nil {
		t.Errorf("bob after the outside change: %+v, %v; want none", got, err)
	}
	got, err = served.Suppressed(ctx, "news", "carol@example.org")
	if err != nil || got == nil || got.Source != relay.SuppressedBySpamReport {
		t.Errorf("carol after the outside change: %+v, %v", got, err)
	}
}

// TestSuppressionFileCorrupt: a file that cannot be read is refused at
// open with an error naming the file and the fault, and a change that
// makes it unreadable is an error of Suppressed, List and Add, never an
// empty list.
func TestSuppressionFileCorrupt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct{ name, text, want string }{
		{"truncated", `{"version": 1, "suppressions": [{"account": "shop"`, "unexpected EOF"},
		{"unknown field", `{"version": 1, "suppressions": [], "extra": 1}`, `unknown field "extra"`},
		{"version", `{"version": 2, "suppressions": []}`, "version 2, not 1"},
		{"twice", `{"version": 1, "suppressions": [{"account": "a", "recipient": "x@EXAMPLE.org", "source": "manual", "created": "2026-12-03T10:00:00Z"}, {"account": "a", "recipient": "x@example.org", "source": "manual", "created": "2026-12-03T10:00:00Z"}]}`, "twice"},
		{"no account", `{"version": 1, "suppressions": [{"recipient": "x@example.org", "source": "manual", "created": "2026-12-03T10:00:00Z"}]}`, "suppression 1: no account"},
		{"trailing", `{"version": 1, "suppressions": []} {}`, "data after the JSON object"},
	} {
		path := filepath.Join(t.TempDir(), "s.json")
		if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := relay.OpenSuppressionFile(ctx, path, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: OpenSuppressionFile: %v; want an error naming %s and %q", tt.name, err, path, tt.want)
		}
	}

	path := filepath.Join(t.TempDir(), "s.json")
	s := openSuppressions(t, path)
	if err := s.Add(ctx, relay.Suppression{Account: "shop", Recipient: "bob@example.org", Source: relay.SuppressedByHand}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"version": 1, "suppressions": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Suppressed(ctx, "shop", "bob@example.org"); err == nil {
		t.Errorf("Suppressed after a corrupting edit: %+v, nil; want an error", got)
	}
	if _, err := s.List(ctx, ""); err == nil {
		t.Error("List after a corrupting edit: no error")
	}
	if err := s.Add(ctx, relay.Suppression{Account: "shop", Recipient: "eve@example.org", Source: relay.SuppressedByHand}); err == nil {
		t.Error("Add to a corrupt file: no error")
	}
	if text, _ := os.ReadFile(path); string(text) != `{"version": 1, "suppressions": [` {
		t.Errorf("Add changed a corrupt file: %s", text)
	}
}

// TestSuppressionFileConcurrentAdd: goroutines adding at once through two
// SuppressionFiles of one file (as two processes would) lose nothing.
func TestSuppressionFileConcurrentAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.json")
	files := []*relay.SuppressionFile{openSuppressions(t, path), openSuppressions(t, path)}
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := files[i%2]
			if err := s.Add(ctx, relay.Suppression{Account: "shop", Recipient: fmt.Sprintf("r%d@example.org", i), Source: relay.SuppressedByBounce}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	fresh := openSuppressions(t, path)
	l, err := fresh.List(ctx, "shop")
	if err != nil || len(l) != n {
		t.Fatalf("List: %d suppressions, %v; want %d", len(l), err, n)
	}
	for i := range n {
		if got, err := files[(i+1)%2].Suppressed(ctx, "shop", fmt.Sprintf("r%d@example.org", i)); err != nil || got == nil {
			t.Errorf("r%d: %+v, %v", i, got, err)
		}
	}
}
