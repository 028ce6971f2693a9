package dnsauth_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/spf"
)

// agreeZone holds what the shared table asks about: an SPF record whose
// exists: term puts the local part into a name, TXT data with a quote, a
// backslash and non-ASCII octets, an explanation in non-ASCII, and a label
// holding a dot (a\.b) that a backslash in a local part must not reach.
const agreeZone = `
x.example.      60 SOA ns.x.example. h.x.example. 1 7200 900 1209600 60
m.example.      60 TXT "v=spf1 exists:%{l}.x.example -all"
e.example.      60 TXT "v=spf1 -all exp=t.example"
t.example.      60 TXT "f\195\188r %{i}, \"siehe\""
b.example.      60 TXT "a\\b" "c"
plain.x.example. 60 A 127.0.0.2
a\.b.x.example. 60 A 127.0.0.2
`

// resolvers returns the three resolvers the module's packages meet: its
// own over a real DNS server, the in-memory zone, and *net.Resolver over
// the same server.
func resolvers(t *testing.T) (map[string]spf.Resolver, *dnstest.Zone) {
	t.Helper()
	zone := dnstest.MustParseZone(agreeZone)
	srv, err := dnstest.NewServer(zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ours, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}, Timeout: time.Second, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	std := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr)
	}}
	return map[string]spf.Resolver{"dnsauth.Resolver": ours, "dnstest.Zone": zone, "net.Resolver": std}, zone
}

// TestResolversAgree: the three resolvers give the same answers for odd
// local parts in SPF macros and for escaped and non-ASCII TXT data. Names
// cross the API as raw labels (a backslash is a backslash) and TXT data
// comes back as raw octets, as *net.Resolver has them.
func TestResolversAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs, zone := resolvers(t)
	ip := netip.MustParseAddr("192.0.2.1")

	for _, local := range []string{"plain", "o'brien", "a b", `a"b`, "a(b", "a;b", "a@b", "a\x00b", `a\046b`, "a.b"} {
		// Only plain.x.example has an address. "a.b" is the two labels a
		// and b, not the label a\.b; neither is a\046b.
		want := spf.Fail
		if local == "plain" {
			want = spf.Pass
		}
		for name, r := range rs {
			c, err := spf.NewChecker(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			zone.ResetQueries()
			res := c.CheckHost(ctx, ip, "m.example", local+"@m.example")
			if res.Status != want {
				t.Errorf("%s, local part %q: %s (%v), want %s", name, local, res.Status, res.Err, want)
			}
			if name != "dnsauth.Resolver" {
				continue
			}
			// One question for the exists: name, not a retry after a
			// reply that seemed not to match.
			n := 0
			for _, q := range zone.Queries() {
				if q.Type == dns.TypeA && strings.HasSuffix(q.Name, ".x.example.") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s, local part %q: %d A queries under x.example, want 1 (%v)", name, local, n, zone.Queries())
			}
		}
	}

	for _, tc := range []struct{ name, want string }{
		{"t.example", "für %{i}, \"siehe\""},
		{"b.example", `a\bc`},
	} {
		for name, r := range rs {
			txt, err := r.LookupTXT(ctx, tc.name)
			if err != nil || len(txt) != 1 || txt[0] != tc.want {
				t.Errorf("%s: TXT %s = %q, %v; want %q", name, tc.name, txt, err, tc.want)
			}
		}
	}

	// RFC 7208 §6.2: an explanation that is not ASCII is not used.
	for name, r := range rs {
		c, _ := spf.NewChecker(r, nil)
		res := c.CheckHost(ctx, ip, "e.example", "a@e.example")
		if res.Status != spf.Fail || res.Explanation != "" {
			t.Errorf("%s: %s with explanation %q, want fail with none", name, res.Status, res.Explanation)
		}
	}
}
