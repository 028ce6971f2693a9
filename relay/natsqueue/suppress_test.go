package natsqueue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

var _ relay.Suppressions = (*natsqueue.Suppressions)(nil)

// TestSuppressionsAcrossInstances: a suppression added on one instance
// is seen on the other, for its account only, with the domain compared
// without case and the local part with; addresses of any octets (a
// quoted local part with spaces and dots, NATS wildcards, UTF-8) each
// have their own key; Remove on the other instance is seen on the first;
// List is oldest first.
func TestSuppressionsAcrossInstances(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	a := newSuppressions(t, kvConnect(t, s), nil)
	b := newSuppressions(t, kvConnect(t, s), nil)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	rcpts := []string{
		"Bob@Example.ORG",
		`"john doe..x"@example.org`,
		"a.*.>@example.org",
		"jörg@bücher.example",
		"$KV.x@example.org",
	}
	for i, r := range rcpts {
		if err := a.Add(ctx, relay.Suppression{Account: "shop", Recipient: r, Source: relay.SuppressedByBounce, Reason: "550 5.1.1", Created: t0.Add(time.Duration(len(rcpts)-i) * time.Minute)}); err != nil {
			t.Fatalf("Add(%q): %v", r, err)
		}
	}
	if err := a.Add(ctx, relay.Suppression{Account: "shop", Recipient: "no-domain", Source: relay.SuppressedByHand}); err == nil {
		t.Error("Add of an address without a domain: no error")
	}
	eventually(t, "the suppressions seen on the other instance", func() bool {
		l, err := b.List(ctx, "shop")
		return err == nil && len(l) == len(rcpts)
	})
	for _, tt := range []struct {
		acct, rcpt string
		want       bool
	}{
		{"shop", "Bob@example.org", true},
		{"shop", "bob@example.org", false}, // the local part keeps its case
		{"news", "Bob@Example.ORG", false}, // another account
		{"shop", `"john doe..x"@EXAMPLE.org`, true},
		{"shop", "a.*.>@example.org", true},
		{"shop", "a.x.y@example.org", false}, // no wildcard match
		{"shop", "jörg@bücher.example", true},
		{"shop", "$KV.x@example.org", true},
	} {
		got, err := b.Suppressed(ctx, tt.acct, tt.rcpt)
		if err != nil || (got != nil) != tt.want {
			t.Errorf("Suppressed(%q, %q) = %+v, %v; want suppressed %v", tt.acct, tt.rcpt, got, err, tt.want)
		}
		if got != nil && (got.Source != relay.SuppressedByBounce || got.Reason != "550 5.1.1") {
			t.Errorf("Suppressed(%q, %q) = %+v", tt.acct, tt.rcpt, got)
		}
	}
	l, _ := b.List(ctx, "")
	if len(l) != len(rcpts) || l[0].Recipient != rcpts[len(rcpts)-1] || l[len(l)-1].Recipient != rcpts[0] {
		t.Errorf("List not oldest first: %+v", l)
	}

	if err := b.Remove(ctx, "shop", "bob@EXAMPLE.org"); err != nil { // not the same local part
		t.Fatal(err)
	}
	if err := b.Remove(ctx, "shop", "Bob@EXAMPLE.org"); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Suppressed(ctx, "shop", "Bob@example.org"); got != nil {
		t.Errorf("removed, on the instance that removed it: %+v", got)
	}
	eventually(t, "the removal seen on the first instance", func() bool {
		got, err := a.Suppressed(ctx, "shop", "Bob@example.org")
		return err == nil && got == nil
	})
	if got, _ := a.Suppressed(ctx, "shop", `"john doe..x"@example.org`); got == nil {
		t.Error("Remove took another suppression with it")
	}
}

// TestSuppressionsCorruptValues: values that are no valid suppression
// (junk, a suppression under another's key, a key outside the
// suppressions) are ignored with an error in the log.
func TestSuppressionsCorruptValues(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	js := kvConnect(t, s)
	var logs logBuffer
	sup := newSuppressions(t, js, &natsqueue.SuppressionsOptions{Logger: logs.logger()})
	ctx := context.Background()
	if err := sup.Add(ctx, relay.Suppression{Account: "shop", Recipient: "b@example.org", Source: relay.SuppressedByHand}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natsqueue.DefaultSuppressionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	puts := map[string]string{
		"s.junk":      "{{{",
		"s.moved":     `{"account":"shop","recipient":"c@example.org","source":"manual","created":"2026-01-02T15:04:05Z"}`,
		"other":       `{"account":"shop","recipient":"d@example.org","source":"manual","created":"2026-01-02T15:04:05Z"}`,
		"s.badsource": `{"account":"shop","recipient":"e@example.org","source":"whim","created":"2026-01-02T15:04:05Z"}`,
	}
	for key, v := range puts {
		if _, err := kv.PutString(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	for key := range puts {
		eventually(t, "an error logged for "+key, func() bool {
			return strings.Contains(logs.String(), "level=ERROR") && strings.Contains(logs.String(), "key="+key+" ")
		})
	}
	l, err := sup.List(ctx, "")
	if err != nil || len(l) != 1 || l[0].Recipient != "b@example.org" {
		t.Errorf("List = %+v, %v; want b@example.org alone", l, err)
	}
	if got, _ := sup.Suppressed(ctx, "shop", "c@example.org"); got != nil {
		t.Errorf("a suppression under another's key counts: %+v", got)
	}
}
