package dmarc

import (
	"bytes"
	"context"
	"errors"
	"net/mail"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
)

// newEvaluator is NewEvaluator failing t on an error.
func newEvaluator(t testing.TB, r Resolver, opts *Options) *Evaluator {
	t.Helper()
	e, err := NewEvaluator(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// rfc7489 is the Options of RFC 7489 rules.
var rfc7489 = &Options{Rules: RFC7489}

// spfResult is the SPF entry of an spf result for the MAIL FROM domain.
func spfResult(domain string, value authres.ResultValue) *authres.SPFResult {
	r := &authres.SPFResult{Value: value}
	if domain != "" {
		r.From = "@" + domain
	}
	return r
}

// dkimResult is the entry of one DKIM signature, as the dkim package
// writes it.
func dkimResult(domain string, value authres.ResultValue) *authres.GenericResult {
	return &authres.GenericResult{Method: "dkim", Value: value, Params: map[string]string{"header.d": domain}}
}

// entries wraps entries as one msgauth.Result.
func entries(es ...authres.Result) msgauth.Entries { return es }

func TestOpenDMARCAlignment(t *testing.T) {
	type raw struct {
		Case    int    `json:"case"`
		A       string `json:"domain_a"`
		B       string `json:"domain_b"`
		Mode    string `json:"mode"`
		Aligned bool   `json:"aligned"`
	}
	var rs []raw
	readJSON(t, "testdata/opendmarc/alignment.json", &rs)
	if len(rs) != 10 {
		t.Fatalf("%d cases", len(rs))
	}
	// OpenDMARC uses the public suffix list: RFC 7489 rules, no DNS.
	e := newEvaluator(t, dnstest.NewZone(), rfc7489)
	for _, c := range rs {
		mode := Relaxed
		if c.Mode == "strict" {
			mode = Strict
		}
		got, err := e.Aligned(context.Background(), mode, c.A, c.B)
		if err != nil || got != c.Aligned {
			t.Errorf("case %d %q %q %s: got %v (%v), want %v", c.Case, c.A, c.B, c.Mode, got, err, c.Aligned)
		}
	}
}

func TestOpenDMARCFromDomain(t *testing.T) {
	var cs []struct {
		Case     int    `json:"case"`
		From     string `json:"from_header_value"`
		Expected string `json:"expected_domain"`
	}
	readJSON(t, "testdata/opendmarc/from-domain-extraction.json", &cs)
	if len(cs) != 13 {
		t.Fatalf("%d cases", len(cs))
	}
	for _, c := range cs {
		ds, err := fromDomains(c.From)
		if err != nil || len(ds) == 0 || ds[0] != c.Expected {
			t.Errorf("case %d %q: got %v (%v), want first %q", c.Case, c.From, ds, err, c.Expected)
		}
	}
	// Several addresses: every domain, in order (RFC 7489 §6.6.1).
	ds, _ := fromDomains("Joe Johnson <joe@joe.com>, ace@ACE.com, x@joe.com")
	if !slices.Equal(ds, []string{"joe.com", "ace.com"}) {
		t.Errorf("several: %v", ds)
	}
	for _, bad := range []string{"", "Joe Johnson", "joe@", "undisclosed-recipients:;", "joe@exa..mple.com"} {
		if ds, err := fromDomains(bad); err == nil || !errors.Is(err, ErrFrom) || !errors.Is(err, ErrSyntax) {
			t.Errorf("fromDomains(%q) = %v, %v; want ErrFrom", bad, ds, err)
		}
	}
}

// resultKeyword maps the transcribed stalwart results ("fail (signature
// expired)") to their RFC 8601 keyword.
func resultKeyword(s string) authres.ResultValue {
	w, _, _ := strings.Cut(s, " ")
	return authres.ResultValue(w)
}

func header(from ...string) mail.Header {
	return mail.Header{"From": from}
}

func TestEvaluationCases(t *testing.T) {
	var file struct {
		Alignment []struct {
			Name           string `json:"name"`
			RecordAt       string `json:"record_at"`
			Record         string `json:"record"`
			HeaderFrom     string `json:"header_from"`
			MailFromDomain string `json:"mail_from_domain"`
			DKIMD          string `json:"dkim_d"`
			DKIM, SPF      string
			Expect         struct {
				DKIMAligned   string `json:"dkim_aligned"`
				SPFAligned    string `json:"spf_aligned"`
				DMARCInferred string `json:"dmarc_inferred"`
				Policy        string `json:"policy"`
			}
		}
		PolicyDiscovery []struct {
			Name         string            `json:"name"`
			Records      map[string]string `json:"records"`
			ARecords     map[string]string `json:"a_records"`
			HeaderFrom   string            `json:"header_from"`
			ExpectPolicy string            `json:"expect_policy"`
			RFC          string            `json:"rfc"`
		} `json:"policy_discovery"`
	}
	readJSON(t, "testdata/evaluation-cases.json", &file)
	if len(file.Alignment) != 4 || len(file.PolicyDiscovery) != 5 {
		t.Fatalf("cases: %d, %d", len(file.Alignment), len(file.PolicyDiscovery))
	}
	// "pass" = aligned pass; "fail (not aligned)" = a pass that did not
	// align; "none" = no pass to align.
	aligned := func(s Status) string {
		switch s {
		case Pass:
			return "pass"
		case Fail:
			return "fail (not aligned)"
		}
		return "none"
	}
	for _, rules := range []Rules{RFC9989, RFC7489} {
		for _, c := range file.Alignment {
			z := dnstest.NewZone()
			z.AddTXT(c.RecordAt, c.Record)
			e := newEvaluator(t, z, &Options{Rules: rules})
			r := e.Evaluate(context.Background(), header(c.HeaderFrom),
				entries(spfResult(c.MailFromDomain, resultKeyword(c.SPF)), dkimResult(c.DKIMD, resultKeyword(c.DKIM))))
			if aligned(r.DKIM) != c.Expect.DKIMAligned || aligned(r.SPF) != c.Expect.SPFAligned ||
				string(r.Status) != c.Expect.DMARCInferred || string(r.Policy) != c.Expect.Policy {
				t.Errorf("%v %s: got dkim %s spf %s status %s policy %s (%v); want %+v", rules, c.Name, r.DKIM, r.SPF, r.Status, r.Policy, r.Err, c.Expect)
			}
		}
		for _, c := range file.PolicyDiscovery {
			z := dnstest.NewZone()
			for n, v := range c.Records {
				z.AddTXT(n, v)
			}
			for n, a := range c.ARecords {
				z.AddIP(n, netip.MustParseAddr(a))
			}
			e := newEvaluator(t, z, &Options{Rules: rules})
			r := e.Evaluate(context.Background(), header(c.HeaderFrom), entries(spfResult("other.example", authres.ResultPass)))
			want := c.ExpectPolicy
			if rules == RFC7489 && strings.Contains(c.RFC, "under RFC 7489 np is unknown and sp=quarantine applies") {
				want = "quarantine"
			}
			switch want {
			case "(no DMARC result / none)":
				if r.Status != None || !errors.Is(r.Err, ErrNoRecord) || r.Record != nil {
					t.Errorf("%v %s: got %s %v", rules, c.Name, r.Status, r.Err)
				}
			default:
				if r.Status != Fail || r.Err == nil || string(r.Policy) != want || string(r.Disposition) != want {
					t.Errorf("%v %s: got status %s policy %s (%s) disposition %s (%v); want %s", rules, c.Name, r.Status, r.Policy, r.PolicyTag, r.Disposition, r.Err, want)
				}
			}
		}
	}
}

// TestTreeWalkTargets: the eight queries of the RFC 9989 §4.10 example.
func TestTreeWalkTargets(t *testing.T) {
	got := treeWalkTargets("a.b.c.d.e.f.g.h.i.j.mail.example.com")
	want := []string{"a.b.c.d.e.f.g.h.i.j.mail.example.com", "g.h.i.j.mail.example.com", "h.i.j.mail.example.com",
		"i.j.mail.example.com", "j.mail.example.com", "mail.example.com", "example.com", "com"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// §5.1.8: the record at b.c.d.e.f.g.example.com is never queried.
	got = treeWalkTargets("mail.a.b.c.d.e.f.g.example.com")
	want = []string{"mail.a.b.c.d.e.f.g.example.com", "c.d.e.f.g.example.com", "d.e.f.g.example.com", "e.f.g.example.com",
		"f.g.example.com", "g.example.com", "example.com", "com"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if got := treeWalkTargets("Example.COM."); !slices.Equal(got, []string{"example.com", "com"}) {
		t.Errorf("got %v", got)
	}
}

// TestTreeWalkExamples runs the examples of RFC 9989 Appendix B.4 and
// §4.10.2 through the DNS fixture, checking the queries made.
func TestTreeWalkExamples(t *testing.T) {
	ctx := context.Background()
	t.Run("B.4.1", func(t *testing.T) {
		z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject"
_dmarc.signing.example.com. TXT "v=DMARC1; p=none"`)
		e := newEvaluator(t, z, nil)
		r := e.Evaluate(ctx, header("a@example.com"),
			entries(spfResult("example.com", authres.ResultPass), dkimResult("signing.example.com", authres.ResultPass)))
		if r.Status != Pass || r.SPF != Pass || r.DKIM != Pass || r.OrgDomain != "example.com" || r.PolicyDomain != "example.com" {
			t.Errorf("%+v", r)
		}
	})
	t.Run("B.4.2", func(t *testing.T) {
		z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject"
_dmarc.signing.example.com. TXT "v=DMARC1; p=none"`)
		e := newEvaluator(t, z, nil)
		r := e.Evaluate(ctx, header("a@a.b.c.d.e.f.g.h.i.j.k.example.com"),
			entries(spfResult("example.com", authres.ResultFail), dkimResult("signing.example.com", authres.ResultPass)))
		if r.Status != Pass || r.DKIM != Pass || r.OrgDomain != "example.com" || r.PolicyDomain != "example.com" {
			t.Errorf("%+v", r)
		}
		var names []string
		for _, q := range z.Queries() {
			if q.Type == dns.TypeTXT {
				names = append(names, q.Name)
			}
		}
		want := []string{"_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com.", "_dmarc.g.h.i.j.k.example.com.", "_dmarc.h.i.j.k.example.com.",
			"_dmarc.i.j.k.example.com.", "_dmarc.j.k.example.com.", "_dmarc.k.example.com.", "_dmarc.example.com.", "_dmarc.com.",
			"_dmarc.signing.example.com."}
		if !slices.Equal(names, want) {
			t.Errorf("queries:\n got %v\nwant %v", names, want)
		}
		// The same message failing gets sp= of example.com (here p=).
		r = e.Evaluate(ctx, header("a@a.b.c.d.e.f.g.h.i.j.k.example.com"))
		if r.Status != Fail || r.Policy != PolicyReject || r.PolicyTag != "p" {
			t.Errorf("%+v", r)
		}
	})
	t.Run("B.4.3", func(t *testing.T) {
		z := dnstest.MustParseZone(`
_dmarc.bank.example. TXT "v=DMARC1; p=reject; psd=y"
_dmarc.giant.bank.example. TXT "v=DMARC1; p=quarantine"`)
		e := newEvaluator(t, z, nil)
		r := e.Evaluate(ctx, header("a@giant.bank.example"),
			entries(spfResult("mail.giant.bank.example", authres.ResultPass), dkimResult("mail.mega.bank.example", authres.ResultPass)))
		if r.Status != Pass || r.SPF != Pass || r.DKIM != Fail || r.OrgDomain != "giant.bank.example" {
			t.Errorf("%+v", r)
		}
		for _, q := range z.Queries() {
			if q.Name == "_dmarc.example." {
				t.Errorf("walk went past psd=y: %v", z.Queries())
			}
		}
		org, _ := e.OrganizationalDomain(ctx, "mail.mega.bank.example")
		if org != "mega.bank.example" {
			t.Errorf("org of mail.mega.bank.example = %q", org)
		}
		// A PSD policy applies to a domain without its own record: the
		// organizational domain mega.bank.example has none, so the PSD's.
		r = e.Evaluate(ctx, header("a@mail.mega.bank.example"))
		if r.Status != Fail || r.PolicyDomain != "bank.example" || r.OrgDomain != "mega.bank.example" || r.Policy != PolicyReject {
			t.Errorf("%+v", r)
		}
	})
	t.Run("4.10.2", func(t *testing.T) {
		e := newEvaluator(t, dnstest.MustParseZone(`
_dmarc.mail.example.com. TXT "v=DMARC1; p=none"
_dmarc.example.com. TXT "v=DMARC1; p=none"`), nil)
		if org, _ := e.OrganizationalDomain(ctx, "a.mail.example.com"); org != "example.com" {
			t.Errorf("got %q, want example.com", org)
		}
		e = newEvaluator(t, dnstest.MustParseZone(`
_dmarc.mail.example.com. TXT "v=DMARC1; p=none; psd=n"
_dmarc.example.com. TXT "v=DMARC1; p=none"`), nil)
		if org, _ := e.OrganizationalDomain(ctx, "a.mail.example.com"); org != "mail.example.com" {
			t.Errorf("got %q, want mail.example.com", org)
		}
		e = newEvaluator(t, dnstest.MustParseZone(`_dmarc.com. TXT "v=DMARC1; p=none; psd=y"`), nil)
		if org, _ := e.OrganizationalDomain(ctx, "a.mail.example.com"); org != "example.com" {
			t.Errorf("got %q, want example.com", org)
		}
		e = newEvaluator(t, dnstest.NewZone(), nil)
		if org, _ := e.OrganizationalDomain(ctx, "a.mail.example.com"); org != "a.mail.example.com" {
			t.Errorf("got %q, want the start", org)
		}
	})
}

func TestEvaluateFromHandling(t *testing.T) {
	ctx := context.Background()
	z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject"
_dmarc.example.net. TXT "v=DMARC1; p=none"`)
	e := newEvaluator(t, z, nil)
	for name, h := range map[string]mail.Header{
		"no From":        {"To": {"a@example.com"}},
		"two From":       header("a@example.com", "b@example.com"),
		"malformed":      header("Joe <joe@>"),
		"group only":     header("undisclosed-recipients:;"),
		"empty":          header(""),
		"too many addrs": header("a@a.example, b@b.example, c@c.example, d@d.example, e@e.example"),
	} {
		r := e.Evaluate(ctx, h)
		if r.Status != PermError || !errors.Is(r.Err, ErrFrom) {
			t.Errorf("%s: %s %v", name, r.Status, r.Err)
		}
		if ar := r.AuthResult().(*authres.DMARCResult); ar.Value != authres.ResultPermError || ar.From != "" || ar.Reason == "" {
			t.Errorf("%s: authres %+v", name, ar)
		}
	}
	// Two domains: the strictest failing policy (RFC 7489 §6.6.1).
	r := e.Evaluate(ctx, header("a@example.net, b@example.com"), entries(spfResult("example.net", authres.ResultPass)))
	if r.Status != Fail || r.AuthorDomain != "example.com" || r.Disposition != PolicyReject || !slices.Equal(r.AuthorDomains, []string{"example.net", "example.com"}) {
		t.Errorf("two domains: %+v", r)
	}
	// Header field name case does not matter.
	r = e.Evaluate(ctx, mail.Header{"FROM": {"a@example.com"}}, entries(dkimResult("EXAMPLE.com", authres.ResultPass)))
	if r.Status != Pass || !slices.Equal(r.DKIMDomains, []string{"example.com"}) {
		t.Errorf("%+v", r)
	}
	ar := r.AuthResult()
	if got := authres.Format("mx.example", []authres.Result{ar}); got != "mx.example; dmarc=pass header.from=example.com" {
		t.Errorf("authres: %q", got)
	}
}

func TestEvaluateErrorsAndPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("temperror", func(t *testing.T) {
		z := dnstest.NewZone()
		z.Fail("_dmarc.example.com", dns.TypeTXT, dnstest.ServFail)
		r := newEvaluator(t, z, nil).Evaluate(ctx, header("a@example.com"))
		if r.Status != TempError || !errors.Is(r.Err, ErrDNS) {
			t.Errorf("%+v", r)
		}
		r = newEvaluator(t, z, rfc7489).Evaluate(ctx, header("a@example.com"))
		if r.Status != TempError || !errors.Is(r.Err, ErrDNS) || r.AuthResult().(*authres.DMARCResult).Value != authres.ResultTempError {
			t.Errorf("%+v", r)
		}
	})
	t.Run("multiple records", func(t *testing.T) {
		z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject"
_dmarc.example.com. TXT "v=DMARC1; p=none"
_dmarc.example.com. TXT "not dmarc"`)
		for _, rules := range []Rules{RFC7489, RFC9989} {
			r := newEvaluator(t, z, &Options{Rules: rules}).Evaluate(ctx, header("a@example.com"))
			if r.Status != None || !errors.Is(r.Err, ErrMultipleRecords) && !errors.Is(r.Err, ErrNoRecord) {
				t.Errorf("%v: %+v", rules, r)
			}
		}
		// RFC 7489 §6.6.3: several records at the author domain stop
		// discovery; no fallback to the organizational domain.
		z.AddTXT("_dmarc.example.com", "v=DMARC1; p=quarantine")
		z2 := dnstest.MustParseZone(`
_dmarc.a.example.com. TXT "v=DMARC1; p=reject"
_dmarc.a.example.com. TXT "v=DMARC1; p=none"
_dmarc.example.com. TXT "v=DMARC1; p=quarantine"`)
		r := newEvaluator(t, z2, rfc7489).Evaluate(ctx, header("x@a.example.com"))
		if r.Status != None || !errors.Is(r.Err, ErrMultipleRecords) {
			t.Errorf("RFC 7489: %+v", r)
		}
		// RFC 9989 §4.10 step 2: they are discarded and the walk goes on.
		r = newEvaluator(t, z2, nil).Evaluate(ctx, header("x@a.example.com"))
		if r.Status != Fail || r.PolicyDomain != "example.com" || r.Policy != PolicyQuarantine {
			t.Errorf("RFC 9989: %+v", r)
		}
	})
	t.Run("invalid sp without rua", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=bogus"`)
		r := newEvaluator(t, z, nil).Evaluate(ctx, header("a@example.com"))
		if r.Status != None || !errors.Is(r.Err, ErrNoRecord) {
			t.Errorf("%+v", r)
		}
		z = dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com"`)
		r = newEvaluator(t, z, nil).Evaluate(ctx, header("a@example.com"))
		if r.Status != Fail || r.Disposition != PolicyNone {
			t.Errorf("act as p=none: %+v", r)
		}
	})
	t.Run("t=y", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; t=y"`)
		r := newEvaluator(t, z, nil).Evaluate(ctx, header("a@example.com"))
		if r.Status != Fail || r.Policy != PolicyReject || r.Disposition != PolicyQuarantine || !r.TestMode {
			t.Errorf("%+v", r)
		}
		// RFC 7489 does not know t=.
		r = newEvaluator(t, z, rfc7489).Evaluate(ctx, header("a@example.com"))
		if r.Disposition != PolicyReject || r.TestMode {
			t.Errorf("%+v", r)
		}
	})
	t.Run("pct", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=quarantine; pct=30"`)
		// 29 is inside the 30 percent sample, 30 outside (RFC 7489 §6.6.4).
		in := newEvaluator(t, z, &Options{Rules: RFC7489, Rand: bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 29})})
		out := newEvaluator(t, z, &Options{Rules: RFC7489, Rand: bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 30})})
		if r := in.Evaluate(ctx, header("a@example.com")); r.Disposition != PolicyQuarantine || r.SampledOut {
			t.Errorf("sampled in: %+v", r)
		}
		if r := out.Evaluate(ctx, header("a@example.com")); r.Disposition != PolicyNone || !r.SampledOut {
			t.Errorf("sampled out: %+v", r)
		}
		// RFC 9989 removed pct=.
		if r := newEvaluator(t, z, &Options{Rand: bytes.NewReader(make([]byte, 8))}).Evaluate(ctx, header("a@example.com")); r.Disposition != PolicyQuarantine {
			t.Errorf("RFC 9989 with pct: %+v", r)
		}
	})
	t.Run("np without host resolver", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine; np=none"`)
		r := newEvaluator(t, txtOnly{z}, nil).Evaluate(ctx, header("a@ghost.example.com"))
		if r.Policy != PolicyQuarantine || r.PolicyTag != "sp" {
			t.Errorf("%+v", r)
		}
		r = newEvaluator(t, z, nil).Evaluate(ctx, header("a@ghost.example.com"))
		if r.Policy != PolicyNone || r.PolicyTag != "np" {
			t.Errorf("%+v", r)
		}
		// A name with only a TXT record exists (RFC 9989 Appendix A.4).
		z.AddTXT("txtonly.example.com", "hello")
		r = newEvaluator(t, z, nil).Evaluate(ctx, header("a@txtonly.example.com"))
		if r.PolicyTag != "sp" {
			t.Errorf("TXT-only name: %+v", r)
		}
		// When existence cannot be told (SERVFAIL), sp= applies.
		z.Fail("broken.example.com", dns.TypeANY, dnstest.ServFail)
		r = newEvaluator(t, z, nil).Evaluate(ctx, header("a@broken.example.com"))
		if r.PolicyTag != "sp" || r.Status != Fail {
			t.Errorf("SERVFAIL: %+v", r)
		}
	})
}

type txtOnly struct{ r Resolver }

func (t txtOnly) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return t.r.LookupTXT(ctx, name)
}

func TestULabels(t *testing.T) {
	// RFC 3492 §7.1 sample (L) and well-known names.
	for in, want := range map[string]string{
		"bücher.example":   "xn--bcher-kva.example",
		"MÜNCHEN.de":       "xn--mnchen-3ya.de",
		"例え.テスト":           "xn--r8jz45g.xn--zckzah",
		"ascii.example":    "ascii.example",
		"3年b組金八先生.example": "xn--3b-ww4c5e180e575a65lsy2b.example",
	} {
		ds, err := fromDomains("<a@" + in + ">")
		if err != nil || len(ds) != 1 || ds[0] != want {
			t.Errorf("%s: got %v %v, want %s", in, ds, err, want)
		}
	}
	if _, err := fromDomains("a@b\xff.example"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

func TestNewEvaluator(t *testing.T) {
	if e, err := NewEvaluator(nil, nil); err == nil || e != nil {
		t.Errorf("nil resolver: %v %v", e, err)
	}
	z := dnstest.NewZone()
	for _, o := range []*Options{{Rules: Rules(7)}, {MaxAuthorDomains: -1}} {
		if _, err := NewEvaluator(z, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	// Without DNS, RFC 7489 rules still give organizational domains.
	if org, err := newEvaluator(t, z, rfc7489).OrganizationalDomain(context.Background(), "a.b.example.co.uk"); err != nil || org != "example.co.uk" || len(z.Queries()) != 0 {
		t.Errorf("%q %v %v", org, err, z.Queries())
	}
	// An Evaluator not made by NewEvaluator says so, and does not pass
	// for a DNS failure.
	var e Evaluator
	if r := e.Evaluate(context.Background(), header("a@example.com")); r.Status != TempError || r.Err == nil || errors.Is(r.Err, ErrDNS) {
		t.Errorf("%+v", r)
	}
	if _, err := e.Lookup(context.Background(), "example.com"); err == nil || errors.Is(err, ErrDNS) {
		t.Errorf("%v", err)
	}
	if _, err := e.OrganizationalDomain(context.Background(), "a.example.com"); err == nil {
		t.Errorf("%v", err)
	}
}

// TestEvaluateInputs: the SPF and DKIM results are read from the entries
// of every kind Evaluate documents, and only passes align.
func TestEvaluateInputs(t *testing.T) {
	ctx := context.Background()
	e := newEvaluator(t, dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; rua=mailto:d@example.com"`), nil)
	from := header("Alice <alice@example.com>")
	for _, c := range []struct {
		name      string
		results   []msgauth.Result
		status    Status
		spf, dkim Status
		inputs    AuthResults
	}{
		{"dkim generic entry", []msgauth.Result{entries(&authres.GenericResult{Method: "DKIM", Value: "pass",
			Params: map[string]string{"header.d": "Mail.Example.com", "header.s": "s1", "header.i": "@mail.example.com"}})},
			Pass, None, Pass, AuthResults{DKIM: []DKIMAuthResult{{Domain: "mail.example.com", Selector: "s1", Result: "pass"}}}},
		{"dkim entry", []msgauth.Result{entries(&authres.DKIMResult{Value: "PASS", Domain: "example.com", Identifier: "a@example.com"})},
			Pass, None, Pass, AuthResults{DKIM: []DKIMAuthResult{{Domain: "example.com", Result: "pass"}}}},
		{"spf @domain", []msgauth.Result{entries(&authres.SPFResult{Value: "pass", From: "@example.com", Helo: "mx.other.example"})},
			Pass, Pass, None, AuthResults{SPF: []SPFAuthResult{{Domain: "example.com", Scope: "mfrom", Result: "pass"}}}},
		{"spf address", []msgauth.Result{entries(&authres.SPFResult{Value: "pass", From: "bounce+x=y@Bounces.Example.COM"})},
			Pass, Pass, None, AuthResults{SPF: []SPFAuthResult{{Domain: "bounces.example.com", Scope: "mfrom", Result: "pass"}}}},
		{"spf generic entry", []msgauth.Result{entries(&authres.GenericResult{Method: "spf", Value: "pass", Params: map[string]string{"smtp.mailfrom": "example.com"}})},
			Pass, Pass, None, AuthResults{SPF: []SPFAuthResult{{Domain: "example.com", Scope: "mfrom", Result: "pass"}}}},
		{"helo fallback", []msgauth.Result{entries(&authres.SPFResult{Value: "pass", From: "<>", Helo: "mx.example.com"})},
			Pass, Pass, None, AuthResults{SPF: []SPFAuthResult{{Domain: "mx.example.com", Scope: "helo", Result: "pass"}}}},
		{"first mailfrom wins", []msgauth.Result{
			entries(&authres.SPFResult{Value: "pass", Helo: "example.com"}),
			entries(&authres.SPFResult{Value: "softfail", From: "a@other.example"}, &authres.SPFResult{Value: "pass", From: "a@example.com"})},
			Fail, None, None, AuthResults{SPF: []SPFAuthResult{{Domain: "other.example", Scope: "mfrom", Result: "softfail"}}}},
		{"non-pass ignored", []msgauth.Result{entries(spfResult("example.com", authres.ResultFail), dkimResult("example.com", authres.ResultNeutral))},
			Fail, None, None, AuthResults{SPF: []SPFAuthResult{{Domain: "example.com", Scope: "mfrom", Result: "fail"}},
				DKIM: []DKIMAuthResult{{Domain: "example.com", Result: "neutral"}}}},
		{"other methods ignored", []msgauth.Result{nil, entries(&authres.DMARCResult{Value: "pass", From: "example.com"},
			&authres.IPRevResult{Value: "pass", IP: "192.0.2.1"}, &authres.GenericResult{Method: "arc", Value: "pass"},
			&authres.GenericResult{Method: "dkim", Value: "none"})},
			Fail, None, None, AuthResults{}},
	} {
		r := e.Evaluate(ctx, from, c.results...)
		if r.Status != c.status || r.SPF != c.spf || r.DKIM != c.dkim || !reflect.DeepEqual(r.Inputs, c.inputs) {
			t.Errorf("%s: got %s spf %s dkim %s inputs %+v (%v); want %s %s %s %+v", c.name, r.Status, r.SPF, r.DKIM, r.Inputs, r.Err, c.status, c.spf, c.dkim, c.inputs)
		}
		if (r.Err == nil) != (r.Status == Pass) {
			t.Errorf("%s: %s with error %v", c.name, r.Status, r.Err)
		}
	}
}

// TestFailError: a fail says which identifiers were tried and why none
// aligned, in Err and in the reason of its Authentication-Results entry.
func TestFailError(t *testing.T) {
	ctx := context.Background()
	z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject"
_dmarc.strict.example. TXT "v=DMARC1; p=quarantine; t=y; adkim=s"`)
	e := newEvaluator(t, z, nil)
	r := e.Evaluate(ctx, header("a@example.com"), entries(spfResult("other.example", authres.ResultPass)))
	const want = "dmarc: no aligned pass for example.com: spf pass for other.example not aligned, no dkim pass"
	if r.Status != Fail || r.Err == nil || r.Err.Error() != want {
		t.Errorf("got %s %v, want %q", r.Status, r.Err, want)
	}
	if got := msgauth.Format("mx.example", r); got != `mx.example; dmarc=fail reason="p=reject dis=reject: no aligned pass for example.com: spf pass for other.example not aligned, no dkim pass" header.from=example.com` {
		t.Errorf("authres: %s", got)
	}
	r = e.Evaluate(ctx, header("a@strict.example"),
		entries(dkimResult("mail.strict.example", authres.ResultPass), dkimResult("strict.example", authres.ResultFail)))
	const want2 = "dmarc: no aligned pass for strict.example: no spf pass, dkim pass for mail.strict.example not aligned (adkim=s), dkim fail for strict.example"
	if r.Status != Fail || r.Disposition != PolicyNone || r.Err == nil || r.Err.Error() != want2 {
		t.Errorf("got %s %s %v, want %q", r.Status, r.Disposition, r.Err, want2)
	}
	if ar := r.AuthResult().(*authres.DMARCResult); !strings.HasPrefix(ar.Reason, "p=quarantine dis=none: no aligned pass") {
		t.Errorf("reason %q", ar.Reason)
	}
	// None says why too, and pass has no error and no reason.
	r = e.Evaluate(ctx, header("a@nothing.example"))
	if ar := r.AuthResult().(*authres.DMARCResult); r.Status != None || ar.Reason != "no DMARC record" {
		t.Errorf("none: %s %q", r.Status, ar.Reason)
	}
	r = e.Evaluate(ctx, header("a@example.com"), entries(spfResult("example.com", authres.ResultPass)))
	if ar := r.AuthResult().(*authres.DMARCResult); r.Status != Pass || r.Err != nil || ar.Reason != "" {
		t.Errorf("pass: %s %v %q", r.Status, r.Err, ar.Reason)
	}
}

// TestEvaluateDefaultResolver: the package function evaluates too; a
// message without From needs no DNS.
func TestEvaluateDefaultResolver(t *testing.T) {
	r := Evaluate(context.Background(), mail.Header{}, entries(spfResult("example.com", authres.ResultPass)))
	if r.Status != PermError || !errors.Is(r.Err, ErrFrom) || len(r.Inputs.SPF) != 1 {
		t.Errorf("%+v", r)
	}
}
