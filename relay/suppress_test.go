package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// TestMemorySuppressions: a suppression is per account; the domain of the
// recipient is compared without case and its local part with (RFC 5321
// §2.4); Add replaces; List is oldest first; Remove of a missing one is
// no error.
func TestMemorySuppressions(t *testing.T) {
	ctx := context.Background()
	var s relay.MemorySuppressions
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
		{"shop", "bob@example.org", false}, // local parts are case-sensitive
		{"news", "Bob@Example.ORG", false}, // another account
		{"news", "carol@EXAMPLE.org", true},
	} {
		got, err := s.Suppressed(ctx, tt.acct, tt.rcpt)
		if err != nil || (got != nil) != tt.want {
			t.Errorf("Suppressed(%q, %q) = %v, %v; want suppressed %v", tt.acct, tt.rcpt, got, err, tt.want)
		}
	}
	add("shop", "Bob@example.org", t0.Add(2*time.Hour)) // replaces
	all, _ := s.List(ctx, "")
	if len(all) != 2 || all[0].Account != "news" || !all[1].Created.Equal(t0.Add(2*time.Hour)) {
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
}
