package dnsauth

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
)

// LookupTXT returns the TXT records of name, the character-strings of
// each record joined into one string (RFC 7208 §3.3, RFC 6376 §3.6.2.2),
// one string per record.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	e, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.txt), nil
}

// LookupMX returns the MX records of name sorted by preference, hosts
// absolute, like *net.Resolver.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	a, err := r.Lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	return dnsrr.MXs(a.Records), nil
}

// LookupNS returns the NS records of name.
func (r *Resolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	a, err := r.Lookup(ctx, name, dns.TypeNS)
	if err != nil {
		return nil, err
	}
	return dnsrr.NSs(a.Records), nil
}

// LookupCNAME returns the canonical name of host, like *net.Resolver: the
// end of its CNAME chain, or host itself (absolute) when it has address
// records and no CNAME. To read one CNAME record as published, use Lookup
// with dns.TypeCNAME.
func (r *Resolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	a, err := r.Lookup(ctx, host, dns.TypeA)
	if err == nil {
		return a.Canonical, nil
	}
	if !dnsname.IsNotFound(err) {
		return "", err // a loop or an over-long chain is found here too
	}
	// The chain may end at a name without addresses (a DKIM selector's
	// TXT-only target): follow its CNAME records one at a time.
	name := host
	for links := 0; ; links++ {
		c, cerr := r.Lookup(ctx, name, dns.TypeCNAME)
		if dnsname.IsNotFound(cerr) {
			break
		}
		if cerr != nil {
			return "", cerr
		}
		if links == maxChain {
			return "", dnsname.Temporary(host, c.Server, fmt.Sprintf("CNAME chain longer than %d", maxChain))
		}
		name = c.Records[0].(*dns.CNAME).Target
	}
	if name == host {
		return "", err
	}
	return name, nil
}

// LookupNetIP returns the addresses of host: network "ip4" asks for A,
// "ip6" for AAAA, "ip" for both. An IP literal is returned as it is.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return dnsname.LookupNetIP(network, host, func(t uint16) ([]netip.Addr, error) {
		a, err := r.Lookup(ctx, host, t)
		if err != nil {
			return nil, err
		}
		return dnsrr.Addrs(a.Records), nil
	})
}

// LookupAddr returns the names of addr from its PTR records (RFC 1035
// §3.5, RFC 3596 §2.5), absolute.
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	a, err := r.Lookup(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	return dnsrr.PTRs(a.Records), nil
}
