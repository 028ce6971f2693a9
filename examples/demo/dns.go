package main

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"net/netip"
	"strings"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// The names of the story. The provider runs the relay; the customer, a
// shop, sends from its domain through it; the recipients are at
// example.net.
const (
	customerDomain   = "customer.example"
	returnPathLabel  = "em1234"
	returnPathDomain = returnPathLabel + "." + customerDomain
	customerSelector = "s1"
	providerDomain   = "provider.example"
	providerSelector = "pm"
	target           = "u1234.rp." + providerDomain // the provider's host for the customer
	spfInclude       = "_spf." + providerDomain
	relayHost        = "mta1." + providerDomain   // the relay's EHLO name
	submissionHost   = "smtp." + providerDomain   // where applications submit
	bounceHost       = "bounce." + providerDomain // the return paths' MX
	receiverDomain   = "example.net"
	mxHost           = "mx." + receiverDomain
	existingSPF      = "v=spf1 ip4:192.0.2.0/24 -all" // the shop's own mail server
	updateKeyName    = "update-key"
	updateKeySecret  = "ZGVtbyB1cGRhdGUga2V5IGZvciBjdXN0b21lci5leGFtcGxl"
)

// loopback is the address of every host of the demo: the relay, the MX,
// the bounce receiver and the DNS server.
var loopback = netip.MustParseAddr("127.0.0.1")

// dnsWorld is the demo's DNS: one loopback server, authoritative for the
// three domains, which every part of the demo asks.
type dnsWorld struct {
	srv      *dnstest.Server
	resolver *dnsauth.Resolver
	plan     *dnsauth.Plan
	report   *dnsauth.Report

	customerKey, providerKey crypto.Signer
	base                     string // the zone before the customer's records
}

// The provider's zone, the customer's before domain authentication, and
// the receiver's. %s is the provider's DKIM key record.
const baseZone = `$ORIGIN provider.example.
@            SOA ns1 hostmaster 1 3600 600 86400 300
@            NS  ns1
ns1          A   127.0.0.1
_spf         TXT "v=spf1 ip4:127.0.0.1 -all"
mta1         A   127.0.0.1
mta1         TXT "v=spf1 a -all"
smtp         A   127.0.0.1
bounce       A   127.0.0.1
pm._domainkey TXT %s
_dmarc       TXT "v=DMARC1; p=reject"
$ORIGIN customer.example.
@            SOA ns1 hostmaster 1 3600 600 86400 300
@            NS  ns1
ns1          A   127.0.0.1
$ORIGIN example.net.
@            SOA ns1 hostmaster 1 3600 600 86400 300
@            NS  ns1
ns1          A   127.0.0.1
@            MX  10 mx
mx           A   127.0.0.1
mx           TXT "v=spf1 a -all"
$ORIGIN 1.0.0.127.in-addr.arpa.
@            PTR mta1.provider.example.
`

// startDNS makes the DKIM keys, starts the DNS server, plans the
// customer's records, pushes them by DNS UPDATE and verifies them.
func startDNS(ctx context.Context, o *output) (*dnsWorld, error) {
	d := &dnsWorld{}
	var err error
	if d.customerKey, err = dkim.GenerateKey("rsa2048", nil); err != nil {
		return nil, err
	}
	if d.providerKey, err = dkim.GenerateKey("ed25519", nil); err != nil {
		return nil, err
	}
	pmRecord, err := dkim.KeyRecordText(d.providerKey, nil)
	if err != nil {
		return nil, err
	}
	d.base = fmt.Sprintf(baseZone, dnsauth.QuoteTXT(pmRecord))

	// The plan: what the customer publishes, and what the provider
	// serves for it.
	req := &dnsauth.Request{
		Domain:      customerDomain,
		ReturnPath:  returnPathLabel,
		Selectors:   []string{customerSelector},
		Target:      target,
		SPFInclude:  spfInclude,
		MX:          bounceHost,
		Keys:        map[string]crypto.PublicKey{customerSelector: d.customerKey.Public()},
		ExistingSPF: []string{existingSPF},
	}
	if d.plan, err = req.Plan(); err != nil {
		return nil, err
	}
	zone, err := dnstest.ParseZone(d.base + "$ORIGIN .\n" + d.plan.ProviderZone())
	if err != nil {
		return nil, err
	}
	zone.AddTXT(customerDomain, existingSPF)
	if d.srv, err = dnstest.NewServer(zone); err != nil {
		return nil, err
	}
	o.printf("  DNS server on %s for %s, %s and %s\n", d.srv.Addr, providerDomain, customerDomain, receiverDomain)
	if d.resolver, err = dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{d.srv.Addr}}); err != nil {
		d.close()
		return nil, err
	}

	// The customer's records, pushed as its DNS host would take them.
	o.printf("  the plan (delegated mode), for %s to publish:\n", customerDomain)
	for line := range strings.Lines(d.plan.Zone()) {
		o.printf("    %s", line)
	}
	d.srv.AcceptUpdates(map[string]string{updateKeyName: updateKeySecret})
	key, err := dnsauth.NewTSIGKey(updateKeyName, "", updateKeySecret)
	if err != nil {
		d.close()
		return nil, err
	}
	up, err := dnsauth.NewUpdater(d.srv.Addr, customerDomain, key, &dnsauth.UpdaterOptions{Logger: o.logger()})
	if err != nil {
		d.close()
		return nil, err
	}
	pushed, err := up.Apply(ctx, d.plan.Changes())
	if err != nil {
		d.close()
		return nil, fmt.Errorf("pushing the plan: %w", err)
	}
	o.printf("  pushed %d changes by DNS UPDATE signed with TSIG (RFC 2136, RFC 8945)\n", len(pushed.Changes))
	o.queries(zone)

	// Verified as a receiver would see them, and on the authoritative
	// server, for the provider's records too.
	d.report, err = d.resolver.Verify(ctx, d.plan, &dnsauth.VerifyOptions{
		Provider:  true,
		SendingIP: loopback,
		Nameservers: map[string]string{
			"ns1." + customerDomain: d.srv.Addr,
			"ns1." + providerDomain: d.srv.Addr,
		},
	})
	if err != nil {
		d.close()
		return nil, err
	}
	var lines bytes.Buffer
	d.report.WriteLines(&lines)
	o.printf("  dnsauth.Verify:\n")
	for line := range strings.Lines(lines.String()) {
		o.printf("    %s\n", shorten(strings.TrimSuffix(line, "\n"), 100))
	}
	o.queries(zone)
	if err := o.check(d.report.OK(), "every record published and working (SPF from %s, the DKIM key, DMARC)", loopback); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// zoneText is the zone file of the demo's DNS, the customer's records
// included.
func (d *dnsWorld) zoneText() string {
	return d.base + "$ORIGIN .\n" + d.plan.ProviderZone() + d.plan.Zone()
}

func (d *dnsWorld) close() {
	if d.srv != nil {
		d.srv.Close()
	}
}

// shorten cuts s to n characters, the long value of a key record.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
