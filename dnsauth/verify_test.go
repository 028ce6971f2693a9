package dnsauth_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/spf"
)

// sendingIP is in the provider's SPF record, _spf.provider.net.
var sendingIP = netip.MustParseAddr("192.0.2.10")

// verifyWorld is a domain and its provider on three loopback DNS servers:
// rec models what a recursive resolver sees (the delegation of
// example.com to ns1 and ns2, the owner's records, the provider's zone,
// which it also serves as ns.provider.net), ns1 and ns2 are the two
// authoritative servers of example.com.
type verifyWorld struct {
	plan          *dnsauth.Plan
	rec, ns1, ns2 *dnstest.Zone
	r             *dnsauth.Resolver
	opts          dnsauth.VerifyOptions
	addrs         map[string]string // "recursive", "ns1", "ns2": the servers' addresses
}

// delegatedRequest is the request of the delegated mode the tests plan.
func delegatedRequest(t *testing.T) dnsauth.Request {
	return dnsauth.Request{
		Domain: "example.com", ReturnPath: "em1234", Selectors: []string{"s1"},
		Target: "u1234.wl.provider.net", SPFInclude: "_spf.provider.net", MX: "mx.provider.net",
		ExistingSPF: []string{"v=spf1 mx -all"},
		Keys:        map[string]crypto.PublicKey{"s1": rfc8463Key(t)},
	}
}

// newVerifyWorld plans req and publishes the plan everywhere (with the
// DMARC record the request says exists), then starts the servers.
func newVerifyWorld(t *testing.T, req dnsauth.Request) *verifyWorld {
	t.Helper()
	p, err := req.Plan()
	if err != nil {
		t.Fatal(err)
	}
	w := &verifyWorld{plan: p, rec: dnstest.NewZone(), ns1: dnstest.NewZone(), ns2: dnstest.NewZone()}
	delegation := `
example.com.      NS ns1.example.com.
example.com.      NS ns2.example.com.
ns1.example.com.  A  127.0.0.1
ns2.example.com.  A  127.0.0.1
`
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, z := range []*dnstest.Zone{w.ns1, w.ns2} {
		must(z.AddText("example.com. SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300" + delegation + p.Zone()))
	}
	must(w.rec.AddText(delegation + p.Zone() + p.ProviderZone() + `
provider.net.       NS  ns.provider.net.
ns.provider.net.    A   127.0.0.1
_spf.provider.net.  TXT "v=spf1 ip4:192.0.2.0/24 -all"
mx.provider.net.    A   192.0.2.25
`))
	if req.ExistingDMARC != "" {
		w.all(func(z *dnstest.Zone) { z.AddTXT("_dmarc.example.com", req.ExistingDMARC) })
	}
	addrs := map[string]string{}
	w.addrs = addrs
	for name, z := range map[string]*dnstest.Zone{"recursive": w.rec, "ns1": w.ns1, "ns2": w.ns2} {
		s, err := dnstest.NewServer(z)
		must(err)
		t.Cleanup(func() { s.Close() })
		addrs[name] = s.Addr
	}
	w.r, err = dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{addrs["recursive"]}})
	must(err)
	w.opts = dnsauth.VerifyOptions{
		SendingIP: sendingIP,
		Nameservers: map[string]string{
			"ns1.example.com": addrs["ns1"], "ns2.example.com.": addrs["ns2"], "NS.provider.net": addrs["recursive"],
		},
	}
	return w
}

// all applies f to the zones of every server.
func (w *verifyWorld) all(f func(z *dnstest.Zone)) {
	for _, z := range []*dnstest.Zone{w.rec, w.ns1, w.ns2} {
		f(z)
	}
}

func (w *verifyWorld) verify(t *testing.T) *dnsauth.Report {
	t.Helper()
	rep, err := w.r.Verify(context.Background(), w.plan, &w.opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// result returns the finding for the record of the plan at name of type
// typ.
func result(t *testing.T, rep *dnsauth.Report, name, typ string) dnsauth.RecordResult {
	t.Helper()
	for _, r := range rep.Records {
		if r.Record.Name == name && r.Record.Type == typ {
			return r
		}
	}
	t.Fatalf("no record %s %s in the report", name, typ)
	return dnsauth.RecordResult{}
}

// dump is the report as a table, for failure messages.
func dump(t *testing.T, rep *dnsauth.Report) string {
	t.Helper()
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func lines(t *testing.T, rep *dnsauth.Report) string {
	t.Helper()
	var b strings.Builder
	if err := rep.WriteLines(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestVerifyOK: every record of the delegated mode is on the recursive
// resolver and both authoritative servers; SPF of the return path passes
// through the CNAME and the provider's include, the key is reached through
// its CNAME, DMARC passes.
func TestVerifyOK(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t, delegatedRequest(t))
	rep := w.verify(t)
	if !rep.OK() {
		t.Errorf("report not OK:\n%s", dump(t, rep))
	}
	want := `ok em1234.example.com. CNAME u1234.wl.provider.net.
ok s1._domainkey.example.com. CNAME s1.domainkey.u1234.wl.provider.net.
ok example.com. TXT "v=spf1 mx include:_spf.provider.net -all"
ok _dmarc.example.com. TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"
pass em1234.example.com. spf 192.0.2.10
pass s1._domainkey.example.com. dkim s1
pass example.com. dmarc none
`
	if got := lines(t, rep); got != want {
		t.Errorf("lines:\n%s\nwant\n%s", got, want)
	}
	for _, r := range rep.Records {
		var servers []string
		for _, a := range r.Servers {
			servers = append(servers, a.Server+"="+string(a.Status))
		}
		if got := strings.Join(servers, " "); got != "recursive=ok ns1.example.com.=ok ns2.example.com.=ok" || r.Err != nil {
			t.Errorf("%s %s: servers %s, err %v", r.Record.Name, r.Record.Type, got, r.Err)
		}
	}
	if rep.DKIM[0].Canonical != "s1.domainkey.u1234.wl.provider.net." || rep.DKIM[0].Key == nil {
		t.Errorf("DKIM key found at %q (%v), want through the CNAME", rep.DKIM[0].Canonical, rep.DKIM[0].Key)
	}
	if rep.SPF.Result == nil || rep.SPF.Result.Mechanism != "include:_spf.provider.net" || rep.SPF.Err != nil {
		t.Errorf("SPF: %+v", rep.SPF)
	}
	if rep.DMARC.SPF != dmarc.Pass || rep.DMARC.DKIM != dmarc.Pass || rep.DMARC.Err != nil {
		t.Errorf("DMARC: %+v", rep.DMARC)
	}

	// The JSON field names are stable; Err is "error".
	b, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Domain  string `json:"domain"`
		Round   int    `json:"round"`
		Records []struct {
			Record  struct{ Name, Type, Value string } `json:"record"`
			Status  string                             `json:"status"`
			Servers []struct{ Server, Addr, Status string }
		} `json:"records"`
		SPF   struct{ Domain, Sender, IP, Status string } `json:"spf"`
		DKIM  []struct{ Selector, Name, Canonical, Status string }
		DMARC struct{ Domain, Status, Policy, Record string } `json:"dmarc"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j.Domain != "example.com." || j.Round != 1 || len(j.Records) != 4 || j.Records[0].Status != "ok" ||
		j.Records[0].Record.Name != "em1234.example.com." || len(j.Records[0].Servers) != 3 ||
		j.SPF.Status != "pass" || j.SPF.IP != "192.0.2.10" || j.SPF.Sender != "bounces@em1234.example.com" ||
		j.DKIM[0].Status != "pass" || j.DMARC.Status != "pass" || j.DMARC.Policy != "none" || bytes.Contains(b, []byte(`"error"`)) {
		t.Errorf("JSON:\n%s", b)
	}

	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"example.com. (round 1): ok", "STATUS", "em1234.example.com.", "found at s1.domainkey.u1234.wl.provider.net."} {
		if !strings.Contains(tab.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tab.String())
		}
	}
}

// TestVerifyProvider: with Provider, the provider's records are checked on
// the provider's own authoritative server too.
func TestVerifyProvider(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t, delegatedRequest(t))
	w.opts.Provider = true
	rep := w.verify(t)
	if !rep.OK() || len(rep.Records) != 7 {
		t.Fatalf("report not OK or not 7 records:\n%s", dump(t, rep))
	}
	r := result(t, rep, "s1.domainkey.u1234.wl.provider.net.", "TXT")
	if len(r.Servers) != 2 || r.Servers[1].Server != "ns.provider.net." {
		t.Errorf("provider key asked at %+v, want recursive and ns.provider.net.", r.Servers)
	}
	// The provider publishes another key than the plan's.
	w.rec.Remove("s1.domainkey.u1234.wl.provider.net", dns.TypeTXT)
	w.rec.AddTXT("s1.domainkey.u1234.wl.provider.net", "v=DKIM1; k=ed25519; p=AAAAC3NzaC1lZDI1NTE5AAAAIDummyKeyDummyKeyDummyKeyDummyKey0=")
	// And its MX with another preference.
	w.rec.Remove("u1234.wl.provider.net", dns.TypeMX)
	w.rec.AddMX("u1234.wl.provider.net", 20, "mx.provider.net")
	rep = w.verify(t)
	if r := result(t, rep, "s1.domainkey.u1234.wl.provider.net.", "TXT"); r.Status != dnsauth.RecordWrong {
		t.Errorf("another key: %s %s", r.Status, r.Detail)
	}
	if r := result(t, rep, "u1234.wl.provider.net.", "MX"); r.Status != dnsauth.RecordWrong || !slices.Equal(r.Found, []string{"MX 20 mx.provider.net."}) {
		t.Errorf("MX 20 for MX 10: %s %s %q", r.Status, r.Detail, r.Found)
	}
}

// TestVerifyFindings: each way a published record can differ from the
// plan, and each way the end-to-end checks can fail, is found and named.
func TestVerifyFindings(t *testing.T) {
	t.Parallel()
	const (
		rp    = "em1234.example.com."
		sel   = "s1._domainkey.example.com."
		root  = "example.com."
		dm    = "_dmarc.example.com."
		keyAt = "s1.domainkey.u1234.wl.provider.net"
	)
	type check func(t *testing.T, rep *dnsauth.Report)
	// status checks the finding of one record, and that every other
	// record is ok.
	status := func(name, typ string, want dnsauth.RecordStatus, detail ...string) check {
		return func(t *testing.T, rep *dnsauth.Report) {
			for _, r := range rep.Records {
				w := dnsauth.RecordOK
				if r.Record.Name == name && r.Record.Type == typ {
					w = want
					text := r.Detail + " " + strings.Join(r.Found, " ") + " " + strings.Join(r.Lagging, " ")
					for _, d := range detail {
						if !strings.Contains(text, d) {
							t.Errorf("%s %s: %q lacks %q", name, typ, text, d)
						}
					}
				}
				if r.Status != w {
					t.Errorf("%s %s: %s (%s, %v), want %s", r.Record.Name, r.Record.Type, r.Status, r.Detail, r.Err, w)
				}
			}
		}
	}
	e2e := func(spfWant, keyWant, dmarcWant spf.Status, errs ...string) check {
		return func(t *testing.T, rep *dnsauth.Report) {
			if rep.SPF.Status != spfWant || rep.DKIM[0].Status != keyWant || rep.DMARC.Status != dmarcWant {
				t.Errorf("end to end: spf %s (%v), dkim %s (%v), dmarc %s (%v); want %s %s %s",
					rep.SPF.Status, rep.SPF.Err, rep.DKIM[0].Status, rep.DKIM[0].Err, rep.DMARC.Status, rep.DMARC.Err, spfWant, keyWant, dmarcWant)
			}
			all := fmt.Sprint(rep.SPF.Err, rep.DKIM[0].Err, rep.DMARC.Err)
			for _, e := range errs {
				if !strings.Contains(all, e) {
					t.Errorf("end-to-end errors %q lack %q", all, e)
				}
			}
		}
	}
	pass := e2e(spf.Pass, dkim.Pass, dmarc.Pass)
	allOK := status("", "", "")
	replace := func(name string, typ uint16, text string) func(w *verifyWorld) {
		return func(w *verifyWorld) {
			w.all(func(z *dnstest.Zone) {
				z.Remove(name, typ)
				if err := z.AddText(text); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	for _, tc := range []struct {
		name   string
		req    func(r *dnsauth.Request)
		mod    func(w *verifyWorld)
		ip     netip.Addr
		ok     bool
		checks []check
	}{
		{name: "DMARC record missing", mod: func(w *verifyWorld) {
			w.all(func(z *dnstest.Zone) { z.Remove(dm, dns.TypeTXT) })
		}, checks: []check{status(dm, "TXT", dnsauth.RecordMissing, "no DMARC record"),
			e2e(spf.Pass, dkim.Pass, dmarc.None, "DMARC is not published for example.com")}},
		{name: "return path CNAME to another target",
			mod: replace(rp, dns.TypeCNAME, rp+" CNAME u9999.wl.provider.net."),
			checks: []check{status(rp, "CNAME", dnsauth.RecordWrong, "CNAME u9999.wl.provider.net."),
				// SPF now evaluates a name without a record; DMARC passes on DKIM.
				e2e(spf.None, dkim.Pass, dmarc.Pass)}},
		{name: "CNAME targets compare as names, case-insensitive",
			mod: replace(rp, dns.TypeCNAME, rp+" CNAME U1234.WL.Provider.NET."),
			ok:  true, checks: []check{allOK, pass}},
		{name: "DMARC record with other text",
			mod:    replace(dm, dns.TypeTXT, dm+` TXT "v=DMARC1; p=reject"`),
			checks: []check{status(dm, "TXT", dnsauth.RecordWrong, `TXT "v=DMARC1; p=reject"`, "text differs"), pass}},
		{name: "old SPF record unchanged",
			mod:    replace(root, dns.TypeTXT, root+` TXT "v=spf1 mx -all"`),
			checks: []check{status(root, "TXT", dnsauth.RecordWrong, "replaces is still published, unchanged"), pass}},
		{name: "CNAME beside a TXT", mod: func(w *verifyWorld) {
			w.all(func(z *dnstest.Zone) { z.AddTXT(sel, "v=DKIM1; p=") })
		}, checks: []check{status(sel, "CNAME", dnsauth.RecordConflict, "RFC 1034 §3.6.2", `TXT "v=DKIM1; p="`)}},
		{name: "two SPF records at the root", mod: func(w *verifyWorld) {
			w.all(func(z *dnstest.Zone) { z.AddTXT(root, "v=spf1 a -all") })
		}, checks: []check{status(root, "TXT", dnsauth.RecordConflict, "2 SPF records", "RFC 7208 §4.5"), pass}},
		{name: "the replaced SPF record beside the new one", mod: func(w *verifyWorld) {
			w.all(func(z *dnstest.Zone) { z.AddTXT(root, "v=spf1 mx -all") })
		}, checks: []check{status(root, "TXT", dnsauth.RecordConflict, "the record it replaces is still published beside it"), pass}},
		{name: "selector missing on ns2", mod: func(w *verifyWorld) {
			w.ns2.Remove(sel, dns.TypeCNAME)
		}, checks: []check{status(sel, "CNAME", dnsauth.RecordNotPropagated, "ns2.example.com. (missing"), pass,
			func(t *testing.T, rep *dnsauth.Report) {
				if r := result(t, rep, sel, "CNAME"); !slices.Equal(r.Lagging, []string{"ns2.example.com."}) {
					t.Errorf("lagging %q, want ns2.example.com. only", r.Lagging)
				}
			}}},
		{name: "old SPF record in the recursive resolver's view", mod: func(w *verifyWorld) {
			w.rec.Remove(root, dns.TypeTXT)
			w.rec.AddTXT(root, "v=spf1 mx -all")
		}, checks: []check{status(root, "TXT", dnsauth.RecordNotPropagated, "recursive (wrong"), pass}},
		{name: "SPF fails from an address outside the include", ip: netip.MustParseAddr("198.51.100.7"),
			checks: []check{allOK, e2e(spf.Fail, dkim.Pass, dmarc.Pass, "198.51.100.7")}},
		{name: "revoked key", mod: func(w *verifyWorld) {
			w.rec.Remove(keyAt, dns.TypeTXT)
			w.rec.AddTXT(keyAt, "v=DKIM1; k=ed25519; p=")
		}, checks: []check{allOK, e2e(spf.Pass, dkim.PermError, dmarc.Pass, "revoked"),
			func(t *testing.T, rep *dnsauth.Report) {
				if !rep.DKIM[0].Revoked || !errors.Is(rep.DKIM[0].Err, dkim.ErrKey) {
					t.Errorf("revoked key: %+v", rep.DKIM[0])
				}
			}}},
		{name: "no key", mod: func(w *verifyWorld) { w.rec.Remove(keyAt, dns.TypeTXT) },
			checks: []check{allOK, e2e(spf.Pass, dkim.PermError, dmarc.Pass, "no key record")}},
		{name: "key that does not parse", mod: func(w *verifyWorld) {
			w.rec.Remove(keyAt, dns.TypeTXT)
			w.rec.AddTXT(keyAt, "v=DKIM1; k=ed25519; p=!!")
		}, checks: []check{allOK, e2e(spf.Pass, dkim.PermError, dmarc.Pass, "does not parse")}},
		{name: "aspf=s adkim=s: DKIM alone aligns",
			req: func(r *dnsauth.Request) { r.ExistingDMARC = "v=DMARC1; p=reject; aspf=s; adkim=s" },
			ok:  true, checks: []check{allOK, pass}},
		{name: "aspf=s adkim=s and a revoked key: DMARC fails",
			req: func(r *dnsauth.Request) { r.ExistingDMARC = "v=DMARC1; p=reject; aspf=s; adkim=s" },
			mod: func(w *verifyWorld) {
				w.rec.Remove(keyAt, dns.TypeTXT)
				w.rec.AddTXT(keyAt, "v=DKIM1; k=ed25519; p=")
			}, checks: []check{allOK, e2e(spf.Pass, dkim.PermError, dmarc.Fail),
				func(t *testing.T, rep *dnsauth.Report) {
					if rep.DMARC.SPF != dmarc.Fail || rep.DMARC.Policy != dmarc.PolicyReject {
						t.Errorf("DMARC: SPF %s, policy %s; want an SPF pass that does not align, p=reject", rep.DMARC.SPF, rep.DMARC.Policy)
					}
				}}},
		{name: "SERVFAIL on ns2 is a finding", mod: func(w *verifyWorld) {
			w.ns2.Fail(dm, dns.TypeTXT, dnstest.ServFail)
		}, checks: []check{status(dm, "TXT", dnsauth.RecordError, "could not be asked"), pass,
			func(t *testing.T, rep *dnsauth.Report) {
				if r := result(t, rep, dm, "TXT"); r.Err == nil || !strings.Contains(r.Err.Error(), "ns2.example.com.") {
					t.Errorf("error %v, want one naming ns2.example.com.", r.Err)
				}
			}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := delegatedRequest(t)
			if tc.req != nil {
				tc.req(&req)
			}
			w := newVerifyWorld(t, req)
			if tc.mod != nil {
				tc.mod(w)
			}
			if tc.ip.IsValid() {
				w.opts.SendingIP = tc.ip
			}
			rep := w.verify(t)
			if rep.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v", rep.OK(), tc.ok)
			}
			for _, c := range tc.checks {
				c(t, rep)
			}
			if t.Failed() {
				t.Logf("report:\n%s", dump(t, rep))
			}
		})
	}
}

// TestVerifySubdomain: the NS records that hand mail.example.com to the
// provider are checked on the parent zone's servers; the provider's
// records under it on the provider's servers.
func TestVerifySubdomain(t *testing.T) {
	t.Parallel()
	req := dnsauth.Request{Domain: "example.com", Mode: dnsauth.Subdomain, Subdomain: "mail", Selectors: []string{"s1"},
		Nameservers: []string{"ns1.provider.net", "ns2.provider.net"}, SPFInclude: "_spf.provider.net", MX: "mx.provider.net",
		Keys: map[string]crypto.PublicKey{"s1": rfc8463Key(t)}}
	w := newVerifyWorld(t, req)
	w.opts.Provider = true
	w.opts.Nameservers["ns1.provider.net"] = w.addrs["recursive"]
	w.opts.Nameservers["ns2.provider.net"] = w.addrs["recursive"]
	rep := w.verify(t)
	if !rep.OK() {
		t.Fatalf("report not OK:\n%s", dump(t, rep))
	}
	if r := result(t, rep, "mail.example.com.", "NS"); len(r.Servers) != 3 || r.Servers[1].Server != "ns1.example.com." {
		t.Errorf("delegation asked at %+v, want the servers of example.com", r.Servers)
	}
	if r := result(t, rep, "mail.example.com.", "MX"); len(r.Servers) != 3 || r.Servers[1].Server != "ns1.provider.net." {
		t.Errorf("provider's MX asked at %+v, want the servers of mail.example.com", r.Servers)
	}

	// A third name server, not the provider's, in the delegation.
	w.all(func(z *dnstest.Zone) { z.AddNS("mail.example.com", "ns.other.example") })
	rep = w.verify(t)
	if r := result(t, rep, "mail.example.com.", "NS"); r.Status != dnsauth.RecordWrong || !strings.Contains(r.Detail, "NS ns.other.example.") {
		t.Errorf("delegation with an extra NS: %s %s", r.Status, r.Detail)
	}
}

// TestVerifyPoll: a record published after the first round turns the
// report OK in the second; Progress sees each round.
func TestVerifyPoll(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t, delegatedRequest(t))
	const dm = "_dmarc.example.com."
	var dmarcText string
	for _, r := range w.plan.Records {
		if r.Name == dm {
			dmarcText = r.Value
		}
	}
	w.all(func(z *dnstest.Zone) { z.Remove(dm, dns.TypeTXT) })
	var rounds []string
	w.opts.Poll = 2 * time.Millisecond
	w.opts.Progress = func(rep *dnsauth.Report) {
		rounds = append(rounds, fmt.Sprintf("%d %s %v", rep.Round, result(t, rep, dm, "TXT").Status, rep.OK()))
		if rep.Round == 1 {
			w.all(func(z *dnstest.Zone) { z.AddTXT(dm, dmarcText) })
		}
	}
	rep := w.verify(t)
	if !rep.OK() || rep.Round != 2 {
		t.Errorf("round %d, OK %v", rep.Round, rep.OK())
	}
	if want := []string{"1 missing false", "2 ok true"}; !slices.Equal(rounds, want) {
		t.Errorf("progress %q, want %q", rounds, want)
	}
}

// TestVerifyPollCanceled: when ctx ends before the report is OK, the last
// report comes back with ctx's error.
func TestVerifyPollCanceled(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t, delegatedRequest(t))
	w.all(func(z *dnstest.Zone) { z.Remove("_dmarc.example.com", dns.TypeTXT) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.opts.Poll = time.Hour
	w.opts.Progress = func(*dnsauth.Report) { cancel() }
	rep, err := w.r.Verify(ctx, w.plan, &w.opts)
	if !errors.Is(err, context.Canceled) || rep == nil || rep.Round != 1 || rep.OK() {
		t.Errorf("Verify = %+v, %v; want the report of round 1 and context.Canceled", rep, err)
	}
}

// TestVerifySkipsSPF: without a sending IP the SPF check is skipped and
// said to be; DMARC is judged with an SPF pass for the return path.
func TestVerifySkipsSPF(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t, delegatedRequest(t))
	w.opts.SendingIP = netip.Addr{}
	rep := w.verify(t)
	if !rep.OK() || !rep.SPF.Skipped || rep.SPF.Err == nil || !strings.Contains(rep.SPF.Err.Error(), "SendingIP") || rep.DMARC.SPF != dmarc.Pass {
		t.Errorf("OK %v, SPF %+v, DMARC SPF %s", rep.OK(), rep.SPF, rep.DMARC.SPF)
	}
	if l := lines(t, rep); !strings.Contains(l, "skipped em1234.example.com. spf -\n") {
		t.Errorf("lines:\n%s", l)
	}
}

// TestVerifyBadInput: only a plan or options that cannot be used are
// errors.
func TestVerifyBadInput(t *testing.T) {
	t.Parallel()
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{"127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&dnsauth.Request{Domain: "example.com", ReturnPath: "em1", Selectors: []string{"s1"},
		Target: "u1.provider.net", SPFInclude: "_spf.provider.net"}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	badRecord := *p
	badRecord.Records = append(slices.Clone(p.Records), dnsauth.Record{Name: "www.example.com.", Type: "A", Value: "192.0.2.1"})
	badMX := *p
	badMX.Records = append(slices.Clone(p.Records), dnsauth.Record{Name: "em1.example.com.", Type: "MX", Value: "mx.provider.net"})
	noDomain := *p
	noDomain.DKIMDomain = ""
	for _, tc := range []struct {
		name string
		p    *dnsauth.Plan
		opts *dnsauth.VerifyOptions
		want string
	}{
		{"nil plan", nil, nil, "no plan"},
		{"A record", &badRecord, nil, "CNAME, TXT, MX and NS"},
		{"MX without preference", &badMX, nil, "preference host"},
		{"no DKIM domain", &noDomain, nil, "DKIMDomain"},
		{"negative Poll", p, &dnsauth.VerifyOptions{Poll: -time.Second}, "Poll"},
		{"Nameservers address", p, &dnsauth.VerifyOptions{Nameservers: map[string]string{"ns1.example.com": "127.0.0.1"}}, "host:port"},
	} {
		rep, err := r.Verify(context.Background(), tc.p, tc.opts)
		if err == nil || rep != nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "dnsauth: ") {
			t.Errorf("%s: %v, %v; want an error naming %q", tc.name, rep, err, tc.want)
		}
	}
}

// Verify asks the recursive resolver and each authoritative server of
// example.com (here one server plays both, on a port of its own), then
// checks SPF, the DKIM key and DMARC end to end.
func ExampleResolver_Verify() {
	p, _ := (&dnsauth.Request{Domain: "example.com", ReturnPath: "em1", Selectors: []string{"s1"},
		Target: "u1.provider.net", SPFInclude: "_spf.provider.net", ExistingDMARC: "v=DMARC1; p=quarantine"}).Plan()
	srv, _ := dnstest.NewServer(dnstest.MustParseZone(`
example.com.          NS    ns1.example.com.
em1.example.com.      CNAME u1.provider.net.
s1._domainkey.example.com. CNAME s1.domainkey.u1.provider.net.
example.com.          TXT   "v=spf1 include:_spf.provider.net ~all"
_dmarc.example.com.   TXT   "v=DMARC1; p=quarantine"
u1.provider.net.      TXT   "v=spf1 include:_spf.provider.net -all"
_spf.provider.net.    TXT   "v=spf1 ip4:192.0.2.0/24 -all"
s1.domainkey.u1.provider.net. TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
`))
	defer srv.Close()
	r, _ := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	rep, err := r.Verify(context.Background(), p, &dnsauth.VerifyOptions{
		SendingIP:   netip.MustParseAddr("192.0.2.10"),
		Nameservers: map[string]string{"ns1.example.com": srv.Addr},
	})
	if err != nil {
		panic(err)
	}
	rep.WriteLines(os.Stdout)
	fmt.Println("OK:", rep.OK())
	// Output:
	// ok em1.example.com. CNAME u1.provider.net.
	// ok s1._domainkey.example.com. CNAME s1.domainkey.u1.provider.net.
	// ok example.com. TXT "v=spf1 include:_spf.provider.net ~all"
	// pass em1.example.com. spf 192.0.2.10
	// pass s1._domainkey.example.com. dkim s1
	// pass example.com. dmarc quarantine
	// OK: true
}
