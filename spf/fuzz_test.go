package spf_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/spf"
)

var fuzzSeeds = []string{
	"v=spf1 -all",
	"v=spf1 +all",
	"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
	"v=spf1 a mx/24//64 ptr exists:%{ir}.%{l1r+-}._spf.%{d} -all",
	"v=spf1 include:fuzz.example -all",
	"v=spf1 redirect=fuzz.example",
	"v=spf1 redirect=loop.example",
	"v=spf1 a:%{d}. mx:mx.fuzz.example//0 ?all exp=exp.fuzz.example",
	"v=spf1 exists:%{p}.%{v}.%{h}.%{s}.%{o} -all foo=%{i}",
	"v=spf1 -all exp=%{d}",
	"V=SPF1 A/0 -ALL",
	"v=spf1 a:foo.example/33",
	"v=spf1 ip4:1.2.3.4/0 ip6:::ffff:1.2.3.4/96",
	"v=spf1 include:%{d}",
	"v=spf1 %{x}",
	"v=spf1 a:a.%{d9r.-+,/_=}.example",
	"v=spf1 mx mx mx mx mx mx mx mx mx mx mx",
	"v=spf1 unknown=value moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
}

// FuzzParse: Parse never panics, and a parsed record's String parses to
// the same text.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := spf.Parse(s)
		if err != nil {
			return
		}
		text := r.String()
		r2, err := spf.Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, text, err)
		}
		if r2.String() != text {
			t.Fatalf("round trip: %q -> %q -> %q", s, text, r2.String())
		}
		if len(r2.Terms) != len(r.Terms) {
			t.Fatalf("round trip changed the number of terms: %q", s)
		}
	})
}

// FuzzCheckHost evaluates a fuzzed record served by a zone that also holds
// loops back to it: no panic, and every evaluation ends within the limits.
func FuzzCheckHost(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, "someone", false)
		f.Add(s, "", true)
	}
	f.Fuzz(func(t *testing.T, record, local string, v6 bool) {
		z := dnstest.NewZone()
		z.AddTXT("fuzz.example", record)
		z.AddTXT("loop.example", "v=spf1 include:fuzz.example redirect=fuzz.example")
		z.AddTXT("exp.fuzz.example", "%{c} %{r} %{t} %{i} %{p} not allowed for %{S}")
		z.AddIP("fuzz.example", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"))
		z.AddMX("fuzz.example", 10, "mx.fuzz.example")
		z.AddIP("mx.fuzz.example", netip.MustParseAddr("192.0.2.2"))
		ip := netip.MustParseAddr("192.0.2.1")
		if v6 {
			ip = netip.MustParseAddr("2001:db8::1")
		}
		z.AddPTR(ip, "fuzz.example")
		c, err := spf.NewChecker(z, &spf.Options{Now: func() time.Time { return time.Unix(0, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		r := c.CheckMailFrom(ctx, ip, local+"@fuzz.example", "helo.fuzz.example")
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("evaluation took %v", d)
		}
		if r.Status == "" {
			t.Fatal("empty status")
		}
		if (r.Err == nil) != (r.Status == spf.Pass) {
			t.Fatalf("status %s with err %v", r.Status, r.Err)
		}
		if r.DNSTerms > 11 || r.VoidLookups > 3 {
			t.Fatalf("limits exceeded: %d terms, %d void", r.DNSTerms, r.VoidLookups)
		}
		// Each counted term makes at most one lookup plus 10 address
		// lookups (mx) or 1 PTR + 10 (ptr); record, exp and %{p} lookups
		// add a few.
		if q := len(z.Queries()); q > 12*11+40 {
			t.Fatalf("%d queries", q)
		}
	})
}
