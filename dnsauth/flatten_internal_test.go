package dnsauth

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/spf"
)

// flattenZone proposes the flattened SPF record of domain in the zone,
// whatever the number of its lookups, with the TXT records of the names in
// fail failing temporarily.
func flattenZone(t *testing.T, zone, domain string, fail ...string) *SPFFlattening {
	t.Helper()
	z := dnstest.MustParseZone(zone)
	for _, n := range fail {
		z.Fail(n, dns.TypeTXT, dnstest.ServFail)
	}
	srv, err := dnstest.NewServer(z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := NewResolver(&ResolverOptions{Servers: []string{srv.Addr}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := &linter{r: r, domain: domain + "."}
	top, txts, findings := l.spfRecord(ctx)
	if top == nil {
		t.Fatalf("%s: %+v", domain, findings)
	}
	w := &spfWalk{l: l, ctx: ctx, stack: []string{l.domain}}
	w.walk(top)
	fl := w.flatten(top, txts)
	if fl == nil {
		t.Fatalf("%s: no flattened record", domain)
	}
	return fl
}

// TestFlattenRules: what each kind of term becomes (RFC 7208 §5, §6), each
// expected record written from the zone by hand.
func TestFlattenRules(t *testing.T) {
	t.Parallel()
	const zone = `
$ORIGIN test.
h4       A    192.0.2.1
h6       AAAA 2001:db8:1::1
h46      A    192.0.2.2
h46      AAAA 2001:db8:2::2
mxd      MX   10 h46.test.
nets     TXT  "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:9::/48 -all"
exists   TXT  "v=spf1 ip4:198.51.100.0/24 exists:%{i}._e.exists.test ~all"
deep     TXT  "v=spf1 ip4:203.0.113.0/24 include:exists.test -all"
macro    TXT  "v=spf1 include:%{d}.nets.test"
wrap     TXT  "v=spf1 include:macro.test"
failfirst TXT "v=spf1 -ip4:198.51.100.1 ip4:198.51.100.0/24 ~all"
failafter TXT "v=spf1 ip4:203.0.113.0/25 -ip4:198.51.100.1 -exists:%{i}.bl.test ~all"
bare     TXT  "v=spf1 mx a"
bare     MX   10 h4.test.
bare     A    192.0.2.3
r-mx     TXT  "v=spf1 mx:mxd.test -all"
r-exp    TXT  "v=spf1 ip4:192.0.2.9 -all exp=why.test"
r-macro  TXT  "v=spf1 exists:%{d}.x.test -all"
loop     TXT  "v=spf1 include:loop2.test"
loop2    TXT  "v=spf1 include:loop.test"

c1 TXT "v=spf1 a:h4.test mx:mxd.test include:nets.test -all"
c2 TXT "v=spf1 include:exists.test -all"
c3 TXT "v=spf1 ~include:deep.test -all"
c4 TXT "v=spf1 include:wrap.test -all"
c5 TXT "v=spf1 include:failfirst.test include:failafter.test ?all"
c6 TXT "v=spf1 ip4:192.0.2.8 redirect=r-mx.test"
c7 TXT "v=spf1 ip4:192.0.2.8 redirect=r-exp.test"
c8 TXT "v=spf1 ip4:192.0.2.8 redirect=r-macro.test"
c9 TXT "v=spf1 a:h46.test/24//64 a:h6.test/32 -all exp=explain.test x-note=hi"
c10 TXT "v=spf1 include:bare.test -all"
c11 TXT "v=spf1 include:down.test ip4:192.0.2.8 -all"
c12 TXT "v=spf1 include:loop.test -all"
c13 TXT "v=spf1 ip4:192.0.2.0/24 a:h4.test include:nets.test ip4:198.51.100.7 -all ip4:203.0.113.1"
c14 TXT "v=spf1 -include:nets.test +all"
`
	for _, tc := range []struct {
		domain, want string
		kept         []string // the beginning of each Kept entry
		lookups      int
	}{
		// a and mx become their addresses, an include its networks
		// (its -all is dropped: in an include it only means no match).
		{"c1.test", "v=spf1 ip4:192.0.2.1 ip4:192.0.2.2 ip6:2001:db8:2::2 ip4:198.51.100.0/24 ip6:2001:db8:9::/48 -all", nil, 0},
		// An include whose record holds exists stays as written.
		{"c2.test", "v=spf1 include:exists.test -all", []string{"include:exists.test: its record holds exists:%{i}._e.exists.test"}, 2},
		// ~include: its networks take ~; the include nested in it that
		// cannot be flattened stays with ~ too.
		{"c3.test", "v=spf1 ~ip4:203.0.113.0/24 ~include:exists.test -all", []string{"~include:exists.test: its record holds exists"}, 2},
		// A record holding an include with a macro (%{d} names the
		// record's own domain) cannot be moved; an include of it can,
		// as its evaluation is the same from anywhere.
		{"c4.test", "v=spf1 include:macro.test -all", []string{"include:macro.test: its record holds include:%{d}.nets.test"}, 2},
		// A term that is not a pass before a pass: kept; after: dropped.
		{"c5.test", "v=spf1 include:failfirst.test ip4:203.0.113.0/25 ?all", []string{"include:failfirst.test: its record holds ip4:198.51.100.0/24 after a term that is not a pass"}, 1},
		// A redirect of the domain's record gives its terms, -all with
		// them.
		{"c6.test", "v=spf1 ip4:192.0.2.8 ip4:192.0.2.2 ip6:2001:db8:2::2 -all", nil, 0},
		// ... unless its record has exp= or a macro.
		{"c7.test", "v=spf1 ip4:192.0.2.8 redirect=r-exp.test", []string{"redirect=r-exp.test: its record has exp="}, 1},
		{"c8.test", "v=spf1 ip4:192.0.2.8 redirect=r-macro.test", []string{"redirect=r-macro.test: holds exists:%{d}.x.test"}, 2},
		// CIDR lengths of both families; exp= and unknown modifiers stay.
		{"c9.test", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:2::/64 ip6:2001:db8:1::1 -all exp=explain.test x-note=hi", nil, 0},
		// A bare mx or a in an included record names that record's domain.
		{"c10.test", "v=spf1 ip4:192.0.2.1 ip4:192.0.2.3 -all", nil, 0},
		// An include whose lookup failed stays.
		{"c11.test", "v=spf1 include:down.test ip4:192.0.2.8 -all", []string{"include:down.test: its lookup failed"}, 1},
		// So does a loop (receivers give permerror either way).
		{"c12.test", "v=spf1 include:loop.test -all", []string{"include:loop.test: it loops"}, 1},
		// Networks inside earlier ones are left out, as is all after all.
		{"c13.test", "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 ip6:2001:db8:9::/48 -all", nil, 0},
		// A -include of a record of networks: they fail; +all stays.
		{"c14.test", "v=spf1 -ip4:198.51.100.0/24 -ip6:2001:db8:9::/48 +all", nil, 0},
	} {
		fl := flattenZone(t, zone, strings.TrimSuffix(tc.domain, "."), "down.test")
		if got := fl.Records[0].Value; got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.domain, got, tc.want)
		}
		if len(fl.Kept) != len(tc.kept) || !slices.EqualFunc(fl.Kept, tc.kept, strings.HasPrefix) {
			t.Errorf("%s: kept %q, want %q...", tc.domain, fl.Kept, tc.kept)
		}
		if fl.Lookups != tc.lookups {
			t.Errorf("%s: %d lookups, want %d", tc.domain, fl.Lookups, tc.lookups)
		}
		sameVerdicts(t, zone, []string{"down.test"}, tc.domain, fl.Records, flattenIPs)
	}
}

// flattenIPs are the addresses of TestFlattenRules' zone, others in its
// networks, and others outside them.
var flattenIPs = []string{
	"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.8", "192.0.2.9", "192.0.2.77",
	"198.51.100.1", "198.51.100.7", "198.51.100.50", "203.0.113.1", "203.0.113.9", "10.0.0.1",
	"2001:db8:1::1", "2001:db8:2::2", "2001:db8:2::99", "2001:db8:9::5", "2001:db8:ffff::1",
}

// sameVerdicts checks that check_host() gives every address in ips the
// same result (RFC 7208 §2.6) with the flattened records recs published
// instead of the domain's record as with the zone as it is, without the
// limits of §4.6.4, which flattening is there to meet. The TXT records of
// the names in fail fail temporarily in both.
func sameVerdicts(t *testing.T, zone string, fail []string, domain string, recs []Record, ips []string) {
	t.Helper()
	sameVerdictsOf(t, func() *dnstest.Zone { return dnstest.MustParseZone(zone) }, fail, domain, recs, ips)
}

// sameVerdictsOf is sameVerdicts with the zone that zone makes.
func sameVerdictsOf(t *testing.T, zone func() *dnstest.Zone, fail []string, domain string, recs []Record, ips []string) {
	t.Helper()
	before, after := zone(), zone()
	after.Remove(domain, dns.TypeTXT)
	for _, r := range recs {
		after.AddTXT(r.Name, r.Value)
	}
	for _, n := range fail {
		before.Fail(n, dns.TypeTXT, dnstest.ServFail)
		after.Fail(n, dns.TypeTXT, dnstest.ServFail)
	}
	opts := &spf.Options{MaxDNSTerms: 1000, MaxVoidLookups: 1000}
	c1, err := spf.NewChecker(before, opts)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := spf.NewChecker(after, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range ips {
		ip := netip.MustParseAddr(s)
		r1 := c1.CheckHost(ctx, ip, domain, "postmaster@"+domain)
		r2 := c2.CheckHost(ctx, ip, domain, "postmaster@"+domain)
		if r1.Status != r2.Status {
			t.Errorf("%s, %s: %s with the record as published (%v), %s flattened (%v)", domain, ip, r1.Status, r1.Err, r2.Status, r2.Err)
		}
	}
}

// FuzzFlatten: whatever the domain's SPF record, over a zone of includes,
// addresses and MX records, the flattened records parse, each fits its
// answer unless kept terms make it long, and check_host() decides as with
// the record as published.
func FuzzFlatten(f *testing.F) {
	const zone = `
$ORIGIN test.
h4    A    192.0.2.1
h46   A    192.0.2.2
h46   AAAA 2001:db8:2::2
mxd   MX   10 h46.test.
mxd   MX   20 h4.test.
nets  TXT  "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:9::/48 -all"
mix   TXT  "v=spf1 ip4:203.0.113.0/25 -ip4:198.51.100.1 a:h4.test ~all"
red   TXT  "v=spf1 mx:mxd.test redirect=nets.test"
inc   TXT  "v=spf1 include:nets.test include:mix.test ?all"
ex    TXT  "v=spf1 exists:%{i}.ex.test -all"
192.0.2.9.ex.test. A 127.0.0.2
`
	for _, s := range []string{
		"v=spf1 a:h4.test mx:mxd.test include:nets.test -all",
		"v=spf1 include:inc.test include:red.test ~include:ex.test ?all",
		"v=spf1 -include:mix.test a:h46.test/24//64 redirect=red.test",
		"v=spf1 ip4:192.0.2.0/25 include:nx.test ptr exp=x.test -all",
		"v=spf1 include:fuzz.test +all",
		"v=spf1 " + strings.Repeat("ip4:192.0.2.1 include:inc.test ", 6) + "-all",
	} {
		f.Add(s)
	}
	base := dnstest.MustParseZone(zone)
	srv, err := dnstest.NewServer(base)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	r, err := NewResolver(&ResolverOptions{Servers: []string{srv.Addr}, Timeout: time.Second, Attempts: 1, CacheSize: -1})
	if err != nil {
		f.Fatal(err)
	}
	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.9", "192.0.2.77", "198.51.100.1", "198.51.100.7",
		"203.0.113.1", "203.0.113.200", "2001:db8:2::2", "2001:db8:2::9", "2001:db8:9::5", "2001:db8:ffff::1"}
	f.Fuzz(func(t *testing.T, record string) {
		if !spf.IsSPF(record) || len(record) > 2000 {
			return
		}
		if _, err := spf.Parse(record); err != nil {
			return
		}
		base.Remove("fuzz.test", dns.TypeTXT)
		base.AddTXT("fuzz.test", record)
		ctx := context.Background()
		l := &linter{r: r, domain: "fuzz.test."}
		top, txts, _ := l.spfRecord(ctx)
		if top == nil {
			t.Fatalf("%q: no record found", record)
		}
		w := &spfWalk{l: l, ctx: ctx, stack: []string{l.domain}}
		w.walk(top)
		fl := w.flatten(top, txts)
		if fl == nil {
			t.Fatalf("%q: no flattened record", record)
		}
		for i, rec := range fl.Records {
			if _, err := spf.Parse(rec.Value); err != nil {
				t.Fatalf("%q: flattened %q: %v", record, rec.Value, err)
			}
			if i > 0 && len(rec.Name)+len(rec.Value) > spfMaxAnswer {
				t.Fatalf("%q: %s is %d octets", record, rec.Name, len(rec.Name)+len(rec.Value))
			}
		}
		sameVerdictsOf(t, func() *dnstest.Zone {
			z := dnstest.MustParseZone(zone)
			z.AddTXT("fuzz.test", record)
			return z
		}, nil, "fuzz.test", fl.Records, ips)
	})
}
