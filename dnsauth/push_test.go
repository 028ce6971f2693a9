package dnsauth_test

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// pushZone is an empty zone: its SOA and NS, and the name server's
// address.
const pushZone = `
$ORIGIN example.com.
@   SOA  ns1 hostmaster 1 7200 900 1209600 300
@   NS   ns1
ns1 A    192.0.2.53
`

func pushRequest() *dnsauth.Request {
	return &dnsauth.Request{Domain: "example.com", ReturnPath: "em1234", Selectors: []string{"s1", "s2"},
		Target: "u1234.wl.provider.net", SPFInclude: "_spf.provider.net", MX: "mx.provider.net"}
}

// delegated plans the delegated mode for example.com, with the SPF
// records the domain publishes.
func delegated(t *testing.T, existingSPF ...string) *dnsauth.Plan {
	t.Helper()
	req := pushRequest()
	req.ExistingSPF = existingSPF
	p, err := req.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPlan(t *testing.T, req *dnsauth.Request) *dnsauth.Plan {
	t.Helper()
	p, err := req.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pushServer starts a server for the zone text that applies updates
// signed with the test key, and an Updater of example.com for it.
func pushServer(t *testing.T, text string) (*dnstest.Server, *dnsauth.Updater) {
	t.Helper()
	s, err := dnstest.NewServer(dnstest.MustParseZone(text))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AcceptUpdates(map[string]string{pushKeyName: pushSecret})
	u, err := dnsauth.NewUpdater(s.Addr, "example.com", mustKey(t, pushSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, u
}

// serial is the zone's SOA serial, which every applied update increments.
func serial(t *testing.T, z *dnstest.Zone) uint32 {
	t.Helper()
	a := z.Resolve("example.com", dns.TypeSOA)
	if len(a.Records) != 1 {
		t.Fatal("no SOA")
	}
	return a.Records[0].(*dns.SOA).Serial
}

// outcomes lists the outcome of each change, in order.
func outcomes(res *dnsauth.PushResult) string {
	var out []string
	for _, c := range res.Changes {
		out = append(out, string(c.Outcome))
	}
	return strings.Join(out, " ")
}

// state is what z holds at the names of the plans, one line per record,
// sorted, for comparing a zone before and after.
func state(z *dnstest.Zone) string {
	var out []string
	for _, n := range []string{"example.com", "em1234.example.com", "s1._domainkey.example.com", "s2._domainkey.example.com",
		"_dmarc.example.com", "mail.example.com", "bounce.example.com"} {
		for _, t := range []uint16{dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypeNS} {
			for _, rr := range z.Resolve(n, t).Records {
				if rr.Header().Rrtype == t {
					out = append(out, rr.String())
				}
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func cnameOf(z *dnstest.Zone, name string) string {
	for _, rr := range z.Resolve(name, dns.TypeCNAME).Records {
		return rr.(*dns.CNAME).Target
	}
	return ""
}

func txtsOf(t *testing.T, z *dnstest.Zone, name string) []string {
	t.Helper()
	txt, _ := z.LookupTXT(context.Background(), name)
	slices.Sort(txt)
	return txt
}

// TestPushDelegated: a delegated plan applied to an empty zone puts every
// record there in one update; applied again, every change is skipped and
// the zone is not changed.
func TestPushDelegated(t *testing.T) {
	t.Parallel()
	s, u := pushServer(t, pushZone)
	p := delegated(t)
	ctx := context.Background()
	res, err := u.Apply(ctx, p.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "applied applied applied applied applied" {
		t.Errorf("outcomes %s", got)
	}
	for name, want := range map[string]string{
		"em1234.example.com":        "u1234.wl.provider.net.",
		"s1._domainkey.example.com": "s1.domainkey.u1234.wl.provider.net.",
		"s2._domainkey.example.com": "s2.domainkey.u1234.wl.provider.net.",
	} {
		if got := cnameOf(s.Zone, name); got != want {
			t.Errorf("CNAME of %s: %q, want %q", name, got, want)
		}
	}
	if got := txtsOf(t, s.Zone, "example.com"); !slices.Equal(got, []string{"v=spf1 include:_spf.provider.net ~all"}) {
		t.Errorf("SPF: %q", got)
	}
	if got := txtsOf(t, s.Zone, "_dmarc.example.com"); !slices.Equal(got, []string{"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"}) {
		t.Errorf("DMARC: %q", got)
	}
	if n := serial(t, s.Zone); n != 2 {
		t.Errorf("serial %d, want 2: one update", n)
	}
	before := state(s.Zone)

	res, err = u.Apply(ctx, p.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "skipped skipped skipped skipped skipped" {
		t.Errorf("applied again: %s", got)
	}
	if n := serial(t, s.Zone); n != 2 || state(s.Zone) != before {
		t.Errorf("applied again: the zone changed (serial %d)", n)
	}
}

// TestPushKeepsOtherRecords: the domain's SPF record is replaced by the one
// with the include, exactly as the server holds it (split into two
// strings here), and the other TXT records of the apex stay; with no SPF
// record, one is added beside them.
func TestPushKeepsOtherRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := pushServer(t, pushZone+`
@ TXT "google-site-verification=abc"
@ TXT "v=spf1 mx " "-all"
`)
	p := delegated(t, "v=spf1 mx -all")
	res, err := u.Apply(ctx, p.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "applied applied applied applied applied" {
		t.Errorf("outcomes %s", got)
	}
	want := []string{"google-site-verification=abc", "v=spf1 mx include:_spf.provider.net -all"}
	if got := txtsOf(t, s.Zone, "example.com"); !slices.Equal(got, want) {
		t.Errorf("apex TXT %q, want %q", got, want)
	}
	if res, err := u.Apply(ctx, p.Changes()); err != nil || outcomes(res) != "skipped skipped skipped skipped skipped" {
		t.Errorf("applied again: %v %v", outcomes(res), err)
	}

	s, u = pushServer(t, pushZone+`@ TXT "google-site-verification=abc"`)
	if _, err := u.Apply(ctx, delegated(t).Changes()); err != nil {
		t.Fatal(err)
	}
	want = []string{"google-site-verification=abc", "v=spf1 include:_spf.provider.net ~all"}
	if got := txtsOf(t, s.Zone, "example.com"); !slices.Equal(got, want) {
		t.Errorf("apex TXT %q, want %q", got, want)
	}
}

// TestPushConflicts: different data where the plan puts a record, or an
// SPF record other than the one the plan replaces, is a conflict of that
// change, reported with what was found; nothing is changed.
func TestPushConflicts(t *testing.T) {
	t.Parallel()
	key := rfc8463Key(t)
	selfHosted := &dnsauth.Request{Domain: "example.com", Mode: dnsauth.SelfHosted, ReturnPath: "bounce", Selectors: []string{"s1"},
		SPFInclude: "_spf.provider.net", MX: "mx.provider.net", Keys: map[string]crypto.PublicKey{"s1": key}}
	for _, tc := range []struct {
		name  string
		zone  string
		plan  *dnsauth.Plan
		at    string // the change that conflicts: name and type
		found string // type and value found
	}{
		{"CNAME to another target", `s1._domainkey CNAME s1.dkim.other.net.`, delegated(t),
			"s1._domainkey.example.com. CNAME", "CNAME s1.dkim.other.net."},
		{"key record where a CNAME goes", `s2._domainkey TXT "v=DKIM1; p=abc"`, delegated(t),
			"s2._domainkey.example.com. CNAME", "TXT v=DKIM1; p=abc"},
		{"TXT where a CNAME goes", `em1234 TXT "hello"`, delegated(t),
			"em1234.example.com. CNAME", "TXT hello"},
		{"another SPF record", `@ TXT "v=spf1 a -all"`, delegated(t),
			"example.com. TXT", "TXT v=spf1 a -all"},
		{"SPF record changed since planning", `@ TXT "v=spf1 a -all"`, delegated(t, "v=spf1 mx -all"),
			"example.com. TXT", "TXT v=spf1 a -all"},
		{"a DMARC record", `_dmarc TXT "v=DMARC1; p=reject"`, delegated(t),
			"_dmarc.example.com. TXT", "TXT v=DMARC1; p=reject"},
		{"another key at the selector", `s1._domainkey TXT "v=DKIM1; k=rsa; p=abc"`, mustPlan(t, selfHosted),
			"s1._domainkey.example.com. TXT", "TXT v=DKIM1; k=rsa; p=abc"},
		{"another MX at the return path", `bounce MX 10 mx.other.net.`, mustPlan(t, selfHosted),
			"bounce.example.com. MX", "MX 10 mx.other.net."},
		{"an alias at the return path", `bounce CNAME bounce.other.net.`, mustPlan(t, selfHosted),
			"bounce.example.com. MX", "CNAME bounce.other.net."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, u := pushServer(t, pushZone+tc.zone)
			before := state(s.Zone)
			res, err := u.Apply(context.Background(), tc.plan.Changes())
			if !errors.Is(err, dnsauth.ErrConflict) {
				t.Fatalf("err %v, want ErrConflict", err)
			}
			for _, c := range res.Changes {
				at := c.Change.Record.Name + " " + c.Change.Record.Type
				var found []string
				for _, f := range c.Found {
					found = append(found, f.Type+" "+f.Value)
				}
				switch {
				case at == tc.at:
					if c.Outcome != dnsauth.OutcomeConflict || len(found) != 1 || found[0] != tc.found || c.Reason == "" {
						t.Errorf("%s: %s, found %q (%s), want a conflict with %q", at, c.Outcome, found, c.Reason, tc.found)
					}
				case c.Outcome != dnsauth.OutcomeNotApplied && c.Outcome != dnsauth.OutcomeConflict:
					t.Errorf("%s: %s, want not applied", at, c.Outcome)
				}
			}
			if n := serial(t, s.Zone); n != 1 || state(s.Zone) != before {
				t.Errorf("the zone changed (serial %d):\n%s\nwas\n%s", n, state(s.Zone), before)
			}
		})
	}
}

// TestPushDataChangedMeanwhile: when the zone changes between reading it
// and the update, the update's prerequisites fail on the server and
// nothing changes; reading again finds the conflict. A change that does
// not conflict (another TXT record at the apex) only makes the update go
// again.
func TestPushDataChangedMeanwhile(t *testing.T) {
	t.Parallel()
	const spfZone = pushZone + `@ TXT "v=spf1 mx -all"`
	ctx := context.Background()

	s, u := pushServer(t, spfZone)
	dnsauth.SetBeforeSend(u, func() {
		s.Zone.Remove("example.com", dns.TypeTXT)
		s.Zone.AddTXT("example.com", "v=spf1 a -all")
	})
	res, err := u.Apply(ctx, delegated(t, "v=spf1 mx -all").Changes())
	if !errors.Is(err, dnsauth.ErrConflict) {
		t.Fatalf("SPF changed meanwhile: %v", err)
	}
	if got := outcomes(res); got != "not-applied not-applied not-applied conflict not-applied" {
		t.Errorf("SPF changed meanwhile: %s", got)
	}
	if c := res.Changes[3]; len(c.Found) != 1 || c.Found[0].Value != "v=spf1 a -all" {
		t.Errorf("SPF changed meanwhile: found %v", c.Found)
	}
	if n := serial(t, s.Zone); n != 1 || cnameOf(s.Zone, "em1234.example.com") != "" {
		t.Errorf("SPF changed meanwhile: the update was applied (serial %d)", n)
	}

	s, u = pushServer(t, spfZone)
	dnsauth.SetBeforeSend(u, func() { s.Zone.AddCNAME("s2._domainkey.example.com", "s2.dkim.other.net") })
	res, err = u.Apply(ctx, delegated(t, "v=spf1 mx -all").Changes())
	if !errors.Is(err, dnsauth.ErrConflict) || res.Changes[2].Outcome != dnsauth.OutcomeConflict {
		t.Fatalf("CNAME added meanwhile: %v, %s", err, outcomes(res))
	}
	if n := serial(t, s.Zone); n != 1 || !slices.Equal(txtsOf(t, s.Zone, "example.com"), []string{"v=spf1 mx -all"}) {
		t.Errorf("CNAME added meanwhile: the update was applied (serial %d)", n)
	}

	s, u = pushServer(t, spfZone)
	sent := 0
	dnsauth.SetBeforeSend(u, func() {
		if sent++; sent == 1 {
			s.Zone.AddTXT("example.com", "google-site-verification=abc")
		}
	})
	res, err = u.Apply(ctx, delegated(t, "v=spf1 mx -all").Changes())
	if err != nil || sent != 2 || outcomes(res) != "applied applied applied applied applied" {
		t.Fatalf("TXT added meanwhile: %v, %d updates, %s", err, sent, outcomes(res))
	}
	want := []string{"google-site-verification=abc", "v=spf1 mx include:_spf.provider.net -all"}
	if got := txtsOf(t, s.Zone, "example.com"); !slices.Equal(got, want) {
		t.Errorf("TXT added meanwhile: apex %q, want %q", got, want)
	}

	s, u = pushServer(t, spfZone)
	dnsauth.SetBeforeSend(u, func() { s.Zone.AddTXT("example.com", "verification="+strings.Repeat("x", sent)); sent++ })
	res, err = u.Apply(ctx, delegated(t, "v=spf1 mx -all").Changes())
	if !errors.Is(err, dnsauth.ErrConflict) || len(res.Conflicts()) != 5 || serial(t, s.Zone) != 1 {
		t.Errorf("zone changing all the time: %v, %s", err, outcomes(res))
	}
}

// TestPushRefused: an update signed with a wrong secret, or not signed, is
// refused and changes nothing; no error tells the secret.
func TestPushRefused(t *testing.T) {
	t.Parallel()
	const wrong = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw=="
	for _, key := range []*dnsauth.TSIGKey{mustKey(t, wrong), nil} {
		s, _ := pushServer(t, pushZone)
		u, err := dnsauth.NewUpdater(s.Addr, "example.com", key, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := u.Apply(context.Background(), delegated(t).Changes())
		if !errors.Is(err, dnsauth.ErrRefused) {
			t.Fatalf("key %v: err %v, want ErrRefused", key, err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pushSecret) {
			t.Errorf("the error tells the secret: %v", err)
		}
		if got := outcomes(res); got != "not-applied not-applied not-applied not-applied not-applied" {
			t.Errorf("key %v: %s", key, got)
		}
		if n := serial(t, s.Zone); n != 1 || cnameOf(s.Zone, "em1234.example.com") != "" {
			t.Errorf("key %v: the zone changed", key)
		}
	}
}

// TestPushRevoke: revoking an applied plan deletes the DKIM CNAMEs and the
// return path, and takes the include out of the SPF record; the DMARC
// record and the other TXT records stay. Revoking again changes nothing.
func TestPushRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := pushServer(t, pushZone+`
@ TXT "google-site-verification=abc"
@ TXT "v=spf1 mx -all"
`)
	p := delegated(t, "v=spf1 mx -all")
	if _, err := u.Apply(ctx, p.Changes()); err != nil {
		t.Fatal(err)
	}
	res, err := u.Apply(ctx, p.Revoke())
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "applied applied applied applied" {
		t.Errorf("revoke: %s", got)
	}
	for _, n := range []string{"s1._domainkey.example.com", "s2._domainkey.example.com", "em1234.example.com"} {
		if got := cnameOf(s.Zone, n); got != "" {
			t.Errorf("%s still points at %s", n, got)
		}
	}
	want := []string{"google-site-verification=abc", "v=spf1 mx -all"}
	if got := txtsOf(t, s.Zone, "example.com"); !slices.Equal(got, want) {
		t.Errorf("apex TXT %q, want %q", got, want)
	}
	if got := txtsOf(t, s.Zone, "_dmarc.example.com"); len(got) != 1 {
		t.Errorf("DMARC record: %q", got)
	}
	n := serial(t, s.Zone)
	res, err = u.Apply(ctx, p.Revoke())
	if err != nil || outcomes(res) != "skipped skipped skipped skipped" || serial(t, s.Zone) != n {
		t.Errorf("revoked again: %s, %v", outcomes(res), err)
	}
}

// TestPushSubdomain: the NS records of the subdomain mode; one already
// there is skipped, a foreign one is a conflict; revoking deletes them.
func TestPushSubdomain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := mustPlan(t, &dnsauth.Request{Domain: "example.com", Mode: dnsauth.Subdomain, Subdomain: "mail", Selectors: []string{"s1"},
		Nameservers: []string{"ns1.provider.net", "ns2.provider.net"}, SPFInclude: "_spf.provider.net",
		ExistingSPF: []string{"v=spf1 include:_spf.provider.net -all"}, ExistingDMARC: "v=DMARC1; p=none"})

	s, u := pushServer(t, pushZone+`mail NS ns1.provider.net.`)
	res, err := u.Apply(ctx, p.Changes())
	if err != nil || outcomes(res) != "skipped applied" {
		t.Fatalf("apply: %s, %v", outcomes(res), err)
	}
	res, err = u.Apply(ctx, p.Revoke())
	if err != nil || outcomes(res) != "applied applied" {
		t.Fatalf("revoke: %s, %v", outcomes(res), err)
	}
	if a := s.Zone.Resolve("mail.example.com", dns.TypeNS); len(a.Records) != 0 {
		t.Errorf("NS left: %v", a.Records)
	}

	_, u = pushServer(t, pushZone+`mail NS ns1.other.net.`)
	res, err = u.Apply(ctx, p.Changes())
	if !errors.Is(err, dnsauth.ErrConflict) || outcomes(res) != "conflict conflict" {
		t.Errorf("foreign NS: %s, %v", outcomes(res), err)
	}
}

// TestPushBadChanges: a record outside the zone, or of a type a push does
// not change, is refused before any query.
func TestPushBadChanges(t *testing.T) {
	t.Parallel()
	s, u := pushServer(t, pushZone)
	for _, c := range []dnsauth.Change{
		{Action: dnsauth.Add, Record: dnsauth.Record{Name: "example.org.", Type: "TXT", Value: "x", TTL: 300}},
		{Action: dnsauth.Add, Record: dnsauth.Record{Name: "example.com.", Type: "SOA", Value: "a. b. 1 2 3 4 5", TTL: 300}},
		{Action: "upsert", Record: dnsauth.Record{Name: "example.com.", Type: "TXT", Value: "x", TTL: 300}},
		{Action: dnsauth.Add, Record: dnsauth.Record{Name: "example.com.", Type: "MX", Value: "ten mx.", TTL: 300}},
	} {
		res, err := u.Apply(context.Background(), []dnsauth.Change{c})
		if !errors.Is(err, dnsauth.ErrRequest) || res != nil {
			t.Errorf("%v: %v, %v", c, res, err)
		}
	}
	if q := s.Zone.Queries(); len(q) != 0 {
		t.Errorf("queries sent: %v", q)
	}
}

// TestPushReplaceCNAME: a replace of a CNAME deletes the old target and
// adds the new one; a CNAME whose target is neither is a conflict.
func TestPushReplaceCNAME(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := pushServer(t, pushZone+`s1._domainkey CNAME s1.old.net.`)
	c := []dnsauth.Change{{Action: dnsauth.Replace, Record: dnsauth.Record{Name: "s1._domainkey.example.com.", Type: "CNAME", TTL: 300,
		Value: "s1.new.net.", Replaces: "s1.old.net."}}}
	if res, err := u.Apply(ctx, c); err != nil || outcomes(res) != "applied" || cnameOf(s.Zone, "s1._domainkey.example.com") != "s1.new.net." {
		t.Errorf("replace: %s, %v, %s", outcomes(res), err, cnameOf(s.Zone, "s1._domainkey.example.com"))
	}
	if res, err := u.Apply(ctx, c); err != nil || outcomes(res) != "skipped" {
		t.Errorf("replace again: %s, %v", outcomes(res), err)
	}
	c[0].Record.Replaces, c[0].Record.Value = "s1.other.net.", "s1.newer.net."
	if res, err := u.Apply(ctx, c); !errors.Is(err, dnsauth.ErrConflict) || outcomes(res) != "conflict" {
		t.Errorf("replace of a CNAME that is not there: %s, %v", outcomes(res), err)
	}
}

// TestPushResultTable: the table of a result names each change's outcome,
// and what was found for a conflict.
func TestPushResultTable(t *testing.T) {
	t.Parallel()
	_, u := pushServer(t, pushZone+`s1._domainkey CNAME s1.dkim.other.net.`)
	res, _ := u.Apply(context.Background(), delegated(t).Changes())
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"not-applied  add     em1234.example.com.         CNAME  u1234.wl.provider.net.\n",
		"conflict     add     s1._domainkey.example.com.  CNAME  s1.domainkey.u1234.wl.provider.net.\n" +
			strings.Repeat(" ", 58) + "the name is an alias of another target\n" +
			strings.Repeat(" ", 58) + "found CNAME s1.dkim.other.net.\n",
		`example.com.                TXT    "v=spf1 include:_spf.provider.net ~all"`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
