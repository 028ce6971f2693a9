package dnsauth_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const zoneText = `
$ORIGIN example.com.
@        SOA   ns1 hostmaster 1 7200 900 1209600 300
@        NS    ns1
@        NS    ns2
@        TXT   "v=spf1 " "ip4:192.0.2.0/24 " "-all"
@        TXT   "google-site-verification=abc"
@   600  MX    20 mx2
@   600  MX    10 mx1
mx1  120 A     192.0.2.1
mx1      AAAA  2001:db8::1
mx2      A     192.0.2.2
www      CNAME web
web      CNAME mx1
loop1    CNAME loop2
loop2    CNAME loop1
c0 CNAME c1
c1 CNAME c2
c2 CNAME c3
c3 CNAME c4
c4 CNAME c5
c5 CNAME c6
c6 CNAME c7
c7 CNAME c8
c8 CNAME c9
c9 TXT "end"
txtonly  TXT   "x"
s1._domainkey CNAME s1.dkim.provider.net.
1.2.0.192.in-addr.arpa. PTR mx1
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR mx1
$ORIGIN provider.net.
@ SOA ns hostmaster 1 7200 900 1209600 60
s1.dkim TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
`

// setup starts a server for zoneText and a resolver that asks it.
func setup(t *testing.T, opts *dnsauth.ResolverOptions) (*dnsauth.Resolver, *dnstest.Server) {
	t.Helper()
	srv, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var o dnsauth.ResolverOptions
	if opts != nil {
		o = *opts
	}
	if o.Servers == nil {
		o.Servers = []string{srv.Addr}
	}
	if o.Timeout == 0 {
		o.Timeout = 300 * time.Millisecond
	}
	if o.Attempts == 0 {
		o.Attempts = 1
	}
	r, err := dnsauth.NewResolver(&o)
	if err != nil {
		t.Fatal(err)
	}
	return r, srv
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound && !de.IsTemporary
}

func isTemporary(err error, text string) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsTemporary && !de.IsNotFound && strings.Contains(de.Err, text)
}

func TestRecordTypes(t *testing.T) {
	t.Parallel()
	r, _ := setup(t, nil)
	ctx := context.Background()

	txt, err := r.LookupTXT(ctx, "example.com")
	if want := []string{"v=spf1 ip4:192.0.2.0/24 -all", "google-site-verification=abc"}; err != nil || !slices.Equal(txt, want) {
		t.Errorf("LookupTXT = %q, %v; want %q", txt, err, want)
	}
	mx, err := r.LookupMX(ctx, "example.com.")
	if err != nil || len(mx) != 2 || *mx[0] != (net.MX{Host: "mx1.example.com.", Pref: 10}) || *mx[1] != (net.MX{Host: "mx2.example.com.", Pref: 20}) {
		t.Errorf("LookupMX = %v, %v", mx, err)
	}
	ns, err := r.LookupNS(ctx, "example.com")
	if err != nil || len(ns) != 2 || ns[0].Host != "ns1.example.com." || ns[1].Host != "ns2.example.com." {
		t.Errorf("LookupNS = %v, %v", ns, err)
	}
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		network string
		want    []netip.Addr
	}{{"ip", []netip.Addr{v4, v6}}, {"ip4", []netip.Addr{v4}}, {"ip6", []netip.Addr{v6}}} {
		ips, err := r.LookupNetIP(ctx, tc.network, "MX1.example.com")
		if err != nil || !slices.Equal(ips, tc.want) {
			t.Errorf("LookupNetIP(%s) = %v, %v; want %v", tc.network, ips, err, tc.want)
		}
	}
	for _, addr := range []string{"192.0.2.1", "2001:db8::1"} {
		names, err := r.LookupAddr(ctx, addr)
		if err != nil || !slices.Equal(names, []string{"mx1.example.com."}) {
			t.Errorf("LookupAddr(%s) = %q, %v", addr, names, err)
		}
	}
	cname, err := r.LookupCNAME(ctx, "www.example.com")
	if err != nil || cname != "mx1.example.com." {
		t.Errorf("LookupCNAME(www) = %q, %v", cname, err)
	}
	cname, err = r.LookupCNAME(ctx, "mx2.example.com")
	if err != nil || cname != "mx2.example.com." {
		t.Errorf("LookupCNAME(no CNAME) = %q, %v", cname, err)
	}
	// A DKIM selector delegated by CNAME to a provider: the chain ends at a
	// name with a TXT record only.
	cname, err = r.LookupCNAME(ctx, "s1._domainkey.example.com")
	if err != nil || cname != "s1.dkim.provider.net." {
		t.Errorf("LookupCNAME(selector) = %q, %v", cname, err)
	}
	txt, err = r.LookupTXT(ctx, "s1._domainkey.example.com")
	if err != nil || len(txt) != 1 || !strings.HasPrefix(txt[0], "v=DKIM1; k=ed25519") {
		t.Errorf("LookupTXT through CNAME = %q, %v", txt, err)
	}
	a, err := r.Lookup(ctx, "s1._domainkey.example.com", dns.TypeCNAME)
	if err != nil || a.Records[0].(*dns.CNAME).Target != "s1.dkim.provider.net." {
		t.Errorf("Lookup CNAME = %v, %v", a, err)
	}
	if ips, err := r.LookupNetIP(ctx, "ip", "2001:db8::5"); err != nil || ips[0] != netip.MustParseAddr("2001:db8::5") {
		t.Errorf("IP literal = %v, %v", ips, err)
	}
}

func TestNegativeAndFailures(t *testing.T) {
	t.Parallel()
	r, srv := setup(t, nil)
	ctx := context.Background()
	srv.Zone.Fail("broken.example.com", dns.TypeTXT, dnstest.ServFail)
	srv.Zone.Fail("refusing.example.com", dns.TypeTXT, dnstest.Refused)
	srv.Zone.Fail("slow.example.com", dns.TypeTXT, dnstest.Timeout)

	_, err := r.LookupTXT(ctx, "nx.example.com")
	var de *net.DNSError
	if !isNotFound(err) || !errors.As(err, &de) || de.Err != "no such host" {
		t.Errorf("NXDOMAIN: %v", err)
	}
	if _, err := r.LookupTXT(ctx, "mx1.example.com"); !isNotFound(err) || !strings.Contains(err.Error(), "no records of that type") {
		t.Errorf("NODATA: %v", err)
	}
	if _, err := r.LookupTXT(ctx, "broken.example.com"); !isTemporary(err, "SERVFAIL") {
		t.Errorf("SERVFAIL: %v", err)
	}
	if _, err := r.LookupTXT(ctx, "refusing.example.com"); !isTemporary(err, "REFUSED") {
		t.Errorf("REFUSED: %v", err)
	}
	start := time.Now()
	_, err = r.LookupTXT(ctx, "slow.example.com")
	if !isTemporary(err, "timeout") || !errors.As(err, &de) || !de.IsTimeout {
		t.Errorf("timeout: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v with a 300ms timeout", d)
	}
	// The failure is not cached: once healed, the name answers.
	srv.Zone.Fail("broken.example.com", dns.TypeTXT, dnstest.NoFailure)
	srv.Zone.AddTXT("broken.example.com", "ok")
	if txt, err := r.LookupTXT(ctx, "broken.example.com"); err != nil || txt[0] != "ok" {
		t.Errorf("after SERVFAIL healed: %q, %v", txt, err)
	}
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	t.Parallel()
	r, srv := setup(t, &dnsauth.ResolverOptions{CacheSize: -1})
	ctx := context.Background()
	srv.SetTruncate(true)
	txt, err := r.LookupTXT(ctx, "example.com")
	if err != nil || len(txt) != 2 {
		t.Fatalf("forced TC: %q, %v", txt, err)
	}
	if q := srv.Zone.Queries(); len(q) != 2 {
		t.Errorf("forced TC: %d queries, want 2 (UDP then TCP): %v", len(q), q)
	}
	srv.SetTruncate(false)
	// An answer larger than the advertised EDNS0 size (1232) is truncated
	// by the server itself.
	var want []string
	for i := range 20 {
		v := fmt.Sprintf("%02d-%s", i, strings.Repeat("x", 200))
		srv.Zone.AddTXT("big.example.com", v)
		want = append(want, v)
	}
	srv.Zone.ResetQueries()
	txt, err = r.LookupTXT(ctx, "big.example.com")
	slices.Sort(txt)
	if err != nil || !slices.Equal(txt, want) {
		t.Fatalf("large answer: %d records, %v", len(txt), err)
	}
	if q := srv.Zone.Queries(); len(q) != 2 {
		t.Errorf("large answer: %d queries, want 2 (UDP then TCP)", len(q))
	}
}

func TestCNAMEChains(t *testing.T) {
	t.Parallel()
	r, _ := setup(t, nil)
	ctx := context.Background()
	// c1 to c9 is 8 links: the limit.
	if txt, err := r.LookupTXT(ctx, "c1.example.com"); err != nil || txt[0] != "end" {
		t.Errorf("8 links: %q, %v", txt, err)
	}
	// c0 to c9 is 9 links: one too many.
	if _, err := r.LookupTXT(ctx, "c0.example.com"); !isTemporary(err, "CNAME chain longer than 8") {
		t.Errorf("9 links: %v", err)
	}
	if _, err := r.LookupTXT(ctx, "loop1.example.com"); !isTemporary(err, "CNAME loop") {
		t.Errorf("loop: %v", err)
	}
	if _, err := r.LookupCNAME(ctx, "loop1.example.com"); !isTemporary(err, "CNAME loop") {
		t.Errorf("LookupCNAME on a loop: %v", err)
	}
	if _, err := r.LookupCNAME(ctx, "c0.example.com"); !isTemporary(err, "CNAME chain longer than 8") {
		t.Errorf("LookupCNAME on 9 links: %v", err)
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func(d time.Duration) { now.Add(int64(d)) }
	r, srv := setup(t, &dnsauth.ResolverOptions{Now: clock})
	ctx := context.Background()
	count := func() int { n := len(srv.Zone.Queries()); srv.Zone.ResetQueries(); return n }

	// Positive: mx1's A record has TTL 120.
	for range 3 {
		if _, err := r.LookupNetIP(ctx, "ip4", "mx1.example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 1 {
		t.Errorf("3 lookups within the TTL: %d queries, want 1", n)
	}
	advance(119 * time.Second)
	r.LookupNetIP(ctx, "ip4", "MX1.EXAMPLE.COM.")
	if n := count(); n != 0 {
		t.Errorf("at 119s of a 120s TTL (other case): %d queries, want 0", n)
	}
	advance(2 * time.Second)
	r.LookupNetIP(ctx, "ip4", "mx1.example.com")
	if n := count(); n != 1 {
		t.Errorf("after the TTL: %d queries, want 1", n)
	}

	// Negative: SOA TTL 3600, MINIMUM 300: cached for 300s (RFC 2308 §5).
	for range 2 {
		if _, err := r.LookupTXT(ctx, "nx.example.com"); !isNotFound(err) {
			t.Fatal(err)
		}
	}
	if n := count(); n != 1 {
		t.Errorf("negative answer: %d queries, want 1", n)
	}
	advance(299 * time.Second)
	_, err := r.LookupTXT(ctx, "nx.example.com")
	if n := count(); n != 0 || !isNotFound(err) {
		t.Errorf("negative at 299s: %d queries (%v), want 0", n, err)
	}
	advance(2 * time.Second)
	r.LookupTXT(ctx, "nx.example.com")
	if n := count(); n != 1 {
		t.Errorf("negative after 300s: %d queries, want 1", n)
	}
	// The provider.net zone has MINIMUM 60.
	r.LookupTXT(ctx, "nx.provider.net")
	advance(61 * time.Second)
	r.LookupTXT(ctx, "nx.provider.net")
	if n := count(); n != 2 {
		t.Errorf("negative TTL from the SOA MINIMUM 60: %d queries, want 2", n)
	}

	// A negative answer without an SOA is not cached.
	srv.Zone.Remove("example.com", dns.TypeSOA)
	r.Flush()
	r.LookupTXT(ctx, "nx.example.com")
	r.LookupTXT(ctx, "nx.example.com")
	if n := count(); n != 2 {
		t.Errorf("negative without SOA: %d queries, want 2", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	r, srv := setup(t, &dnsauth.ResolverOptions{CacheSize: 4})
	ctx := context.Background()
	for i := range 6 {
		srv.Zone.AddTXT(fmt.Sprintf("n%d.example.com", i), "v")
	}
	for i := range 6 {
		r.LookupTXT(ctx, fmt.Sprintf("n%d.example.com", i))
	}
	srv.Zone.ResetQueries()
	for i := range 6 {
		r.LookupTXT(ctx, fmt.Sprintf("n%d.example.com", i))
	}
	// With room for 4 of 6 names, at least 2 must be asked again.
	if n := len(srv.Zone.Queries()); n < 2 {
		t.Errorf("cache of 4 served 6 names with %d queries", n)
	}
}

func TestConcurrentLookupsMerge(t *testing.T) {
	t.Parallel()
	// Without a cache, only the merging of lookups in flight can make the
	// 50 lookups share one query. The server holds its answer until all 50
	// wait for that query.
	var queries atomic.Int32
	release := make(chan struct{})
	addr := badServer(t, func(q []byte) []byte {
		queries.Add(1)
		<-release
		var m dns.Msg
		m.Unpack(q)
		r := new(dns.Msg)
		r.SetReply(&m)
		for _, s := range []string{"one", "two"} {
			r.Answer = append(r.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{s}})
		}
		b, _ := r.Pack()
		return b
	})
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{addr}, CacheSize: -1, Timeout: 30 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			txt, err := r.LookupTXT(context.Background(), "example.com")
			if err == nil && len(txt) != 2 {
				err = fmt.Errorf("got %q", txt)
			}
			errs <- err
		})
	}
	for dnsauth.Waiters(r, "example.com.", dns.TypeTXT) < 50 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := queries.Load(); n != 1 {
		t.Errorf("50 concurrent lookups made %d queries, want 1", n)
	}
}

func TestContextCancellation(t *testing.T) {
	t.Parallel()
	// The server never answers and the resolver would wait 60 s: the
	// lookup must end with the context, long before.
	r, srv := setup(t, &dnsauth.ResolverOptions{Timeout: 60 * time.Second, Attempts: 1})
	srv.Zone.Fail("slow.example.com", dns.TypeTXT, dnstest.Timeout)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.LookupTXT(ctx, "slow.example.com")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 30*time.Second {
		t.Errorf("deadline: %v after %v", err, time.Since(start))
	}
}

func TestFailover(t *testing.T) {
	t.Parallel()
	good, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	failing, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	failing.Zone.Fail("example.com", dns.TypeANY, dnstest.ServFail)
	silent, err := dnstest.NewServer(dnstest.MustParseZone(zoneText))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.Zone.Fail("example.com", dns.TypeANY, dnstest.Timeout)

	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{
		Servers: []string{silent.Addr, failing.Addr, good.Addr}, Timeout: 200 * time.Millisecond, Attempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Lookup(context.Background(), "example.com", dns.TypeMX)
	if err != nil || a.Server != good.Addr || len(a.Records) != 2 {
		t.Fatalf("failover: %v, %v", a, err)
	}
	for name, s := range map[string]*dnstest.Server{"silent": silent, "failing": failing, "good": good} {
		if n := len(s.Zone.Queries()); n != 1 {
			t.Errorf("%s server asked %d times, want 1", name, n)
		}
	}
	// All servers failing: the error is temporary.
	r2, _ := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{failing.Addr}, Attempts: 2})
	if _, err := r2.LookupTXT(context.Background(), "example.com"); !isTemporary(err, "SERVFAIL") {
		t.Errorf("all failing: %v", err)
	}
	if n := len(failing.Zone.Queries()); n != 3 {
		t.Errorf("2 attempts on the failing server: %d queries in all, want 3", n)
	}
}

func TestAuthenticatedAndLookupAt(t *testing.T) {
	t.Parallel()
	r, srv := setup(t, &dnsauth.ResolverOptions{CacheSize: -1})
	ctx := context.Background()
	a, err := r.Lookup(ctx, "example.com", dns.TypeTXT)
	if err != nil || a.Authenticated {
		t.Errorf("without AD: %+v, %v", a, err)
	}
	srv.SetAuthenticated(true)
	a, err = r.Lookup(ctx, "example.com", dns.TypeTXT)
	if err != nil || !a.Authenticated || a.TTL != time.Duration(dnstest.DefaultTTL)*time.Second {
		t.Errorf("with AD: %+v, %v", a, err)
	}
	// LookupAt asks the named server, not the configured ones.
	other, _ := dnstest.NewServer(dnstest.MustParseZone("example.com. 60 TXT \"other server\""))
	defer other.Close()
	a, err = r.LookupAt(ctx, other.Addr, "example.com", dns.TypeTXT)
	if err != nil || a.Records[0].(*dns.TXT).Txt[0] != "other server" || a.Server != other.Addr || a.Authenticated {
		t.Errorf("LookupAt: %+v, %v", a, err)
	}
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	r, srv := setup(t, nil)
	for _, name := range []string{
		strings.Repeat("a", 64) + ".example.com",
		strings.Repeat("abcdefghi.", 25) + "example.com",
		"a..example.com",
		"",
	} {
		_, err := r.LookupTXT(context.Background(), name)
		if !errors.Is(err, dnsauth.ErrInvalidName) || !isNotFound(err) {
			t.Errorf("LookupTXT(%.30q) = %v, want ErrInvalidName", name, err)
		}
	}
	// 253 octets exactly is valid.
	ok := strings.Repeat("abcdefghi.", 24) + "a.example.com"
	if len(ok) != 253 {
		t.Fatalf("len = %d", len(ok))
	}
	if _, err := r.LookupTXT(context.Background(), ok); errors.Is(err, dnsauth.ErrInvalidName) {
		t.Errorf("253-octet name refused: %v", err)
	}
	if n := len(srv.Zone.Queries()); n != 1 {
		t.Errorf("%d queries, want 1 (only the valid name)", n)
	}
}

// badServer answers every UDP query with what reply makes of it.
func badServer(t *testing.T, reply func(q []byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if b := reply(buf[:n]); b != nil {
				pc.WriteTo(b, addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestGarbageAnswers(t *testing.T) {
	t.Parallel()
	answer := func(q []byte) *dns.Msg {
		var m dns.Msg
		m.Unpack(q)
		r := new(dns.Msg)
		r.SetReply(&m)
		r.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"hello"}}}
		return r
	}
	cases := map[string]struct {
		reply func(q []byte) []byte
		want  string
	}{
		"random bytes": {func([]byte) []byte { return []byte("\x00\x01garbage that is not DNS") }, "unusable answer"},
		"truncated packet": {func(q []byte) []byte {
			b, _ := answer(q).Pack()
			return b[:len(b)-5]
		}, ""},
		"mismatched ID": {func(q []byte) []byte {
			m := answer(q)
			m.Id++
			b, _ := m.Pack()
			return b
		}, "timeout"},
		"other question": {func(q []byte) []byte {
			m := answer(q)
			m.Question[0].Name = "evil.example."
			b, _ := m.Pack()
			return b
		}, "does not match"},
		"not a response (QR=0)": {func(q []byte) []byte {
			m := answer(q)
			m.Response = false
			b, _ := m.Pack()
			return b
		}, "not a response"},
		"opcode UPDATE": {func(q []byte) []byte {
			m := answer(q)
			m.Opcode = dns.OpcodeUpdate
			b, _ := m.Pack()
			return b
		}, "opcode"},
		"NXDOMAIN with the records asked": {func(q []byte) []byte {
			m := answer(q)
			m.Rcode = dns.RcodeNameError
			b, _ := m.Pack()
			return b
		}, "NXDOMAIN"},
		"FORMERR twice": {func(q []byte) []byte {
			var m dns.Msg
			m.Unpack(q)
			r := new(dns.Msg)
			r.SetRcode(&m, dns.RcodeFormatError)
			b, _ := r.Pack()
			return b
		}, "FORMERR"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := badServer(t, tc.reply)
			r, _ := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{addr}, Timeout: 200 * time.Millisecond, Attempts: 1})
			start := time.Now()
			txt, err := r.LookupTXT(context.Background(), "example.com")
			if err == nil || !isTemporary(err, tc.want) {
				t.Errorf("got %q, %v; want a temporary error with %q", txt, err, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	os.WriteFile(path, []byte("# test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions timeout:1 attempts:1\n"), 0o644)
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Servers(), []string{"192.0.2.53:53", "[2001:db8::53]:53"}; !slices.Equal(got, want) {
		t.Errorf("Servers() = %q, want %q", got, want)
	}
	r, _ = dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{"192.0.2.1", "[2001:db8::1]", "127.0.0.1:5353"}})
	if got, want := r.Servers(), []string{"192.0.2.1:53", "[2001:db8::1]:53", "127.0.0.1:5353"}; !slices.Equal(got, want) {
		t.Errorf("Servers() = %q, want %q", got, want)
	}
	// Like *net.Resolver: no resolv.conf, or one naming no server, means
	// the local host.
	local := []string{"127.0.0.1:53", "[::1]:53"}
	r, err = dnsauth.NewResolver(&dnsauth.ResolverOptions{ResolvConf: filepath.Join(dir, "missing")})
	if err != nil || !slices.Equal(r.Servers(), local) {
		t.Errorf("missing resolv.conf: %v, %v; want %q", r, err, local)
	}
	empty := filepath.Join(dir, "empty.conf")
	os.WriteFile(empty, []byte("search example.com\n"), 0o644)
	r, err = dnsauth.NewResolver(&dnsauth.ResolverOptions{ResolvConf: empty})
	if err != nil || !slices.Equal(r.Servers(), local) {
		t.Errorf("resolv.conf without nameserver: %v, %v; want %q", r, err, local)
	}
	if _, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{"x"}, UDPSize: 100}); err == nil {
		t.Error("UDPSize 100 accepted")
	}
}
