package benchcmp_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	blitiri "blitiri.com.ar/go/spf"
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/spf"
)

// providerZone is a large provider's SPF tree: the customer's record has
// mx and a, then includes nested 4 levels deep with 34 ip4/ip6 ranges.
const providerZone = `
example.com.      TXT  "v=spf1 mx a include:_spf.provider.example ~all"
example.com.      MX   10 mx1.example.com.
example.com.      MX   20 mx2.example.com.
example.com.      A    198.51.100.10
mx1.example.com.  A    198.51.100.11
mx2.example.com.  A    198.51.100.12
_spf.provider.example.        TXT "v=spf1 include:_netblocks.provider.example include:_netblocks2.provider.example include:_netblocks3.provider.example ~all"
_netblocks.provider.example.  TXT "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:66.102.0.0/20 ip4:66.249.80.0/20 ip4:72.14.192.0/18 ip4:74.125.0.0/16 ip4:108.177.8.0/21 ip4:173.194.0.0/16 ip4:209.85.128.0/17 ip4:216.58.192.0/19 ip4:216.239.32.0/19 include:_netblocks4.provider.example ~all"
_netblocks2.provider.example. TXT "v=spf1 ip6:2001:4860:4000::/36 ip6:2404:6800:4000::/36 ip6:2607:f8b0:4000::/36 ip6:2800:3f0:4000::/36 ip6:2a00:1450:4000::/36 ip6:2c0f:fb50:4000::/36 ~all"
_netblocks3.provider.example. TXT "v=spf1 ip4:172.217.0.0/19 ip4:172.217.32.0/20 ip4:172.217.128.0/19 ip4:172.217.160.0/20 ip4:172.217.192.0/19 ip4:172.253.56.0/21 ip4:172.253.112.0/20 ip4:108.177.96.0/19 ip4:35.191.0.0/16 ip4:130.211.0.0/22 ~all"
_netblocks4.provider.example. TXT "v=spf1 ip4:198.18.0.0/24 ip4:198.18.1.0/24 ip6:2001:db8:aaaa::/48 include:_netblocks5.provider.example ~all"
_netblocks5.provider.example. TXT "v=spf1 ip4:198.18.2.0/24 ip4:198.18.3.0/24 ip6:2001:db8:bbbb::/48 ?all"
`

// memResolver answers from records precomputed from a zone, without
// copying, so a benchmark measures the SPF evaluation rather than the
// fixture. It satisfies both spf.Resolver and blitiri's DNSResolver.
type memResolver struct {
	txt  map[string][]string
	mx   map[string][]*net.MX
	ip4  map[string][]netip.Addr
	ip6  map[string][]netip.Addr
	ipa  map[string][]net.IPAddr
	ptr  map[string][]string
	miss error
}

func newMemResolver(t testing.TB, zone string) *memResolver {
	m := &memResolver{txt: map[string][]string{}, mx: map[string][]*net.MX{}, ip4: map[string][]netip.Addr{},
		ip6: map[string][]netip.Addr{}, ipa: map[string][]net.IPAddr{}, ptr: map[string][]string{}}
	zp := dns.NewZoneParser(strings.NewReader(zone), ".", "")
	zp.SetDefaultTTL(3600)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		n := strings.ToLower(rr.Header().Name)
		switch rr := rr.(type) {
		case *dns.TXT:
			m.txt[n] = append(m.txt[n], strings.Join(rr.Txt, ""))
		case *dns.MX:
			m.mx[n] = append(m.mx[n], &net.MX{Host: rr.Mx, Pref: rr.Preference})
		case *dns.A:
			a, _ := netip.AddrFromSlice(rr.A.To4())
			m.ip4[n] = append(m.ip4[n], a)
			m.ipa[n] = append(m.ipa[n], net.IPAddr{IP: rr.A})
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(rr.AAAA)
			m.ip6[n] = append(m.ip6[n], a)
			m.ipa[n] = append(m.ipa[n], net.IPAddr{IP: rr.AAAA})
		case *dns.PTR:
			m.ptr[n] = append(m.ptr[n], rr.Ptr)
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	m.miss = &net.DNSError{Err: "no such host", IsNotFound: true}
	return m
}

func key(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (m *memResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := m.txt[key(name)]; ok {
		return v, nil
	}
	return nil, m.miss
}

func (m *memResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if v, ok := m.mx[key(name)]; ok {
		return v, nil
	}
	return nil, m.miss
}

func (m *memResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	var v []netip.Addr
	switch network {
	case "ip4":
		v = m.ip4[key(host)]
	case "ip6":
		v = m.ip6[key(host)]
	default:
		v = append(m.ip4[key(host)], m.ip6[key(host)]...)
	}
	if len(v) == 0 {
		return nil, m.miss
	}
	return v, nil
}

func (m *memResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if v, ok := m.ipa[key(host)]; ok {
		return v, nil
	}
	return nil, m.miss
}

func (m *memResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, m.miss
	}
	if v, ok := m.ptr[rev]; ok {
		return v, nil
	}
	return nil, m.miss
}

// zoneAdapter gives a dnstest.Zone the LookupIPAddr blitiri asks for (A
// and AAAA, as *net.Resolver.LookupIPAddr does).
type zoneAdapter struct{ *dnstest.Zone }

func (z zoneAdapter) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := z.LookupNetIP(ctx, "ip", host)
	out := make([]net.IPAddr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, net.IPAddr{IP: net.IP(a.AsSlice())})
	}
	return out, err
}

type bothResolver interface {
	spf.Resolver
	blitiri.DNSResolver
}

func benchSPF(b *testing.B, r bothResolver, ip netip.Addr, want spf.Status) {
	ctx := context.Background()
	c, err := spf.NewChecker(r, nil)
	if err != nil {
		b.Fatal(err)
	}
	const helo, sender = "mail.example.com", "alice@example.com"
	if got := c.CheckMailFrom(ctx, ip, sender, helo); got.Status != want {
		b.Fatalf("ours: %s (%v), want %s\n%s", got.Status, got.Err, want, got.Trace)
	}
	nip := net.IP(ip.AsSlice())
	if got, err := blitiri.CheckHostWithSender(nip, helo, sender, blitiri.WithResolver(r), blitiri.WithContext(ctx)); string(got) != string(want) {
		b.Fatalf("blitiri: %s (%v), want %s", got, err, want)
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			c.CheckMailFrom(ctx, ip, sender, helo)
		}
		reportCPU(b, start)
	})
	// A new Checker per evaluation: every record is parsed again, as
	// blitiri does.
	b.Run("ours-uncached", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			c, _ := spf.NewChecker(r, nil)
			c.CheckMailFrom(ctx, ip, sender, helo)
		}
		reportCPU(b, start)
	})
	b.Run("blitiri", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			blitiri.CheckHostWithSender(nip, helo, sender, blitiri.WithResolver(r), blitiri.WithContext(ctx))
		}
		reportCPU(b, start)
	})
}

// cpuTime is the process's user+system CPU time. On a shared, loaded
// machine the wall time per op swings with scheduling; CPU time per op
// ("cpu-ns/op", GC work included) is steadier.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkSPF evaluates the provider tree for an address that matches
// nothing and falls through to ~all (softfail), and for one that matches
// in the deepest include (pass), with ours and blitiri's spf on the same
// in-memory answers.
func BenchmarkSPF(b *testing.B) {
	r := newMemResolver(b, providerZone)
	b.Run("miss", func(b *testing.B) { benchSPF(b, r, netip.MustParseAddr("203.0.113.77"), spf.SoftFail) })
	b.Run("deep-pass", func(b *testing.B) { benchSPF(b, r, netip.MustParseAddr("130.211.1.1"), spf.Pass) })
}

// BenchmarkSPFZone is BenchmarkSPF's miss served by a dnstest.Zone (which
// copies records and logs every query) instead of precomputed answers.
func BenchmarkSPFZone(b *testing.B) {
	z := dnstest.MustParseZone(providerZone)
	benchSPF(b, zoneAdapter{z}, netip.MustParseAddr("203.0.113.77"), spf.SoftFail)
}
