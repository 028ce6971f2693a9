package dnsauth_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// TestVerifyBIND: Verify against two BIND 9 servers authoritative for
// example.com, as a domain's name servers are in the world: one holds every
// planned record, the other lacks the DKIM CNAME (not-propagated, naming
// it); on both, the DMARC record differs from the plan (wrong) and the
// domain publishes a second SPF record (conflict); the return path is ok.
//
// Not parallel, like TestPushBIND: starting named takes the CPU.
func TestVerifyBIND(t *testing.T) {
	req := delegatedRequest(t)
	p, err := req.Plan()
	if err != nil {
		t.Fatal(err)
	}
	var lacking []string
	for _, l := range strings.Split(p.Zone(), "\n") {
		if !strings.HasPrefix(l, "s1._domainkey.") {
			lacking = append(lacking, l)
		}
	}
	const extra = `
@      NS  ns2
ns2    A   192.0.2.54
@      TXT "v=spf1 a -all"
_dmarc TXT "v=DMARC1; p=reject"
`
	n1 := startNamed(t, extra+dropDMARC(p.Zone()))
	n2 := startNamed(t, extra+dropDMARC(strings.Join(lacking, "\n")))

	rec := dnstest.MustParseZone(`
example.com.      NS ns1.example.com.
example.com.      NS ns2.example.com.
ns1.example.com.  A  127.0.0.1
ns2.example.com.  A  127.0.0.1
example.com.      TXT "v=spf1 a -all"
_dmarc.example.com. TXT "v=DMARC1; p=reject"
provider.net.       NS  ns.provider.net.
ns.provider.net.    A   127.0.0.1
_spf.provider.net.  TXT "v=spf1 ip4:192.0.2.0/24 -all"
mx.provider.net.    A   192.0.2.25
` + dropDMARC(p.Zone()) + p.ProviderZone())
	srv, err := dnstest.NewServer(rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Verify(context.Background(), p, &dnsauth.VerifyOptions{
		SendingIP:   sendingIP,
		Nameservers: map[string]string{"ns1.example.com": n1.addr, "ns2.example.com": n2.addr, "ns.provider.net": srv.Addr},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]dnsauth.RecordStatus{
		"em1234.example.com. CNAME":        dnsauth.RecordOK,
		"s1._domainkey.example.com. CNAME": dnsauth.RecordNotPropagated,
		"example.com. TXT":                 dnsauth.RecordConflict,
		"_dmarc.example.com. TXT":          dnsauth.RecordWrong,
	}
	for _, res := range rep.Records {
		k := res.Record.Name + " " + res.Record.Type
		if res.Status != want[k] {
			t.Errorf("%s: %s (%s), want %s\n%s", k, res.Status, res.Detail, want[k], dump(t, rep))
		}
		if res.Status == dnsauth.RecordNotPropagated && !slices.Equal(res.Lagging, []string{"ns2.example.com."}) {
			t.Errorf("%s: lagging %q, want ns2.example.com.", k, res.Lagging)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("records not reported: %v", want)
	}
	if rep.OK() {
		t.Error("the report is OK")
	}
}

// dropDMARC removes the planned DMARC record from zone text.
func dropDMARC(zone string) string {
	var out []string
	for _, l := range strings.Split(zone, "\n") {
		if !strings.HasPrefix(l, "_dmarc.") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
