package dnsauth_test

import (
	"context"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// BenchmarkLookupTXTCached measures a lookup answered from the cache.
func BenchmarkLookupTXTCached(b *testing.B) {
	srv, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	r, _ := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	ctx := context.Background()
	for _, name := range []string{"example.com.", "Example.COM"} {
		b.Run(name, func(b *testing.B) {
			if _, err := r.LookupTXT(ctx, name); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.LookupTXT(ctx, name)
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.LookupTXT(ctx, "example.com.")
			}
		})
	})
}
