package srs_test

import (
	"context"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/srs"
)

// BenchmarkForwardReverse measures one Forward + Reverse pair (target: at
// most 2 µs and 6 allocations per pair). The peer sub-benchmark does the
// same pair through postsrsd 1.10's TCP lookup tables, for scale: that is
// what a relay using postsrsd pays per message.
func BenchmarkForwardReverse(b *testing.B) {
	b.Run("peer=postsrsd-1.10-tcp", func(b *testing.B) {
		p := startPostsrsd(b, "relay.example", []string{"tops3cr3t"})
		const addr = "alice.smith+tag@customer.example"
		b.SetBytes(int64(len(addr)))
		b.ReportAllocs()
		for b.Loop() {
			code, out := p.fwd.get(b, addr)
			if code != 200 {
				b.Fatal(out)
			}
			if code, back := p.rev.get(b, out); code != 200 || back != addr {
				b.Fatal(back)
			}
		}
	})
	now := time.Unix(1577836860, 0)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		addr string
		opts testOpts
	}{
		{"SRS0", "alice.smith+tag@customer.example", testOpts{}},
		{"SRS1", "SRS0=HHHH=2W=customer.example=alice@hop1.example", testOpts{}},
		{"SRS0-3secrets", "alice.smith+tag@customer.example", testOpts{Secrets: []string{"new", "older", "tops3cr3t"}}},
		{"database", "alice.smith+tag@customer.example", testOpts{Options: srs.Options{Store: &srs.MemoryStore{Now: func() time.Time { return now }}, StoreMode: srs.StoreAll}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := bc.opts
			opts.Domain = "relay.example"
			if opts.Secrets == nil {
				opts.Secrets = []string{"tops3cr3t"}
			}
			signer := opts
			signer.Secrets = opts.Secrets[len(opts.Secrets)-1:] // worst case: the last secret verifies
			opts.Now = func() time.Time { return now }
			signer.Now = opts.Now
			r, err := signer.new()
			if err != nil {
				b.Fatal(err)
			}
			v, err := opts.new()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bc.addr)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := r.Forward(ctx, bc.addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := v.Reverse(ctx, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
