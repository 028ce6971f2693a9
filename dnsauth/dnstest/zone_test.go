package dnstest_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/internal/dnsname"
)

const testZone = `
$ORIGIN example.com.
@        SOA   ns1 hostmaster 1 7200 900 1209600 300
@        NS    ns1
@        TXT   "v=spf1 " "include:_spf.example.net -all"
@        TXT   "other"
@        MX    20 mx2
@        MX    10 mx1
mx1      A     192.0.2.1
mx1      AAAA  2001:db8::1
mx2      A     192.0.2.2
www      CNAME web
web      CNAME mx1
loop1    CNAME loop2
loop2    CNAME loop1
a.b.c    TXT   "deep"
1.2.0.192.in-addr.arpa. PTR mx1
`

func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound && !de.IsTemporary
}

func temporary(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsTemporary && !de.IsNotFound
}

func TestZoneLookups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	z := dnstest.MustParseZone(testZone)

	txt, err := z.LookupTXT(ctx, "EXAMPLE.com")
	if err != nil || !slices.Equal(txt, []string{"v=spf1 include:_spf.example.net -all", "other"}) {
		t.Errorf("LookupTXT = %q, %v", txt, err)
	}
	mx, err := z.LookupMX(ctx, "example.com")
	if err != nil || len(mx) != 2 || mx[0].Host != "mx1.example.com." || mx[0].Pref != 10 {
		t.Errorf("LookupMX = %v, %v", mx, err)
	}
	ips, err := z.LookupNetIP(ctx, "ip", "www.example.com")
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if err != nil || !slices.Equal(ips, want) {
		t.Errorf("LookupNetIP through CNAMEs = %v, %v", ips, err)
	}
	ips, err = z.LookupNetIP(ctx, "ip6", "mx2.example.com")
	if !notFound(err) || ips != nil {
		t.Errorf("NODATA AAAA = %v, %v; want not found", ips, err)
	}
	cname, err := z.LookupCNAME(ctx, "www.example.com")
	if err != nil || cname != "mx1.example.com." {
		t.Errorf("LookupCNAME = %q, %v", cname, err)
	}
	names, err := z.LookupAddr(ctx, "192.0.2.1")
	if err != nil || !slices.Equal(names, []string{"mx1.example.com."}) {
		t.Errorf("LookupAddr = %q, %v", names, err)
	}
	ns, err := z.LookupNS(ctx, "example.com")
	if err != nil || len(ns) != 1 || ns[0].Host != "ns1.example.com." {
		t.Errorf("LookupNS = %v, %v", ns, err)
	}
	if _, err := z.LookupTXT(ctx, "nx.example.com"); !notFound(err) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	// b.c.example.com has no records but a name below it: it exists (RFC 8020),
	// so the answer is NODATA, with the zone's SOA for negative caching.
	if a := z.Resolve("b.c.example.com", dns.TypeTXT); a.Rcode != dns.RcodeSuccess || a.SOA == nil || a.SOA.Minttl != 300 {
		t.Errorf("empty non-terminal: %+v", a)
	}
	if a := z.Resolve("nx.example.com", dns.TypeTXT); a.Rcode != dns.RcodeNameError {
		t.Errorf("NXDOMAIN rcode = %d", a.Rcode)
	}
	if _, err := z.LookupTXT(ctx, "loop1.example.com"); !temporary(err) {
		t.Errorf("CNAME loop: %v, want a temporary error", err)
	}
	if _, err := z.LookupCNAME(ctx, "loop1.example.com"); !temporary(err) {
		t.Errorf("LookupCNAME on a loop: %v, want a temporary error", err)
	}
}

func TestZoneFailuresAndLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	z := dnstest.NewZone()
	z.AddTXT("example.org", "hello")
	z.AddIP("example.org", netip.MustParseAddr("192.0.2.7"))
	z.Fail("example.org", dns.TypeTXT, dnstest.ServFail)
	z.Fail("t.example.org", dns.TypeANY, dnstest.Timeout)

	if _, err := z.LookupTXT(ctx, "example.org"); !temporary(err) {
		t.Errorf("SERVFAIL: %v", err)
	}
	if ips, err := z.LookupNetIP(ctx, "ip4", "example.org"); err != nil || len(ips) != 1 {
		t.Errorf("failure leaked to another type: %v %v", ips, err)
	}
	_, err := z.LookupMX(ctx, "t.example.org")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout || !de.IsTemporary {
		t.Errorf("timeout: %v", err)
	}
	z.Fail("example.org", dns.TypeTXT, dnstest.NoFailure)
	if txt, err := z.LookupTXT(ctx, "example.org"); err != nil || txt[0] != "hello" {
		t.Errorf("after healing: %q %v", txt, err)
	}
	got := z.Queries()
	want := []dnstest.Query{{"example.org.", dns.TypeTXT}, {"example.org.", dns.TypeA}, {"t.example.org.", dns.TypeMX}, {"example.org.", dns.TypeTXT}}
	if !slices.Equal(got, want) {
		t.Errorf("Queries = %v, want %v", got, want)
	}
	z.ResetQueries()
	if len(z.Queries()) != 0 {
		t.Error("ResetQueries kept entries")
	}
}

func TestZoneBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	z := dnstest.NewZone()
	for _, name := range []string{
		string(slices.Repeat([]byte("a"), 64)) + ".example.com",
		string(slices.Repeat([]byte("abcdefghi."), 26)) + "com",
		"a..example.com",
	} {
		_, err := z.LookupTXT(ctx, name)
		if !notFound(err) || !errors.Is(err, dnsname.ErrInvalid) {
			t.Errorf("LookupTXT(%.20q...) = %v, want an invalid-name error", name, err)
		}
	}
	if len(z.Queries()) != 0 {
		t.Errorf("invalid names reached the zone: %v", z.Queries())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := z.LookupTXT(cctx, "example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err := dnstest.ParseZone("example.com. IN TXT"); err == nil {
		t.Error("bad zone text accepted")
	}
}

// TestReadZoneFile: a zone file's records answer; a missing file and a bad
// record give errors that name the file.
func TestReadZoneFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.zone")
	os.WriteFile(good, []byte("example.com. 300 IN TXT \"v=spf1 -all\"\n"), 0o600)
	z, err := dnstest.ReadZoneFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if txt, err := z.LookupTXT(context.Background(), "example.com"); err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Errorf("LookupTXT: %q %v", txt, err)
	}
	if _, err := dnstest.ReadZoneFile(filepath.Join(dir, "missing.zone")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.zone") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.zone")
	os.WriteFile(bad, []byte("example.com. 300 IN A not-an-address\n"), 0o600)
	if _, err := dnstest.ReadZoneFile(bad); err == nil || !strings.Contains(err.Error(), "bad.zone") {
		t.Errorf("bad record: %v", err)
	}
}
