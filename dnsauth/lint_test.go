package dnsauth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// lintSetup serves zone text on a loopback server and returns a resolver
// that asks it (Lint reads TTLs, which only a real resolver gives) and the
// zone, for injecting failures.
func lintSetup(t *testing.T, text string) (*dnsauth.Resolver, *dnstest.Zone) {
	t.Helper()
	z := dnstest.MustParseZone(text)
	srv, err := dnstest.NewServer(z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r, z
}

func lint(t *testing.T, r *dnsauth.Resolver, domain string, opts *dnsauth.LintOptions) *dnsauth.LintReport {
	t.Helper()
	rep, err := r.Lint(context.Background(), domain, opts)
	if err != nil {
		t.Fatalf("Lint(%s): %v", domain, err)
	}
	return rep
}

// codes lists "severity code" for each finding of check, in order.
func codes(rep *dnsauth.LintReport, check string) []string {
	var out []string
	for _, f := range rep.Findings {
		if f.Check == check {
			out = append(out, string(f.Severity)+" "+f.Code)
		}
	}
	return out
}

func finding(t *testing.T, rep *dnsauth.LintReport, code string) dnsauth.Finding {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Code == code {
			return f
		}
	}
	t.Fatalf("no finding %s in %+v", code, rep.Findings)
	return dnsauth.Finding{}
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// tree writes a breakdown as indented "term lookups" lines.
func tree(terms []dnsauth.SPFTerm, indent string) string {
	var b strings.Builder
	for _, t := range terms {
		fmt.Fprintf(&b, "%s%s %d\n", indent, t.Term, t.Lookups)
		b.WriteString(tree(t.Terms, indent+"  "))
	}
	return b.String()
}

// The domain of TestLintSPFLookups. The TTLs differ so that the least one
// of the data the flattening copies can be told: 120 at mail.one.test;
// the record itself has 60, but it is replaced, not copied.
const lookupsZone = `
$ORIGIN example.com.
@        60 TXT  "v=spf1 a mx include:spf.one.test include:spf.two.test exists:%{i}.rbl.example.com ~all"
@      3000 A    192.0.2.10
@      3000 AAAA 2001:db8::10
@      1800 MX   20 mx2
@      1800 MX   10 mx1
mx1     900 A    192.0.2.20
mx1     900 AAAA 2001:db8::20
mx2     900 A    192.0.2.21
_dmarc  600 TXT  "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"
$ORIGIN test.
spf.one   600 TXT  "v=spf1 ip4:198.51.100.0/24 include:spf.three.test a:mail.one.test -all"
mail.one  120 A    192.0.2.99
spf.three 600 TXT  "v=spf1 ip6:2001:db8:3::/48 mx:three.test ~all"
three     600 MX   10 mx.three.test.
mx.three  300 A    203.0.113.200
mx.three  300 AAAA 2001:db8:3::1
spf.two   600 TXT  "v=spf1 include:spf.three.test ip4:203.0.113.0/25 redirect=spf.four.test"
spf.four  600 TXT  "v=spf1 a:relay.four.test/28 mx -all"
relay.four 600 A   203.0.113.130
relay.four 600 AAAA 2001:db8:4::5
spf.four  600 MX   10 mx.four.test.
mx.four   600 A    203.0.113.150
20.2.0.192.in-addr.arpa. PTR mx1.example.com.
192.0.2.1.rbl.example.com. A 127.0.0.2
`

// TestLintSPFLookups: 13 DNS-querying terms through nested includes and a
// redirect, counted by hand from the zone (RFC 7208 §4.6.4); the error,
// and the flattened record whose networks and TTL are also worked out by
// hand.
func TestLintSPFLookups(t *testing.T) {
	t.Parallel()
	r, _ := lintSetup(t, lookupsZone)
	rep := lint(t, r, "example.com", nil)
	sameList(t, "SPF findings", codes(rep, dnsauth.LintSPF), []string{"error spf-lookups"})
	if len(rep.Findings) != 1 {
		t.Errorf("findings %+v, want the SPF error alone", rep.Findings)
	}
	s := rep.SPF
	if s == nil {
		t.Fatal("no SPF report")
	}
	// a 1; mx 1; include:spf.one.test 1 + (include:spf.three.test 1 +
	// mx:three.test 1) + a:mail.one.test 1 = 4; include:spf.two.test 1 +
	// spf.three.test again 2 + redirect 1 + (a 1 + mx 1) = 6; exists 1.
	const want = `a 1
mx 1
include:spf.one.test 4
  ip4:198.51.100.0/24 0
  include:spf.three.test 2
    ip6:2001:db8:3::/48 0
    mx:three.test 1
    ~all 0
  a:mail.one.test 1
  -all 0
include:spf.two.test 6
  include:spf.three.test 2
    ip6:2001:db8:3::/48 0
    mx:three.test 1
    ~all 0
  ip4:203.0.113.0/25 0
  redirect=spf.four.test 3
    a:relay.four.test/28 1
    mx 1
    -all 0
exists:%{i}.rbl.example.com 1
~all 0
`
	if got := tree(s.Terms, ""); got != want {
		t.Errorf("breakdown:\n%s\nwant\n%s", got, want)
	}
	if s.Lookups != 13 || s.VoidLookups != 0 || s.TTL != 60 {
		t.Errorf("lookups %d, void %d, TTL %d; want 13, 0, 60", s.Lookups, s.VoidLookups, s.TTL)
	}
	if p := finding(t, rep, "spf-lookups").Problem; !strings.Contains(p, "13 DNS-querying terms") ||
		!strings.Contains(p, "a 1, mx 1, include:spf.one.test 4, include:spf.two.test 6, exists:%{i}.rbl.example.com 1") {
		t.Errorf("problem %q does not give the count by term", p)
	}

	fl := s.Flattened
	if fl == nil {
		t.Fatal("no flattened record")
	}
	// In order: a (example.com's A, then AAAA); mx (mx1, then mx2, by
	// preference); spf.one.test's /24, then spf.three.test's /48 and
	// mx.three.test's A (its AAAA is inside the /48), then
	// mail.one.test; spf.two.test's networks but for those of
	// spf.three.test, already listed, then spf.four.test's relay (a /28
	// of 203.0.113.130) and the address of its own MX (a bare mx names
	// the domain of the record that holds it, spf.four.test); exists
	// stays; ~all.
	const flat = "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 ip4:192.0.2.20 ip6:2001:db8::20 ip4:192.0.2.21" +
		" ip4:198.51.100.0/24 ip6:2001:db8:3::/48 ip4:203.0.113.200 ip4:192.0.2.99" +
		" ip4:203.0.113.0/25 ip4:203.0.113.128/28 ip6:2001:db8:4::5 ip4:203.0.113.150" +
		" exists:%{i}.rbl.example.com ~all"
	if len(fl.Records) != 1 {
		t.Fatalf("flattened records %+v, want one", fl.Records)
	}
	got := fl.Records[0]
	if got.Name != "example.com." || got.Value != flat || got.Replaces != s.Record || got.TTL != 60 {
		t.Errorf("flattened record %+v;\nwant value %q, TTL 60, replacing %q", got, flat, s.Record)
	}
	if fl.TTL != 120 || fl.Lookups != 1 {
		t.Errorf("flattened TTL %d, lookups %d; want 120 (mail.one.test), 1 (exists)", fl.TTL, fl.Lookups)
	}
	if len(fl.Kept) != 1 || !strings.HasPrefix(fl.Kept[0], "exists:%{i}.rbl.example.com: ") {
		t.Errorf("kept %q, want the exists term and why", fl.Kept)
	}
	// The text passes 255 octets: the zone line splits it in two strings.
	if len(flat) <= 255 || strings.Count(got.String(), `"`) != 4 {
		t.Errorf("zone line %s: want two character-strings", got)
	}
	// check_host() decides as before for every address of the zone, one
	// that the exists term finds (192.0.2.1), and others.
	dnsauth.SameVerdicts(t, lookupsZone, nil, "example.com", fl.Records, []string{
		"192.0.2.10", "2001:db8::10", "192.0.2.20", "2001:db8::20", "192.0.2.21", "198.51.100.5",
		"2001:db8:3::1", "2001:db8:3:ffff::1", "203.0.113.200", "192.0.2.99", "203.0.113.5", "203.0.113.130",
		"203.0.113.140", "203.0.113.144", "2001:db8:4::5", "2001:db8:4::6", "203.0.113.150", "192.0.2.1", "192.0.2.2",
	})
}

// TestLintClean: a domain whose records are right has no finding above
// info.
func TestLintClean(t *testing.T) {
	t.Parallel()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := dkim.KeyRecordText(&k.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := lintSetup(t, `
$ORIGIN example.org.
@       TXT   "v=spf1 ip4:192.0.2.0/24 include:_spf.provider.test -all"
@       TXT   "site-verification=abc"
_dmarc  TXT   "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"
s1._domainkey CNAME s1.dkim.provider.test.
s2._domainkey TXT "`+key+`"
mail    A     192.0.2.25
25.2.0.192.in-addr.arpa. PTR mail.example.org.
_spf.provider.test. TXT "v=spf1 ip4:198.51.100.0/24 ~all"
s1.dkim.provider.test. TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
`)
	rep := lint(t, r, "Example.ORG.", &dnsauth.LintOptions{Selectors: []string{"s1", "s2"}, IP: netip.MustParseAddr("192.0.2.25")})
	if rep.Domain != "example.org." {
		t.Errorf("domain %q", rep.Domain)
	}
	if w := rep.Worst(); w != dnsauth.SeverityInfo {
		t.Errorf("worst %q, want info; findings %+v", w, rep.Findings)
	}
	sameList(t, "findings", append(codes(rep, dnsauth.LintDKIM), codes(rep, dnsauth.LintIPRev)...),
		[]string{"info dkim-cname", "info iprev-pass"})
	if s := rep.SPF; s == nil || s.Lookups != 1 || s.Flattened != nil {
		t.Errorf("SPF report %+v: want 1 lookup and no flattening", s)
	}
	if ip := rep.IPRev; ip == nil || !ip.Pass() || !slices.Equal(ip.Confirmed, []string{"mail.example.org."}) {
		t.Errorf("iprev %+v", ip)
	}
	if f := finding(t, rep, "dkim-cname"); f.Name != "s1.dkim.provider.test." {
		t.Errorf("CNAME finding about %s, want the target's record", f.Name)
	}
}

// TestLintSPFRecords: the findings of SPF records that are missing,
// doubled, broken, or risky (RFC 7208 §4.5, §5.1, §5.5, §6.1), and of void
// lookups (§4.6.4).
func TestLintSPFRecords(t *testing.T) {
	t.Parallel()
	r, _ := lintSetup(t, `
none.test.   TXT "not spf"
two.test.    TXT "v=spf1 ip4:192.0.2.1 -all"
two.test.    TXT "v=spf1 mx -all"
bad.test.    TXT "v=spf1 ip4:192.0.2.300 -all"
void.test.   TXT "v=spf1 a:nx1.void.test mx:nx2.void.test include:nx3.void.test ip4:192.0.2.1 -all"
two-void.test. TXT "v=spf1 a:nx1.void.test mx:nx2.void.test ip4:192.0.2.1 -all"
ptr.test.    TXT "v=spf1 ptr ?all"
pass.test.   TXT "v=spf1 include:open.test redirect=x.test +all"
open.test.   TXT "v=spf1 +all"
loop.test.   TXT "v=spf1 include:loop2.test -all"
loop2.test.  TXT "v=spf1 include:loop.test"
redir.test.  TXT "v=spf1 ip4:192.0.2.1 redirect=end.test"
end.test.    TXT "v=spf1 ip4:192.0.2.2"
`)
	for _, tc := range []struct {
		domain string
		want   []string
		voids  int
	}{
		{"none.test", []string{"error spf-none"}, 0},
		{"two.test", []string{"error spf-multiple"}, 0},
		{"bad.test", []string{"error spf-syntax"}, 0},
		// a (no A, no AAAA), mx (no MX) and include (no TXT) find
		// nothing: three void lookups, one more than allowed.
		{"void.test", []string{"warning spf-void", "warning spf-void", "warning spf-void", "error spf-target-none", "error spf-void-limit"}, 3},
		{"two-void.test", []string{"warning spf-void", "warning spf-void"}, 2},
		{"ptr.test", []string{"warning spf-ptr", "warning spf-all-neutral"}, 0},
		{"pass.test", []string{"error spf-all-pass", "warning spf-redirect-ignored", "error spf-all-pass"}, 0},
		{"loop.test", []string{"error spf-loop"}, 0},
		{"redir.test", []string{"warning spf-no-all"}, 0},
	} {
		rep := lint(t, r, tc.domain, nil)
		sameList(t, tc.domain, codes(rep, dnsauth.LintSPF), tc.want)
		if rep.SPF != nil && rep.SPF.VoidLookups != tc.voids {
			t.Errorf("%s: %d void lookups, want %d", tc.domain, rep.SPF.VoidLookups, tc.voids)
		}
	}
	rep := lint(t, r, "two.test", nil)
	if f := finding(t, rep, "spf-multiple"); f.Text != "v=spf1 ip4:192.0.2.1 -all\nv=spf1 mx -all" && f.Text != "v=spf1 mx -all\nv=spf1 ip4:192.0.2.1 -all" {
		t.Errorf("multiple records: text %q, want both records", f.Text)
	}
	if rep.SPF != nil {
		t.Errorf("two records: SPF report %+v, want none", rep.SPF)
	}
	rep = lint(t, r, "pass.test", nil)
	if f := rep.Findings[0]; f.Name != "open.test." || !strings.Contains(f.Problem, "include:open.test") {
		t.Errorf("+all of an included record: %+v", f)
	}
	rep = lint(t, r, "loop.test", nil)
	if f := finding(t, rep, "spf-loop"); f.Name != "loop2.test." || rep.SPF.Lookups != 2 {
		t.Errorf("loop: %+v, %d lookups; want the finding on loop2.test and 2 lookups", f, rep.SPF.Lookups)
	}
}

// TestLintSPFSplit: a flattened record too long for one answer (RFC 7208
// §3.4) goes to records it includes, each within 450 octets with its name.
func TestLintSPFSplit(t *testing.T) {
	t.Parallel()
	var zone strings.Builder
	zone.WriteString("big.test. TXT \"v=spf1 include:n1.big.test ~all\"\n")
	for i := 1; i <= 10; i++ {
		ttl := 3000
		if i == 5 {
			ttl = 200
		}
		fmt.Fprintf(&zone, "n%d.big.test. %d TXT \"v=spf1 include:n%d.big.test\"\n", i, ttl, i+1)
	}
	var nets []string
	for i := 100; i < 130; i++ {
		nets = append(nets, fmt.Sprintf("ip4:192.0.2.%d", i))
	}
	fmt.Fprintf(&zone, "n11.big.test. TXT %q\n", "v=spf1 "+strings.Join(nets, " "))
	r, _ := lintSetup(t, zone.String())
	rep := lint(t, r, "big.test", nil)
	if rep.SPF.Lookups != 11 {
		t.Fatalf("%d lookups, want 11", rep.SPF.Lookups)
	}
	fl := rep.SPF.Flattened
	if fl == nil {
		t.Fatal("no flattened record")
	}
	// "v=spf1" and " ~all" with 30 terms of 15 octets and their spaces
	// make 491 octets, over 450 with the name. In _spf1.big.test. (15
	// octets), "v=spf1", " -all" and k terms take 26 + 16k octets: 26
	// terms fit in 450.
	want := []dnsauth.Record{
		{Name: "big.test.", Value: "v=spf1 include:_spf1.big.test include:_spf2.big.test ~all", Replaces: "v=spf1 include:n1.big.test ~all"},
		{Name: "_spf1.big.test.", Value: "v=spf1 " + strings.Join(nets[:26], " ") + " -all"},
		{Name: "_spf2.big.test.", Value: "v=spf1 " + strings.Join(nets[26:], " ") + " -all"},
	}
	for i := range want {
		want[i].Type, want[i].TTL, want[i].Purpose = "TXT", 200, dnsauth.PurposeSPF
	}
	if !slices.Equal(fl.Records, want) {
		t.Errorf("records\n%+v\nwant\n%+v", fl.Records, want)
	}
	if fl.Lookups != 2 || fl.TTL != 200 || len(fl.Kept) != 0 {
		t.Errorf("lookups %d, TTL %d, kept %q; want 2, 200, none", fl.Lookups, fl.TTL, fl.Kept)
	}
	for _, rec := range fl.Records {
		if n := len(rec.Name) + len(rec.Value); n > 450 {
			t.Errorf("%s: %d octets", rec.Name, n)
		}
	}
	dnsauth.SameVerdicts(t, zone.String(), nil, "big.test", fl.Records, []string{"192.0.2.100", "192.0.2.125", "192.0.2.126", "192.0.2.129", "192.0.2.130", "192.0.2.99"})
}

// TestLintDMARC: p=none, pct=50 and no rua= are each a finding, beside
// dmarc.Check's; so are sp= weaker than p=, t=y, several records, none, and
// the policy of the organizational domain applying.
func TestLintDMARC(t *testing.T) {
	t.Parallel()
	r, _ := lintSetup(t, `
_dmarc.weak.test.  TXT "v=DMARC1; p=none; pct=50"
_dmarc.sub.test.   TXT "v=DMARC1; p=reject; sp=none; t=y; rua=mailto:d@sub.test"
_dmarc.two.test.   TXT "v=DMARC1; p=reject"
_dmarc.two.test.   TXT "v=DMARC1; p=none"
_dmarc.org.test.   TXT "v=DMARC1; p=quarantine; rua=mailto:d@org.test"
mail.org.test.     A   192.0.2.1
`)
	for _, tc := range []struct {
		domain string
		want   []string
	}{
		{"weak.test", []string{"warning dmarc-check", "warning dmarc-p-none", "warning dmarc-pct", "warning dmarc-no-rua"}},
		{"sub.test", []string{"warning dmarc-sp-weak", "warning dmarc-testing"}},
		{"two.test", []string{"error dmarc-multiple"}},
		{"none.test", []string{"error dmarc-none"}},
		{"mail.org.test", []string{"info dmarc-inherited"}},
	} {
		sameList(t, tc.domain, codes(lint(t, r, tc.domain, nil), dnsauth.LintDMARC), tc.want)
	}
	rep := lint(t, r, "weak.test", nil)
	f := finding(t, rep, "dmarc-pct")
	if f.Name != "_dmarc.weak.test." || f.Type != "TXT" || f.Text != "v=DMARC1; p=none; pct=50" || !strings.Contains(f.Problem, "50%") || f.Fix == "" {
		t.Errorf("pct finding %+v", f)
	}
	if f := finding(t, lint(t, r, "mail.org.test", nil), "dmarc-inherited"); f.Name != "_dmarc.org.test." || f.Text != "v=DMARC1; p=quarantine; rua=mailto:d@org.test" || !strings.Contains(f.Problem, "quarantine") {
		t.Errorf("inherited %+v", f)
	}
}

// TestLintDKIM: key records revoked, weak, short, broken, of an unknown
// type, in testing, missing (RFC 6376 §3.6.1, RFC 8301 §3.2).
func TestLintDKIM(t *testing.T) {
	t.Parallel()
	k1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rec1024, err := dkim.KeyRecordText(&k1024.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A 512-bit modulus, which no key generator makes any more.
	n := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 511), big.NewInt(111))
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	rec512 := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	r, _ := lintSetup(t, `
$ORIGIN _domainkey.keys.test.
revoked  TXT "v=DKIM1; k=rsa; p="
short    TXT "`+rec1024+`"
weak     TXT "`+rec512+`"
broken   TXT "v=DKIM1; k=rsa; p=!!!notbase64"
dsa      TXT "v=DKIM1; k=dsa; p=AAAA"
testing  TXT "v=DKIM1; k=ed25519; t=y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
sha1     TXT "v=DKIM1; h=sha1; `+strings.TrimPrefix(rec1024, "v=DKIM1; ")+`"
cname    CNAME revoked
`)
	for _, tc := range []struct {
		sel  string
		want []string
	}{
		{"revoked", []string{"error dkim-revoked"}},
		{"short", []string{"warning dkim-rsa-short"}},
		{"weak", []string{"error dkim-rsa-weak"}},
		{"broken", []string{"error dkim-syntax"}},
		{"dsa", []string{"error dkim-key-type"}},
		{"testing", []string{"warning dkim-testing"}},
		{"sha1", []string{"error dkim-hash", "warning dkim-rsa-short"}},
		{"missing", []string{"error dkim-none"}},
		{"cname", []string{"info dkim-cname", "error dkim-revoked"}},
	} {
		rep := lint(t, r, "keys.test", &dnsauth.LintOptions{Selectors: []string{tc.sel}})
		sameList(t, tc.sel, codes(rep, dnsauth.LintDKIM), tc.want)
	}
	rep := lint(t, r, "keys.test", &dnsauth.LintOptions{Selectors: []string{"short", "cname"}})
	if f := finding(t, rep, "dkim-rsa-short"); f.Name != "short._domainkey.keys.test." || f.Text != rec1024 || !strings.Contains(f.Problem, "1024 bits") {
		t.Errorf("short key %+v", f)
	}
	if f := finding(t, rep, "dkim-revoked"); f.Name != "revoked._domainkey.keys.test." || !strings.Contains(f.Problem, "cname._domainkey.keys.test") {
		t.Errorf("revoked key through a CNAME %+v: want the record's own name, and the CNAME named", f)
	}
	if _, err := r.Lint(context.Background(), "keys.test", &dnsauth.LintOptions{Selectors: []string{"a b"}}); err == nil {
		t.Error("selector with a space: no error")
	}
}

// TestLintIPRev: forward-confirmed reverse DNS (RFC 8601 §3): confirmed;
// a PTR name without the address; no PTR; one name of two confirmed.
func TestLintIPRev(t *testing.T) {
	t.Parallel()
	r, _ := lintSetup(t, `
10.2.0.192.in-addr.arpa. PTR good.example.net.
11.2.0.192.in-addr.arpa. PTR other.example.net.
13.2.0.192.in-addr.arpa. PTR good6.example.net.
13.2.0.192.in-addr.arpa. PTR gone.example.net.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR good6.example.net.
good.example.net.  A    192.0.2.10
other.example.net. A    192.0.2.99
other.example.net. A    192.0.2.98
good6.example.net. A    192.0.2.13
good6.example.net. AAAA 2001:db8::1
example.net. TXT "v=spf1 -all"
_dmarc.example.net. TXT "v=DMARC1; p=reject; rua=mailto:d@example.net"
`)
	for _, tc := range []struct {
		ip        string
		want      []string
		confirmed []string
	}{
		{"192.0.2.10", []string{"info iprev-pass"}, []string{"good.example.net."}},
		{"2001:db8::1", []string{"info iprev-pass"}, []string{"good6.example.net."}},
		{"192.0.2.11", []string{"error iprev-mismatch"}, nil},
		{"192.0.2.12", []string{"error iprev-no-ptr"}, nil},
		{"192.0.2.13", []string{"warning iprev-mismatch", "info iprev-pass"}, []string{"good6.example.net."}},
	} {
		rep := lint(t, r, "example.net", &dnsauth.LintOptions{IP: netip.MustParseAddr(tc.ip)})
		sameList(t, tc.ip, codes(rep, dnsauth.LintIPRev), tc.want)
		if rep.IPRev == nil || rep.IPRev.Pass() != (tc.confirmed != nil) || tc.confirmed != nil && !slices.Equal(rep.IPRev.Confirmed, tc.confirmed) {
			t.Errorf("%s: iprev %+v, want confirmed %q", tc.ip, rep.IPRev, tc.confirmed)
		}
	}
	rep := lint(t, r, "example.net", &dnsauth.LintOptions{IP: netip.MustParseAddr("192.0.2.11")})
	if f := finding(t, rep, "iprev-mismatch"); f.Name != "other.example.net." || f.Type != "A" || !strings.Contains(f.Text, "192.0.2.99") || !strings.Contains(f.Problem, "192.0.2.11") {
		t.Errorf("mismatch %+v", f)
	}
}

// TestLintTemporaryFailure: a lookup that fails temporarily is a finding
// that the check could not be made, not an error of Lint.
func TestLintTemporaryFailure(t *testing.T) {
	t.Parallel()
	r, z := lintSetup(t, lookupsZone)
	z.Fail("_dmarc.example.com", dns.TypeTXT, dnstest.ServFail)
	z.Fail("spf.two.test", dns.TypeTXT, dnstest.ServFail)
	z.Fail("1.2.0.192.in-addr.arpa", dns.TypePTR, dnstest.Refused)
	rep := lint(t, r, "example.com", &dnsauth.LintOptions{IP: netip.MustParseAddr("192.0.2.1")})
	sameList(t, "SPF", codes(rep, dnsauth.LintSPF), []string{"warning spf-dns"})
	sameList(t, "DMARC", codes(rep, dnsauth.LintDMARC), []string{"warning dmarc-dns"})
	sameList(t, "iprev", codes(rep, dnsauth.LintIPRev), []string{"warning iprev-dns"})
	// include:spf.two.test now costs 1: 1+1+4+1+1.
	if rep.SPF.Lookups != 8 {
		t.Errorf("%d lookups, want 8", rep.SPF.Lookups)
	}
}

// TestLintOutput: the JSON field names, and a table that names every
// finding and the flattened record.
func TestLintOutput(t *testing.T) {
	t.Parallel()
	r, _ := lintSetup(t, lookupsZone)
	rep := lint(t, r, "example.com", &dnsauth.LintOptions{IP: netip.MustParseAddr("192.0.2.20")})
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	f := m["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"severity", "check", "code", "name", "type", "text", "problem", "fix"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding without %q: %s", k, js)
		}
	}
	s := m["spf"].(map[string]any)
	for _, k := range []string{"record", "ttl", "lookups", "void_lookups", "terms", "flattened"} {
		if _, ok := s[k]; !ok {
			t.Errorf("spf without %q", k)
		}
	}
	fl := s["flattened"].(map[string]any)
	for _, k := range []string{"records", "lookups", "ttl", "kept"} {
		if _, ok := fl[k]; !ok {
			t.Errorf("flattened without %q", k)
		}
	}
	if ip := m["iprev"].(map[string]any); ip["ip"] != "192.0.2.20" {
		t.Errorf("iprev %v", ip)
	}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !regexp.MustCompile(`(?m)^  include:spf\.three\.test +2 *$`).MatchString(out) {
		t.Errorf("table without the nested include and its cost:\n%s", out)
	}
	for _, want := range []string{
		"lint of example.com: 1 error, 0 warnings, 1 info",
		"error    spf    example.com. TXT",
		"SPF lookups of example.com: 13 of 10",
		"make it again at least every 2m0s",
		`example.com.	60	IN	TXT	"v=spf1 ip4:192.0.2.10 `,
		"kept: exists:%{i}.rbl.example.com",
		"reverse DNS of 192.0.2.20:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table without %q:\n%s", want, out)
		}
	}
}

// TestLintBadInput: a domain that is not a name is an error of Lint.
func TestLintBadInput(t *testing.T) {
	t.Parallel()
	r, _ := lintSetup(t, "")
	for _, d := range []string{"", ".", "a..b", strings.Repeat("a", 64) + ".test"} {
		if _, err := r.Lint(context.Background(), d, nil); err == nil {
			t.Errorf("Lint(%q): no error", d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Lint(ctx, "example.com", nil); err == nil {
		t.Error("Lint with a cancelled context: no error")
	}
}
