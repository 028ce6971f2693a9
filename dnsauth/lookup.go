package dnsauth

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
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

// joinTXT joins the character-strings of each TXT record.
func joinTXT(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}

// LookupMX returns the MX records of name sorted by preference, hosts
// absolute, like *net.Resolver.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	a, err := r.Lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, 0, len(a.Records))
	for _, rr := range a.Records {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	slices.SortStableFunc(out, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return out, nil
}

// LookupNS returns the NS records of name.
func (r *Resolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	a, err := r.Lookup(ctx, name, dns.TypeNS)
	if err != nil {
		return nil, err
	}
	out := make([]*net.NS, 0, len(a.Records))
	for _, rr := range a.Records {
		out = append(out, &net.NS{Host: rr.(*dns.NS).Ns})
	}
	return out, nil
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
	// A chain may end at a name without addresses: ask for the CNAME alone.
	if c, cerr := r.Lookup(ctx, host, dns.TypeCNAME); cerr == nil {
		target := c.Records[0].(*dns.CNAME).Target
		if t, terr := r.LookupCNAME(ctx, target); terr == nil {
			return t, nil
		}
		return target, nil
	}
	return "", err
}

// LookupNetIP returns the addresses of host: network "ip4" asks for A,
// "ip6" for AAAA, "ip" for both. An IP literal is returned as it is.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return dnsname.LookupNetIP(network, host, func(t uint16) ([]netip.Addr, error) {
		a, err := r.Lookup(ctx, host, t)
		if err != nil {
			return nil, err
		}
		return addrs(a.Records), nil
	})
}

// addrs returns the addresses of the A and AAAA records among rrs.
func addrs(rrs []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(rr.A.To4()); ok {
				out = append(out, ip)
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
				out = append(out, ip)
			}
		}
	}
	return out
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
	out := make([]string, 0, len(a.Records))
	for _, rr := range a.Records {
		out = append(out, rr.(*dns.PTR).Ptr)
	}
	return out, nil
}
