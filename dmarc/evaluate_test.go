package dmarc

import (
	"bytes"
	"context"
	"errors"
	"net/mail"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

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
	e := &Evaluator{Resolver: dnstest.NewZone(), Rules: RFC7489}
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
		ds, err := FromDomains(c.From)
		if err != nil || len(ds) == 0 || ds[0] != c.Expected {
			t.Errorf("case %d %q: got %v (%v), want first %q", c.Case, c.From, ds, err, c.Expected)
		}
	}
	// Several addresses: every domain, in order (RFC 7489 §6.6.1).
	ds, _ := FromDomains("Joe Johnson <joe@joe.com>, ace@ACE.com, x@joe.com")
	if !slices.Equal(ds, []string{"joe.com", "ace.com"}) {
		t.Errorf("several: %v", ds)
	}
	for _, bad := range []string{"", "Joe Johnson", "joe@", "undisclosed-recipients:;", "joe@exa..mple.com"} {
		if ds, err := FromDomains(bad); err == nil || !errors.Is(err, ErrFrom) || !errors.Is(err, ErrSyntax) {
			t.Errorf("FromDomains(%q) = %v, %v; want ErrFrom", bad, ds, err)
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
		case StatusPass:
			return "pass"
		case StatusFail:
			return "fail (not aligned)"
		}
		return "none"
	}
	for _, rules := range []Rules{RFC9989, RFC7489} {
		for _, c := range file.Alignment {
			z := dnstest.NewZone()
			z.AddTXT(c.RecordAt, c.Record)
			e := &Evaluator{Resolver: z, Rules: rules}
			r := e.Evaluate(context.Background(), &Params{
				Header: header(c.HeaderFrom),
				SPF:    SPFResult{Domain: c.MailFromDomain, Result: resultKeyword(c.SPF)},
				DKIM:   []DKIMResult{{Domain: c.DKIMD, Result: resultKeyword(c.DKIM)}},
			})
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
			e := &Evaluator{Resolver: z, Rules: rules}
			r := e.Evaluate(context.Background(), &Params{Header: header(c.HeaderFrom), SPF: SPFResult{Domain: "other.example", Result: "pass"}})
			want := c.ExpectPolicy
			if rules == RFC7489 && strings.Contains(c.RFC, "under RFC 7489 np is unknown and sp=quarantine applies") {
				want = "quarantine"
			}
			switch want {
			case "(no DMARC result / none)":
				if r.Status != StatusNone || !errors.Is(r.Err, ErrNoRecord) || r.Record != nil {
					t.Errorf("%v %s: got %s %v", rules, c.Name, r.Status, r.Err)
				}
			default:
				if r.Status != StatusFail || string(r.Policy) != want || string(r.Disposition) != want {
					t.Errorf("%v %s: got status %s policy %s (%s) disposition %s (%v); want %s", rules, c.Name, r.Status, r.Policy, r.PolicyTag, r.Disposition, r.Err, want)
				}
			}
		}
	}
}

// TestTreeWalkTargets: the eight queries of the RFC 9989 §4.10 example.
func TestTreeWalkTargets(t *testing.T) {
	got := TreeWalkTargets("a.b.c.d.e.f.g.h.i.j.mail.example.com")
	want := []string{"a.b.c.d.e.f.g.h.i.j.mail.example.com", "g.h.i.j.mail.example.com", "h.i.j.mail.example.com",
		"i.j.mail.example.com", "j.mail.example.com", "mail.example.com", "example.com", "com"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// §5.1.8: the record at b.c.d.e.f.g.example.com is never queried.
	got = TreeWalkTargets("mail.a.b.c.d.e.f.g.example.com")
	want = []string{"mail.a.b.c.d.e.f.g.example.com", "c.d.e.f.g.example.com", "d.e.f.g.example.com", "e.f.g.example.com",
		"f.g.example.com", "g.example.com", "example.com", "com"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if got := TreeWalkTargets("Example.COM."); !slices.Equal(got, []string{"example.com", "com"}) {
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
		e := &Evaluator{Resolver: z}
		r := e.Evaluate(ctx, &Params{Header: header("a@example.com"),
			SPF:  SPFResult{Domain: "example.com", Result: "pass"},
			DKIM: []DKIMResult{{Domain: "signing.example.com", Result: "pass"}}})
		if r.Status != StatusPass || r.SPF != StatusPass || r.DKIM != StatusPass || r.OrgDomain != "example.com" || r.PolicyDomain != "example.com" {
			t.Errorf("%+v", r)
		}
	})
	t.Run("B.4.2", func(t *testing.T) {
		z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject"
_dmarc.signing.example.com. TXT "v=DMARC1; p=none"`)
		e := &Evaluator{Resolver: z}
		r := e.Evaluate(ctx, &Params{Header: header("a@a.b.c.d.e.f.g.h.i.j.k.example.com"),
			SPF:  SPFResult{Domain: "example.com", Result: "fail"},
			DKIM: []DKIMResult{{Domain: "signing.example.com", Result: "pass"}}})
		if r.Status != StatusPass || r.DKIM != StatusPass || r.OrgDomain != "example.com" || r.PolicyDomain != "example.com" {
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
		r = e.Evaluate(ctx, &Params{Header: header("a@a.b.c.d.e.f.g.h.i.j.k.example.com")})
		if r.Status != StatusFail || r.Policy != PolicyReject || r.PolicyTag != "p" {
			t.Errorf("%+v", r)
		}
	})
	t.Run("B.4.3", func(t *testing.T) {
		z := dnstest.MustParseZone(`
_dmarc.bank.example. TXT "v=DMARC1; p=reject; psd=y"
_dmarc.giant.bank.example. TXT "v=DMARC1; p=quarantine"`)
		e := &Evaluator{Resolver: z}
		r := e.Evaluate(ctx, &Params{Header: header("a@giant.bank.example"),
			SPF:  SPFResult{Domain: "mail.giant.bank.example", Result: "pass"},
			DKIM: []DKIMResult{{Domain: "mail.mega.bank.example", Result: "pass"}}})
		if r.Status != StatusPass || r.SPF != StatusPass || r.DKIM != StatusFail || r.OrgDomain != "giant.bank.example" {
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
		r = e.Evaluate(ctx, &Params{Header: header("a@mail.mega.bank.example")})
		if r.Status != StatusFail || r.PolicyDomain != "bank.example" || r.OrgDomain != "mega.bank.example" || r.Policy != PolicyReject {
			t.Errorf("%+v", r)
		}
	})
	t.Run("4.10.2", func(t *testing.T) {
		e := &Evaluator{Resolver: dnstest.MustParseZone(`
_dmarc.mail.example.com. TXT "v=DMARC1; p=none"
_dmarc.example.com. TXT "v=DMARC1; p=none"`)}
		if org, _ := e.OrganizationalDomain(ctx, "a.mail.example.com"); org != "example.com" {
			t.Errorf("got %q, want example.com", org)
		}
		e = &Evaluator{Resolver: dnstest.MustParseZone(`
_dmarc.mail.example.com. TXT "v=DMARC1; p=none; psd=n"
_dmarc.example.com. TXT "v=DMARC1; p=none"`)}
		if org, _ := e.OrganizationalDomain(ctx, "a.mail.example.com"); org != "mail.example.com" {
			t.Errorf("got %q, want mail.example.com", org)
		}
		e = &Evaluator{Resolver: dnstest.MustParseZone(`_dmarc.com. TXT "v=DMARC1; p=none; psd=y"`)}
		if org, _ := e.OrganizationalDomain(ctx, "a.mail.example.com"); org != "example.com" {
			t.Errorf("got %q, want example.com", org)
		}
		e = &Evaluator{Resolver: dnstest.NewZone()}
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
	e := &Evaluator{Resolver: z}
	for name, h := range map[string]mail.Header{
		"no From":        {"To": {"a@example.com"}},
		"two From":       header("a@example.com", "b@example.com"),
		"malformed":      header("Joe <joe@>"),
		"group only":     header("undisclosed-recipients:;"),
		"empty":          header(""),
		"too many addrs": header("a@a.example, b@b.example, c@c.example, d@d.example, e@e.example"),
	} {
		r := e.Evaluate(ctx, &Params{Header: h})
		if r.Status != StatusPermError || !errors.Is(r.Err, ErrFrom) {
			t.Errorf("%s: %s %v", name, r.Status, r.Err)
		}
		if ar := r.AuthResult(); ar.Value != authres.ResultPermError {
			t.Errorf("%s: authres %+v", name, ar)
		}
	}
	// Two domains: the strictest failing policy (RFC 7489 §6.6.1).
	r := e.Evaluate(ctx, &Params{Header: header("a@example.net, b@example.com"), SPF: SPFResult{Domain: "example.net", Result: "pass"}})
	if r.Status != StatusFail || r.AuthorDomain != "example.com" || r.Disposition != PolicyReject || !slices.Equal(r.AuthorDomains, []string{"example.net", "example.com"}) {
		t.Errorf("two domains: %+v", r)
	}
	// Header field name case does not matter.
	r = e.Evaluate(ctx, &Params{Header: mail.Header{"FROM": {"a@example.com"}}, DKIM: []DKIMResult{{Domain: "EXAMPLE.com", Result: "pass"}}})
	if r.Status != StatusPass || !slices.Equal(r.DKIMDomains, []string{"example.com"}) {
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
		r := (&Evaluator{Resolver: z}).Evaluate(ctx, &Params{Header: header("a@example.com")})
		if r.Status != StatusTempError || !errors.Is(r.Err, ErrDNS) {
			t.Errorf("%+v", r)
		}
		r = (&Evaluator{Resolver: z, Rules: RFC7489}).Evaluate(ctx, &Params{Header: header("a@example.com")})
		if r.Status != StatusTempError || !errors.Is(r.Err, ErrDNS) || r.AuthResult().Value != authres.ResultTempError {
			t.Errorf("%+v", r)
		}
	})
	t.Run("multiple records", func(t *testing.T) {
		z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject"
_dmarc.example.com. TXT "v=DMARC1; p=none"
_dmarc.example.com. TXT "not dmarc"`)
		for _, rules := range []Rules{RFC7489, RFC9989} {
			r := (&Evaluator{Resolver: z, Rules: rules}).Evaluate(ctx, &Params{Header: header("a@example.com")})
			if r.Status != StatusNone || !errors.Is(r.Err, ErrMultipleRecords) && !errors.Is(r.Err, ErrNoRecord) {
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
		r := (&Evaluator{Resolver: z2, Rules: RFC7489}).Evaluate(ctx, &Params{Header: header("x@a.example.com")})
		if r.Status != StatusNone || !errors.Is(r.Err, ErrMultipleRecords) {
			t.Errorf("RFC 7489: %+v", r)
		}
		// RFC 9989 §4.10 step 2: they are discarded and the walk goes on.
		r = (&Evaluator{Resolver: z2}).Evaluate(ctx, &Params{Header: header("x@a.example.com")})
		if r.Status != StatusFail || r.PolicyDomain != "example.com" || r.Policy != PolicyQuarantine {
			t.Errorf("RFC 9989: %+v", r)
		}
	})
	t.Run("invalid sp without rua", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=bogus"`)
		r := (&Evaluator{Resolver: z}).Evaluate(ctx, &Params{Header: header("a@example.com")})
		if r.Status != StatusNone || !errors.Is(r.Err, ErrNoRecord) {
			t.Errorf("%+v", r)
		}
		z = dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com"`)
		r = (&Evaluator{Resolver: z}).Evaluate(ctx, &Params{Header: header("a@example.com")})
		if r.Status != StatusFail || r.Disposition != PolicyNone {
			t.Errorf("act as p=none: %+v", r)
		}
	})
	t.Run("t=y", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; t=y"`)
		r := (&Evaluator{Resolver: z}).Evaluate(ctx, &Params{Header: header("a@example.com")})
		if r.Status != StatusFail || r.Policy != PolicyReject || r.Disposition != PolicyQuarantine || !r.TestMode {
			t.Errorf("%+v", r)
		}
		// RFC 7489 does not know t=.
		r = (&Evaluator{Resolver: z, Rules: RFC7489}).Evaluate(ctx, &Params{Header: header("a@example.com")})
		if r.Disposition != PolicyReject || r.TestMode {
			t.Errorf("%+v", r)
		}
	})
	t.Run("pct", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=quarantine; pct=30"`)
		// 29 is inside the 30 percent sample, 30 outside (RFC 7489 §6.6.4).
		in := &Evaluator{Resolver: z, Rules: RFC7489, Rand: bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 29})}
		out := &Evaluator{Resolver: z, Rules: RFC7489, Rand: bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 30})}
		if r := in.Evaluate(ctx, &Params{Header: header("a@example.com")}); r.Disposition != PolicyQuarantine || r.SampledOut {
			t.Errorf("sampled in: %+v", r)
		}
		if r := out.Evaluate(ctx, &Params{Header: header("a@example.com")}); r.Disposition != PolicyNone || !r.SampledOut {
			t.Errorf("sampled out: %+v", r)
		}
		// RFC 9989 removed pct=.
		if r := (&Evaluator{Resolver: z, Rand: bytes.NewReader(make([]byte, 8))}).Evaluate(ctx, &Params{Header: header("a@example.com")}); r.Disposition != PolicyQuarantine {
			t.Errorf("RFC 9989 with pct: %+v", r)
		}
	})
	t.Run("np without host resolver", func(t *testing.T) {
		z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine; np=none"`)
		r := (&Evaluator{Resolver: txtOnly{z}}).Evaluate(ctx, &Params{Header: header("a@ghost.example.com")})
		if r.Policy != PolicyQuarantine || r.PolicyTag != "sp" {
			t.Errorf("%+v", r)
		}
		r = (&Evaluator{Resolver: z}).Evaluate(ctx, &Params{Header: header("a@ghost.example.com")})
		if r.Policy != PolicyNone || r.PolicyTag != "np" {
			t.Errorf("%+v", r)
		}
		// A name with only a TXT record exists (RFC 9989 Appendix A.4).
		z.AddTXT("txtonly.example.com", "hello")
		r = (&Evaluator{Resolver: z}).Evaluate(ctx, &Params{Header: header("a@txtonly.example.com")})
		if r.PolicyTag != "sp" {
			t.Errorf("TXT-only name: %+v", r)
		}
		// When existence cannot be told (SERVFAIL), sp= applies.
		z.Fail("broken.example.com", dns.TypeANY, dnstest.ServFail)
		r = (&Evaluator{Resolver: z}).Evaluate(ctx, &Params{Header: header("a@broken.example.com")})
		if r.PolicyTag != "sp" || r.Status != StatusFail {
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
		ds, err := FromDomains("<a@" + in + ">")
		if err != nil || len(ds) != 1 || ds[0] != want {
			t.Errorf("%s: got %v %v, want %s", in, ds, err, want)
		}
	}
	if _, err := FromDomains("a@b\xff.example"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

func TestNoResolver(t *testing.T) {
	var e Evaluator
	if r := e.Evaluate(context.Background(), &Params{Header: header("a@example.com")}); r.Status != StatusTempError || !errors.Is(r.Err, ErrDNS) {
		t.Errorf("%+v", r)
	}
	if _, err := e.Lookup(context.Background(), "example.com"); !errors.Is(err, ErrDNS) {
		t.Errorf("%v", err)
	}
	if _, err := e.OrganizationalDomain(context.Background(), "a.example.com"); !errors.Is(err, ErrDNS) {
		t.Errorf("%v", err)
	}
	e.Rules = RFC7489
	if org, err := e.OrganizationalDomain(context.Background(), "a.b.example.co.uk"); err != nil || org != "example.co.uk" {
		t.Errorf("%q %v", org, err)
	}
}
