package spf_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/spf"
)

// The resolvers the package must accept without adapters, and the
// interface every result of the module satisfies.
var (
	_ spf.Resolver   = net.DefaultResolver
	_ spf.Resolver   = (*dnstest.Zone)(nil)
	_ msgauth.Result = (*spf.Result)(nil)
)

func mustChecker(t *testing.T, z *dnstest.Zone, o *spf.Options) *spf.Checker {
	t.Helper()
	c, err := spf.NewChecker(z, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMacroRFCExamples checks the macro expansions of RFC 7208 §7.4, read
// back through an exp= explanation (where every letter is allowed).
func TestMacroRFCExamples(t *testing.T) {
	t.Parallel()
	macros := []struct{ macro, want4, want6 string }{
		{"%{s}", "strong-bad@email.example.com", ""},
		{"%{o}", "email.example.com", ""},
		{"%{d}", "email.example.com", ""},
		{"%{d4}", "email.example.com", ""},
		{"%{d3}", "email.example.com", ""},
		{"%{d2}", "example.com", ""},
		{"%{d1}", "com", ""},
		{"%{dr}", "com.example.email", ""},
		{"%{d2r}", "example.email", ""},
		{"%{l}", "strong-bad", ""},
		{"%{l-}", "strong.bad", ""},
		{"%{lr}", "strong-bad", ""},
		{"%{lr-}", "bad.strong", ""},
		{"%{l1r-}", "strong", ""},
		{"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com",
			"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com", ""},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com", "skip"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com", "skip"},
		{"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net", ""},
		// §7.2, §7.3: p, h, c, r, t, URL escaping, %% %_ %-.
		{"%{p}", "mx.example.org", "mx.example.org"},
		{"%{h}", "helo.example.org", ""},
		{"%{c}", "192.0.2.3", "2001:db8::cb01"},
		{"%{r}", "receiver.example", ""},
		{"%{t}", "1700000000", ""},
		{"%{S}", "strong-bad%40email.example.com", ""},
		{"100%% %{v}%_x%-y", "100% in-addr x%20y", "100% ip6 x%20y"},
	}
	for _, ip := range []string{"192.0.2.3", "2001:db8::cb01"} {
		z := dnstest.NewZone()
		var exp []string
		for _, m := range macros {
			exp = append(exp, m.macro)
		}
		z.AddTXT("email.example.com", "v=spf1 -all exp=exp.example.com")
		z.AddTXT("exp.example.com", strings.Join(exp, "|"))
		z.AddPTR(netip.MustParseAddr(ip), "mx.example.org")
		z.AddIP("mx.example.org", netip.MustParseAddr(ip))
		c := mustChecker(t, z, &spf.Options{Hostname: "receiver.example", Now: func() time.Time { return time.Unix(1700000000, 0) }})
		r := c.CheckMailFrom(context.Background(), netip.MustParseAddr(ip), "strong-bad@email.example.com", "helo.example.org")
		if r.Status != spf.Fail {
			t.Fatalf("%s: status %s (%v)", ip, r.Status, r.Err)
		}
		got := strings.Split(r.Explanation, "|")
		if len(got) != len(macros) {
			t.Fatalf("%s: explanation %q", ip, r.Explanation)
		}
		for i, m := range macros {
			want := m.want4
			if strings.Contains(ip, ":") && m.want6 != "" {
				if m.want6 == "skip" {
					continue
				}
				want = m.want6
			}
			// %{i} of IPv6 gives upper-case nibbles (as the openspf
			// suites expect); DNS names compare case-insensitively.
			if !strings.EqualFold(got[i], want) {
				t.Errorf("%s: %s = %q, want %q", ip, m.macro, got[i], want)
			}
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, out string }{
		{"v=spf1", "v=spf1"},
		{"V=SPF1  -ALL", "v=spf1 -all"},
		{"v=spf1 ip4:192.0.2.0/24 ip6:2001:DB8::/32 ~all", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all"},
		{"v=spf1 a mx/24 a:example.com//64 mx:example.com/24//64 ?ptr ptr:example.net -all",
			"v=spf1 a mx/24 a:example.com//64 mx:example.com/24//64 ?ptr ptr:example.net -all"},
		{"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} redirect=_spf.example.net",
			"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} redirect=_spf.example.net"},
		{"v=spf1 -all exp=explain._spf.%{d} moo.cow-far_out=man:dog/cat",
			"v=spf1 -all exp=explain._spf.%{d} moo.cow-far_out=man:dog/cat"},
		{"v=spf1 a:foo:bar/baz.example.com", "v=spf1 a:foo:bar/baz.example.com"},
		{"v=spf1 ip4:0.0.0.0/0 ip6:::/0", "v=spf1 ip4:0.0.0.0/0 ip6:::/0"},
	}
	for _, c := range ok {
		r, err := spf.Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := r.String(); got != c.out {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.out)
		}
		r2, err := spf.Parse(r.String())
		if err != nil || r2.String() != r.String() {
			t.Errorf("round trip of %q: %v %q", c.in, err, r2)
		}
	}
	// RFC 7208 §4.6.1, §5.6, §6, §7.1: each of these is a syntax error.
	bad := []string{
		"v=spf10", "spf1 -all", "v=spf1 ip:1.2.3.4", "v=spf1 a:", "v=spf1 include", "v=spf1 all:foo",
		"v=spf1 ip4:1.2.3.4/33", "v=spf1 ip6:::1/129", "v=spf1 a/024", "v=spf1 ip4:2001:db8::1",
		"v=spf1 ip6:1.2.3.4", "v=spf1 a:example.com/", "v=spf1 a:museum", "v=spf1 a:foo.123",
		"v=spf1 exists:%{x}", "v=spf1 exists:%{d0}.example.com", "v=spf1 exists:%{c}.example.com",
		"v=spf1 exists:%(ir).example.com", "v=spf1 a:foo%", "v=spf1 redirect=a.example redirect=b.example",
		"v=spf1 exp=a.example exp=b.example", "v=spf1 1foo=bar", "v=spf1 -all foo=%{x}",
		"v=spf1 exists:%{i}.example.com%", "v=spf1 a:exa\x01mple.com",
	}
	for _, in := range bad {
		if _, err := spf.Parse(in); !errors.Is(err, spf.ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax", in, err)
		}
	}
	r, _ := spf.Parse("v=spf1 a mx include:x.example ptr exists:%{d} ip4:1.2.3.4 all redirect=y.example exp=z.example")
	if n := r.DNSTerms(); n != 6 {
		t.Errorf("DNSTerms = %d, want 6 (a mx include ptr exists redirect)", n)
	}
	if r.Redirect == nil || r.Redirect.Domain != "y.example" || r.Exp == nil || r.Exp.Domain != "z.example" {
		t.Errorf("Redirect/Exp not set: %+v %+v", r.Redirect, r.Exp)
	}
	r, _ = spf.Parse("v=spf1 -ip4:192.0.2.1/24 mx:example.com/26//64")
	if p := r.Terms[0].Prefix(); p != netip.MustParsePrefix("192.0.2.0/24") || r.Terms[0].Qualifier.Status() != spf.Fail {
		t.Errorf("ip4 term: %v %v", p, r.Terms[0].Qualifier)
	}
	if m := r.Terms[1]; m.CIDR4 != 26 || m.CIDR6 != 64 || m.Domain != "example.com" {
		t.Errorf("mx term: %+v", m)
	}
}

// TestLimits checks the RFC 7208 §4.6.4 limits and that Options change
// them.
func TestLimits(t *testing.T) {
	t.Parallel()
	z := dnstest.NewZone()
	// A chain of 11 includes: the 11th DNS-querying term is permerror.
	for i := range 11 {
		z.AddTXT(fmt.Sprintf("i%d.example.com", i), fmt.Sprintf("v=spf1 include:i%d.example.com", i+1))
	}
	z.AddTXT("i11.example.com", "v=spf1 +all")
	z.AddTXT("void.example.com", "v=spf1 a:v1.example.com a:v2.example.com a:v3.example.com +all")
	z.AddTXT("mx.example.com", "v=spf1 mx -all")
	for i := range 11 {
		host := fmt.Sprintf("m%d.example.com", i)
		z.AddMX("mx.example.com", uint16(i), host)
		z.AddIP(host, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
	}
	ip := netip.MustParseAddr("192.0.2.11")
	ctx := context.Background()
	def := mustChecker(t, z, nil)
	for _, c := range []struct {
		domain string
		opts   *spf.Options
		want   spf.Status
	}{
		{"i0.example.com", nil, spf.PermError},
		{"i1.example.com", nil, spf.Pass}, // exactly 10 includes
		{"i0.example.com", &spf.Options{MaxDNSTerms: 11}, spf.Pass},
		{"void.example.com", nil, spf.PermError},
		{"void.example.com", &spf.Options{MaxVoidLookups: 3}, spf.Pass},
		{"mx.example.com", nil, spf.PermError}, // the 11th MX name
		{"mx.example.com", &spf.Options{MaxMXNames: 11}, spf.Pass},
		{"mx.example.com", &spf.Options{MaxMXNames: 11, ConcurrentMX: true}, spf.Pass},
	} {
		chk := def
		if c.opts != nil {
			chk = mustChecker(t, z, c.opts)
		}
		r := chk.CheckHost(ctx, ip, c.domain, "x@"+c.domain)
		if r.Status != c.want {
			t.Errorf("%s %+v: %s (%v), want %s", c.domain, c.opts, r.Status, r.Err, c.want)
		}
		if r.Status == spf.PermError && !errors.Is(r.Err, spf.ErrTooManyLookups) {
			t.Errorf("%s: Err %v does not wrap ErrTooManyLookups", c.domain, r.Err)
		}
	}
	// More than 10 MX names is permerror even when the first one
	// matches, and no address is looked up.
	z.ResetQueries()
	r := def.CheckHost(ctx, netip.MustParseAddr("192.0.2.1"), "mx.example.com", "x@mx.example.com")
	if r.Status != spf.PermError || len(z.Queries()) != 2 {
		t.Errorf("mx over the limit: %s after %v", r.Status, z.Queries())
	}
	if _, err := spf.NewChecker(z, &spf.Options{MaxDNSTerms: -1}); err == nil {
		t.Error("negative limit accepted")
	}
	if _, err := spf.NewChecker(nil, nil); err == nil {
		t.Error("nil resolver accepted")
	}
}

// TestResultDetails checks the result fields, the Received-SPF header
// (RFC 7208 §9.1) and the Authentication-Results entry (RFC 8601).
func TestResultDetails(t *testing.T) {
	t.Parallel()
	z := dnstest.MustParseZone(`
example.com.       TXT "v=spf1 include:_spf.example.com -all"
_spf.example.com.  TXT "v=spf1 ip4:192.0.2.0/24 ~all"
helo.example.com.  TXT "v=spf1 a -all"
helo.example.com.  A   198.51.100.1
`)
	c := mustChecker(t, z, nil)
	ctx := context.Background()
	r := c.CheckMailFrom(ctx, netip.MustParseAddr("::ffff:192.0.2.1"), "<myname@example.com>", "foo.example.com")
	// The mechanism is the top record's directive that matched (its
	// qualifier decides the result).
	if r.Status != spf.Pass || r.Err != nil || r.Mechanism != "include:_spf.example.com" || r.MatchedDomain != "example.com" ||
		r.Domain != "example.com" || r.IP != netip.MustParseAddr("192.0.2.1") || r.DNSTerms != 1 {
		t.Fatalf("result %+v", r)
	}
	h := unfold(r.ReceivedSPF("mybox.example.org"))
	for _, want := range []string{
		"Received-SPF: pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender) ",
		" client-ip=192.0.2.1;", ` envelope-from="myname@example.com";`, " helo=foo.example.com;",
		" receiver=mybox.example.org;", " identity=mailfrom", ` mechanism="include:_spf.example.com";`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("Received-SPF %q lacks %q", h, want)
		}
	}
	ar := authres.Format("mybox.example.org", []authres.Result{r.AuthResult()})
	_, results, err := authres.Parse(ar)
	if err != nil || len(results) != 1 {
		t.Fatalf("authres %q: %v", ar, err)
	}
	if sr, ok := results[0].(*authres.SPFResult); !ok || sr.Value != authres.ResultPass || sr.From != "myname@example.com" {
		t.Errorf("authres %q parsed as %+v", ar, results[0])
	}
	trace := r.Trace.String()
	for _, want := range []string{"lookup TXT example.com", "  record _spf.example.com:", "  term ip4:192.0.2.0/24 -> match", "term include:_spf.example.com -> match"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}

	r = c.CheckHELO(ctx, netip.MustParseAddr("192.0.2.1"), "helo.example.com")
	if r.Status != spf.Fail || r.Identity != spf.IdentityHELO || r.Mechanism != "-all" {
		t.Fatalf("HELO result %+v", r)
	}
	if h := unfold(r.ReceivedSPF("")); !strings.HasPrefix(h, "Received-SPF: fail (domain of helo.example.com does not designate 192.0.2.1 as permitted sender)") ||
		!strings.Contains(h, "identity=helo") {
		t.Errorf("HELO header %q", h)
	}
	if a, ok := r.AuthResult().(*authres.SPFResult); !ok || a.Helo != "helo.example.com" || a.From != "" || a.Value != authres.ResultFail {
		t.Errorf("HELO authres %+v", r.AuthResult())
	}

	z.Fail("tmp.example.com", 0xff, dnstest.Timeout)
	z.AddTXT("bad.example.com", "v=spf1 -all foo")
	z.AddTXT("two.example.com", "v=spf1 -all")
	z.AddTXT("two.example.com", "v=spf1 +all")
	for _, c2 := range []struct {
		from   string
		want   spf.Status
		target error
	}{
		{"a@tmp.example.com", spf.TempError, spf.ErrDNS},
		{"a@bad.example.com", spf.PermError, spf.ErrSyntax},
		{"a@two.example.com", spf.PermError, spf.ErrMultipleRecords},
		{"a@nothing.example.com", spf.None, spf.ErrNoRecord},
		{"a@single-label", spf.None, spf.ErrNoRecord},
	} {
		r := c.CheckMailFrom(ctx, netip.MustParseAddr("192.0.2.1"), c2.from, "x.example.com")
		if r.Status != c2.want || !errors.Is(r.Err, c2.target) {
			t.Errorf("%s: %s %v, want %s %v", c2.from, r.Status, r.Err, c2.want, c2.target)
		}
		// RFC 7208 §9.1: problem= is for an error discovered, not a none.
		if problem := strings.Contains(unfold(r.ReceivedSPF("mx")), "problem="); problem != (r.Status != spf.None) {
			t.Errorf("%s: problem= %v in %q", c2.from, problem, unfold(r.ReceivedSPF("mx")))
		}
	}
}

// TestCheckHostSender: check_host() with an empty sender uses
// postmaster@domain, and one without a local-part gets "postmaster"
// (RFC 7208 §4.3).
func TestCheckHostSender(t *testing.T) {
	t.Parallel()
	z := dnstest.NewZone()
	z.AddTXT("example.com", "v=spf1 -all exp=e.example.com")
	z.AddTXT("e.example.com", "%{s}/%{l}/%{o}")
	c := mustChecker(t, z, nil)
	for _, s := range []string{"", "@example.com"} {
		r := c.CheckHost(context.Background(), netip.MustParseAddr("192.0.2.1"), "example.com", s)
		if want := "postmaster@example.com/postmaster/example.com"; r.Explanation != want || r.Sender != "postmaster@example.com" {
			t.Errorf("sender %q: explanation %q sender %q, want %q", s, r.Explanation, r.Sender, want)
		}
	}
}

// TestNullSender: a null reverse-path is checked as postmaster@helo
// (RFC 7208 §2.4).
func TestNullSender(t *testing.T) {
	t.Parallel()
	z := dnstest.NewZone()
	z.AddTXT("helo.example.com", "v=spf1 -all exp=e.example.com")
	z.AddTXT("e.example.com", "%{s} %{l} %{o} %{d} %{h}")
	r := mustChecker(t, z, nil).CheckMailFrom(context.Background(), netip.MustParseAddr("192.0.2.1"), "<>", "helo.example.com")
	want := "postmaster@helo.example.com postmaster helo.example.com helo.example.com helo.example.com"
	if r.Status != spf.Fail || r.Explanation != want || r.Identity != spf.IdentityMailFrom {
		t.Errorf("%s %q, want fail %q", r.Status, r.Explanation, want)
	}
}

// TestResultErr: Err is nil exactly on pass and says why for every other
// status; String and Received-SPF show it.
func TestResultErr(t *testing.T) {
	t.Parallel()
	z := dnstest.MustParseZone(`
example.com.         TXT "v=spf1 ip4:192.0.2.0/24 -all"
soft.example.com.    TXT "v=spf1 ~all"
neutral.example.com. TXT "v=spf1 ip4:192.0.2.0/24 ?all"
open.example.com.    TXT "v=spf1 ip4:192.0.2.0/24"
redir.example.com.   TXT "v=spf1 redirect=open.example.com"
`)
	c := mustChecker(t, z, nil)
	ctx := context.Background()
	out := netip.MustParseAddr("203.0.113.7")
	for _, tc := range []struct {
		ip             string
		domain         string
		status         spf.Status
		err, str       string
		sentinel       error
		receivedSPFErr bool
	}{
		{"192.0.2.1", "example.com", spf.Pass, "", "pass (ip4:192.0.2.0/24 in example.com)", nil, false},
		{out.String(), "example.com", spf.Fail,
			"spf: example.com does not permit 203.0.113.7 (-all in example.com)", "fail (-all in example.com)", nil, false},
		{out.String(), "soft.example.com", spf.SoftFail,
			"spf: soft.example.com does not permit 203.0.113.7 (~all in soft.example.com)", "softfail (~all in soft.example.com)", nil, false},
		{out.String(), "neutral.example.com", spf.Neutral,
			"spf: neutral.example.com neither permits nor denies 203.0.113.7 (?all in neutral.example.com)", "neutral (?all in neutral.example.com)", nil, false},
		{out.String(), "open.example.com", spf.Neutral,
			"spf: open.example.com neither permits nor denies 203.0.113.7: no mechanism matched",
			"neutral (spf: open.example.com neither permits nor denies 203.0.113.7: no mechanism matched)", nil, false},
		{out.String(), "redir.example.com", spf.Neutral,
			"spf: redir.example.com neither permits nor denies 203.0.113.7: no mechanism matched in open.example.com", "", nil, false},
		{out.String(), "nothing.example.com", spf.None,
			"spf: no SPF record at nothing.example.com", "none (spf: no SPF record at nothing.example.com)", spf.ErrNoRecord, false},
		{out.String(), "single-label", spf.None,
			`spf: no SPF record: "single-label" is not a valid domain name`, "", spf.ErrNoRecord, false},
		{"", "example.com", spf.PermError, "spf: invalid IP address", "permerror (spf: invalid IP address)", nil, true},
	} {
		ip, _ := netip.ParseAddr(tc.ip)
		r := c.CheckHost(ctx, ip, tc.domain, "")
		if r.Status != tc.status {
			t.Errorf("%s %s: status %s (%v), want %s", tc.ip, tc.domain, r.Status, r.Err, tc.status)
			continue
		}
		if tc.err == "" {
			if r.Err != nil {
				t.Errorf("%s %s: pass with Err %v", tc.ip, tc.domain, r.Err)
			}
		} else if r.Err == nil || r.Err.Error() != tc.err {
			t.Errorf("%s %s: Err %v, want %q", tc.ip, tc.domain, r.Err, tc.err)
		}
		if tc.sentinel != nil && !errors.Is(r.Err, tc.sentinel) {
			t.Errorf("%s %s: Err %v does not wrap %v", tc.ip, tc.domain, r.Err, tc.sentinel)
		}
		if tc.str != "" && r.String() != tc.str {
			t.Errorf("%s %s: String() = %q, want %q", tc.ip, tc.domain, r.String(), tc.str)
		}
		if got := strings.Contains(unfold(r.ReceivedSPF("mx")), "problem="); got != tc.receivedSPFErr {
			t.Errorf("%s %s: problem= %v in %q", tc.ip, tc.domain, got, unfold(r.ReceivedSPF("mx")))
		}
	}
}

// TestAuthResults: results written with msgauth.Format (RFC 8601 §2.2):
// method=result, reason= as a quoted-string when it is not a token
// (RFC 2045 §5.1) without the "spf: " prefix, then smtp.mailfrom or
// smtp.helo (§2.7.2), whose local part is left out when it is not a
// dot-atom (§2.3).
func TestAuthResults(t *testing.T) {
	t.Parallel()
	z := dnstest.MustParseZone(`
example.com.      TXT "v=spf1 ip4:192.0.2.0/24 -all"
bad.example.com.  TXT "v=spf1 -all foo"
helo.example.com. TXT "v=spf1 a -all"
helo.example.com. A   198.51.100.1
`)
	c := mustChecker(t, z, nil)
	ctx := context.Background()
	in, out := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("203.0.113.7")
	pass := c.CheckMailFrom(ctx, in, "<alice@example.com>", "mail.example.com")
	fail := c.CheckMailFrom(ctx, out, "alice@example.com", "mail.example.com")
	perm := c.CheckMailFrom(ctx, in, "bob@bad.example.com", "mail.example.com")
	helo := c.CheckHELO(ctx, in, "helo.example.com")
	for _, tc := range []struct {
		results []msgauth.Result
		want    string
	}{
		{[]msgauth.Result{pass}, "mx.example.org; spf=pass smtp.mailfrom=alice@example.com"},
		{[]msgauth.Result{fail},
			`mx.example.org; spf=fail reason="example.com does not permit 203.0.113.7 (-all in example.com)" smtp.mailfrom=alice@example.com`},
		{[]msgauth.Result{perm},
			`mx.example.org; spf=permerror reason="syntax error: 'foo': unknown mechanism (in the record of bad.example.com)" smtp.mailfrom=bob@bad.example.com`},
		{[]msgauth.Result{pass, fail, perm},
			`mx.example.org; spf=pass smtp.mailfrom=alice@example.com; ` +
				`spf=fail reason="example.com does not permit 203.0.113.7 (-all in example.com)" smtp.mailfrom=alice@example.com; ` +
				`spf=permerror reason="syntax error: 'foo': unknown mechanism (in the record of bad.example.com)" smtp.mailfrom=bob@bad.example.com`},
		{[]msgauth.Result{helo},
			`mx.example.org; spf=fail reason="helo.example.com does not permit 192.0.2.1 (-all in helo.example.com)" smtp.helo=helo.example.com`},
	} {
		if got := msgauth.Format("mx.example.org", tc.results...); got != tc.want {
			t.Errorf("Format\n got %s\nwant %s", got, tc.want)
		}
	}
	// A local part that is not a dot-atom (a space, a quote) is left out.
	for _, from := range []string{`<"john doe"@example.com>`, `a"b@example.com`, `"x;y=z"@example.com`} {
		r := c.CheckMailFrom(ctx, in, from, "mail.example.com")
		if got, want := msgauth.Format("mx.example.org", r), "mx.example.org; spf=pass smtp.mailfrom=@example.com"; got != want {
			t.Errorf("%s: %s, want %s", from, got, want)
		}
	}
}

// TestCheckHostDefaultResolver: the package-level CheckHost, on inputs it
// decides without a lookup (the test reaches no DNS).
func TestCheckHostDefaultResolver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if r := spf.CheckHost(ctx, netip.Addr{}, "example.com", "a@example.com"); r.Status != spf.PermError || r.Err == nil {
		t.Errorf("invalid IP: %v", r)
	}
	r := spf.CheckHost(ctx, netip.MustParseAddr("192.0.2.1"), "single-label", "a@single-label")
	if r.Status != spf.None || !errors.Is(r.Err, spf.ErrNoRecord) || len(r.Trace) != 1 {
		t.Errorf("invalid domain: %v\n%s", r, r.Trace)
	}
}

// unfold undoes the folding of a header field (RFC 5322 §2.2.3).
func unfold(h string) string { return strings.ReplaceAll(h, "\r\n", "") }

// TestReceivedSPFBounded: a record of a megabyte (served as one TXT
// record) makes an error that quotes it, but the Received-SPF field stays a
// header: folded at 78 where words allow, no line over 998 octets (RFC 5322
// §2.1.1), the cut value marked, every key still there.
func TestReceivedSPFBounded(t *testing.T) {
	t.Parallel()
	z := dnstest.NewZone()
	mb := strings.Repeat("x", 1<<20)
	z.AddTXT("unknown.example", "v=spf1 "+strings.Repeat("ip4:192.0.2.1 ", 1<<10)+"bogus:"+mb+" -all")
	z.AddTXT("include.example", "v=spf1 include:"+mb+".example -all")
	z.AddTXT("modifier.example", "v=spf1 x-mod="+mb+" ip4:192.0.2.0/24 x=\"\" -all")
	z.AddTXT("quotes.example", "v=spf1 a:\""+strings.Repeat("\\\"", 1<<18)+" -all")
	c, _ := spf.NewChecker(z, nil)
	long := strings.Repeat("l", 64) + "@" + strings.Repeat("d", 60) + ".unknown.example"
	for _, tc := range []struct{ domain, sender string }{
		{"unknown.example", "a@unknown.example"},
		{"unknown.example", long},
		{"include.example", "a@include.example"},
		{"modifier.example", "a@modifier.example"},
		{"quotes.example", "a@quotes.example"},
	} {
		r := c.CheckHost(context.Background(), netip.MustParseAddr("192.0.2.9"), tc.domain, tc.sender)
		h := r.ReceivedSPF("mx.example.org")
		for i, line := range strings.Split(h, "\r\n") {
			if len(line) > 998 {
				t.Errorf("line %d of %d octets", i, len(line))
			}
			if i > 0 && (line == "" || line[0] != ' ') {
				t.Errorf("line %d does not start with white space: %.40q", i, line)
			}
			if len(line) > 78 && strings.Count(line, " ") > 1 {
				t.Errorf("line %d of %d octets could have been folded: %.80q", i, len(line), line)
			}
		}
		u := unfold(h)
		if len(u) > 3000 {
			t.Errorf("%s: %d octets: %.200q", tc.domain, len(u), u)
		}
		if errText := fmt.Sprint(r.Err); len(errText) > 500 && !strings.Contains(u, "...(truncated)") {
			t.Errorf("%s: error of %d octets written without a truncation mark: %.300q", tc.domain, len(errText), u)
		}
		for _, key := range []string{" client-ip=192.0.2.9;", " envelope-from=", " receiver=mx.example.org;", " identity=mailfrom"} {
			if !strings.Contains(u, key) {
				t.Errorf("no %q in %.300q", key, u)
			}
		}
	}
}
