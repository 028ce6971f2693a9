package srs_test

import (
	"context"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/srs"
)

// BenchmarkForwardReverse measures one Forward + Reverse pair (target: at
// most 2 µs and 6 allocations per pair).
func BenchmarkForwardReverse(b *testing.B) {
	now := time.Unix(1577836860, 0)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		addr string
		opts srs.Options
	}{
		{"SRS0", "alice.smith+tag@customer.example", srs.Options{}},
		{"SRS1", "SRS0=HHHH=2W=customer.example=alice@hop1.example", srs.Options{}},
		{"SRS0-3secrets", "alice.smith+tag@customer.example", srs.Options{Secrets: []string{"new", "older", "tops3cr3t"}}},
		{"database", "alice.smith+tag@customer.example", srs.Options{Store: &srs.MemoryStore{Now: func() time.Time { return now }}, StoreMode: srs.StoreAll}},
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
			r, err := srs.New(&signer)
			if err != nil {
				b.Fatal(err)
			}
			v, err := srs.New(&opts)
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
