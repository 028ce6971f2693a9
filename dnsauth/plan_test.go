package dnsauth_test

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/spf"
)

// rfc8463Key is the Ed25519 public key of RFC 8463 Appendix A.2.
func rfc8463Key(t *testing.T) ed25519.PublicKey {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.PublicKey(b)
}

// TestPlanModes: the records of each mode, compared with zone text written
// by hand from the request (RFC 6376 §3.6.2.1 key names, RFC 7208 include,
// RFC 9989 DMARC record), in the order the owner publishes them.
func TestPlanModes(t *testing.T) {
	t.Parallel()
	key := rfc8463Key(t)
	const keyTXT = `"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`
	for _, tc := range []struct {
		name          string
		req           dnsauth.Request
		zone, provide string
		lookups       int
	}{
		{"delegated", dnsauth.Request{
			Domain: "Example.com.", ReturnPath: "em1234", Selectors: []string{"s1", "s2"},
			Target: "u1234.wl.provider.net", SPFInclude: "_spf.provider.net", MX: "mx.provider.net",
			ExistingSPF: []string{"v=spf1 mx include:_spf.google.com -all"},
			Keys:        map[string]crypto.PublicKey{"s1": key},
		}, `; records for example.com (delegated)
em1234.example.com.	3600	IN	CNAME	u1234.wl.provider.net.
s1._domainkey.example.com.	3600	IN	CNAME	s1.domainkey.u1234.wl.provider.net.
s2._domainkey.example.com.	3600	IN	CNAME	s2.domainkey.u1234.wl.provider.net.
; replaces "v=spf1 mx include:_spf.google.com -all"
example.com.	3600	IN	TXT	"v=spf1 mx include:_spf.google.com include:_spf.provider.net -all"
_dmarc.example.com.	3600	IN	TXT	"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"
`, `; records the provider serves for example.com
u1234.wl.provider.net.	3600	IN	MX	10 mx.provider.net.
u1234.wl.provider.net.	3600	IN	TXT	"v=spf1 include:_spf.provider.net -all"
s1.domainkey.u1234.wl.provider.net.	3600	IN	TXT	` + keyTXT + `
`, 3},
		{"self-hosted", dnsauth.Request{
			Domain: "example.com", Mode: dnsauth.SelfHosted, ReturnPath: "bounce", Selectors: []string{"k1"},
			SPFInclude: "_spf.provider.net", MX: "mx.provider.net", TTL: 300,
			ExistingDMARC: "v=DMARC1; p=reject; rua=mailto:d@example.com",
			Keys:          map[string]crypto.PublicKey{"k1": key},
		}, `; records for example.com (self-hosted)
k1._domainkey.example.com.	300	IN	TXT	` + keyTXT + `
bounce.example.com.	300	IN	MX	10 mx.provider.net.
bounce.example.com.	300	IN	TXT	"v=spf1 include:_spf.provider.net -all"
example.com.	300	IN	TXT	"v=spf1 include:_spf.provider.net ~all"
`, "; records the provider serves for example.com\n", 1},
		{"subdomain", dnsauth.Request{
			Domain: "example.com", Mode: dnsauth.Subdomain, Subdomain: "mail", Selectors: []string{"s1"},
			Nameservers: []string{"ns1.provider.net", "ns2.provider.net."}, SPFInclude: "_spf.provider.net", MX: "mx.provider.net",
			ExistingSPF:   []string{"v=spf1 include:_spf.provider.net -all"},
			ExistingDMARC: "v=DMARC1; p=quarantine",
			Keys:          map[string]crypto.PublicKey{"s1": key},
		}, `; records for example.com (subdomain)
mail.example.com.	3600	IN	NS	ns1.provider.net.
mail.example.com.	3600	IN	NS	ns2.provider.net.
`, `; records the provider serves for example.com
mail.example.com.	3600	IN	MX	10 mx.provider.net.
mail.example.com.	3600	IN	TXT	"v=spf1 include:_spf.provider.net -all"
s1._domainkey.mail.example.com.	3600	IN	TXT	` + keyTXT + `
`, 1},
	} {
		p, err := tc.req.Plan()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := p.Zone(); got != tc.zone {
			t.Errorf("%s: zone\n%s\nwant\n%s", tc.name, got, tc.zone)
		}
		if got := p.ProviderZone(); got != tc.provide {
			t.Errorf("%s: provider zone\n%s\nwant\n%s", tc.name, got, tc.provide)
		}
		if p.SPFLookups != tc.lookups {
			t.Errorf("%s: %d SPF lookups, want %d", tc.name, p.SPFLookups, tc.lookups)
		}
	}
}

// TestPlanWarnings: a strict DMARC record that the return path or the
// signatures would fail is named; a new SPF record says it ends in ~all.
func TestPlanWarnings(t *testing.T) {
	t.Parallel()
	p, err := (&dnsauth.Request{Domain: "example.com", ReturnPath: "em1", Selectors: []string{"s1"},
		Target: "u1.provider.net", SPFInclude: "_spf.provider.net",
		ExistingDMARC: "v=DMARC1; p=reject; aspf=s; adkim=s"}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(p.Warnings, "\n")
	if !strings.Contains(w, "aspf=s") || strings.Contains(w, "adkim=s") || !strings.Contains(w, "~all") {
		t.Errorf("delegated with aspf=s adkim=s: warnings %q; want aspf=s (return path em1.example.com) and not adkim=s (d=example.com aligns)", p.Warnings)
	}
	p, err = (&dnsauth.Request{Domain: "example.com", Mode: dnsauth.Subdomain, Subdomain: "mail", Selectors: []string{"s1"},
		Nameservers: []string{"ns1.provider.net"}, SPFInclude: "_spf.provider.net",
		ExistingSPF: []string{"v=spf1 -all"}, ExistingDMARC: "v=DMARC1; p=reject; adkim=s"}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(p.Warnings, "\n"); !strings.Contains(w, "adkim=s") || !strings.Contains(w, "d=mail.example.com") {
		t.Errorf("subdomain with adkim=s: warnings %q", p.Warnings)
	}
}

// TestPlanBadRequests: each bad field is named in the error.
func TestPlanBadRequests(t *testing.T) {
	t.Parallel()
	ok := dnsauth.Request{Domain: "example.com", ReturnPath: "em1", Selectors: []string{"s1"}, Target: "u1.provider.net", SPFInclude: "_spf.provider.net"}
	for _, tc := range []struct {
		field string
		mod   func(r *dnsauth.Request)
	}{
		{"Domain", func(r *dnsauth.Request) { r.Domain = "exa mple..com" }},
		{"Domain", func(r *dnsauth.Request) { r.Domain = "com" }},
		{"Selectors", func(r *dnsauth.Request) { r.Selectors = nil }},
		{"Selectors", func(r *dnsauth.Request) { r.Selectors = []string{"a b"} }},
		{"Selectors", func(r *dnsauth.Request) { r.Selectors = []string{"s1", "s1"} }},
		{"ReturnPath", func(r *dnsauth.Request) { r.ReturnPath = "" }},
		{"ReturnPath", func(r *dnsauth.Request) { r.ReturnPath = "-x" }},
		{"Target", func(r *dnsauth.Request) { r.Target = "" }},
		{"SPFInclude", func(r *dnsauth.Request) { r.SPFInclude = "x;y.example" }},
		{"Mode", func(r *dnsauth.Request) { r.Mode = "cloud" }},
		{"MX", func(r *dnsauth.Request) { r.Mode = dnsauth.SelfHosted }},
		{"Keys", func(r *dnsauth.Request) { r.Mode, r.MX = dnsauth.SelfHosted, "mx.provider.net" }},
		{"Nameservers", func(r *dnsauth.Request) { r.Mode, r.Subdomain = dnsauth.Subdomain, "mail" }},
		{"Subdomain", func(r *dnsauth.Request) { r.Mode, r.Nameservers = dnsauth.Subdomain, []string{"ns1.p.net"} }},
		{"ExistingSPF", func(r *dnsauth.Request) { r.ExistingSPF = []string{"hello world"} }},
		{"ExistingSPF", func(r *dnsauth.Request) { r.ExistingSPF = []string{"v=spf1 -all", "v=spf1 +all"} }},
		{"ExistingSPF", func(r *dnsauth.Request) { r.ExistingSPF = []string{"v=spf1 bogus:x -all"} }},
		{"ExistingDMARC", func(r *dnsauth.Request) { r.ExistingDMARC = "p=reject" }},
		{"ReportURI", func(r *dnsauth.Request) { r.ReportURI = "mailto:a@b; p=reject" }},
	} {
		r := ok
		tc.mod(&r)
		_, err := r.Plan()
		if !errors.Is(err, dnsauth.ErrRequest) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v, want one naming %s", r, err, tc.field)
		}
	}
}

// TestMergeSPF: the include goes before all, or after the last mechanism,
// every other term stays as written; a record that has it is unchanged.
func TestMergeSPF(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"v=spf1 -all", "v=spf1 include:_spf.p.net -all"},
		{"v=spf1 a MX ~all", "v=spf1 a MX include:_spf.p.net ~all"},
		{"V=SPF1 ip4:192.0.2.0/24 ?all exp=x.example", "V=SPF1 ip4:192.0.2.0/24 include:_spf.p.net ?all exp=x.example"},
		{"v=spf1 mx redirect=_spf.example.com", "v=spf1 mx include:_spf.p.net redirect=_spf.example.com"},
		{"v=spf1 redirect=_spf.example.com", "v=spf1 include:_spf.p.net redirect=_spf.example.com"},
		{"v=spf1 a -all -mx", "v=spf1 a include:_spf.p.net -all -mx"},
		{"v=spf1 include:_SPF.p.net -all", "v=spf1 include:_SPF.p.net -all"},
	} {
		got, _, err := dnsauth.MergeSPF(tc.in, "_spf.p.net")
		if err != nil || got != tc.want {
			t.Errorf("MergeSPF(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzMergeSPF: a merged record always parses, holds the include once, and
// keeps every original term, in order.
func FuzzMergeSPF(f *testing.F) {
	for _, s := range []string{"v=spf1 -all", "v=spf1 a mx ip4:192.0.2.1 ~all exp=e.example", "v=spf1 redirect=x.example", "v=spf1 include:_spf.p.net", "v=spf1 ?all -all a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, record string) {
		merged, changed, err := dnsauth.MergeSPF(record, "_spf.p.net")
		if err != nil {
			if _, perr := spf.Parse(record); perr == nil && !strings.Contains(err.Error(), "cannot be told apart") {
				t.Fatalf("%q parses but does not merge: %v", record, err)
			}
			return
		}
		m, err := spf.Parse(merged)
		if err != nil {
			t.Fatalf("merged %q does not parse: %v", merged, err)
		}
		orig, _ := spf.Parse(record)
		var kept []string
		n := 0
		for _, term := range m.Terms {
			if term.Mechanism == spf.MechInclude && strings.EqualFold(term.Domain, "_spf.p.net") {
				n++
				if changed {
					continue
				}
			}
			kept = append(kept, term.String())
		}
		var want []string
		for _, term := range orig.Terms {
			want = append(want, term.String())
		}
		if strings.Join(kept, " ") != strings.Join(want, " ") || (changed && n != 1) || n == 0 {
			t.Fatalf("%q merged into %q: terms %q, want %q and one include (%d)", record, merged, kept, want, n)
		}
	})
}
