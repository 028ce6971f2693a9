package dnstest

import (
	"context"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
)

// lookup asks one question and turns the answer into the records of the
// type asked, or an error of the module's contract.
func (z *Zone) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	if err := ctx.Err(); err != nil {
		return nil, dnsname.Context(name, err)
	}
	abs, err := dnsname.Absolute(name)
	if err != nil {
		return nil, dnsname.Invalid(name, err)
	}
	// The name is raw labels, as *net.Resolver takes it; the zone keeps
	// names in presentation form (RFC 1035 §5.1).
	abs = dnsname.Escape(abs)
	a := z.Resolve(abs, qtype)
	switch a.Failure {
	case Timeout:
		return nil, dnsname.Timeout(name, "dnstest")
	case ServFail:
		return nil, dnsname.ServFail(name, "dnstest")
	case Refused:
		return nil, dnsname.Refused(name, "dnstest")
	}
	if a.Loop {
		return nil, dnsname.Temporary(name, "dnstest", "CNAME chain loops or is longer than 8")
	}
	if a.Rcode == dns.RcodeNameError {
		return nil, dnsname.NotFound(name, "")
	}
	var out []dns.RR
	for _, rr := range a.Records {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	if len(out) == 0 {
		return nil, dnsname.NoData(name, "")
	}
	return out, nil
}

// LookupTXT returns the TXT records of name, each record's
// character-strings joined into one string (RFC 7208 §3.3).
func (z *Zone) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := z.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	return dnsrr.TXTs(rrs), nil
}

// LookupMX returns the MX records of name sorted by preference; hosts are
// absolute names, as with *net.Resolver.
func (z *Zone) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := z.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	return dnsrr.MXs(rrs), nil
}

// LookupNS returns the NS records of name.
func (z *Zone) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	rrs, err := z.lookup(ctx, name, dns.TypeNS)
	if err != nil {
		return nil, err
	}
	return dnsrr.NSs(rrs), nil
}

// LookupCNAME returns the canonical name of host: the end of its CNAME
// chain, or host itself (absolute) when it has no CNAME but exists.
func (z *Zone) LookupCNAME(ctx context.Context, host string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", dnsname.Context(host, err)
	}
	abs, err := dnsname.Absolute(host)
	if err != nil {
		return "", dnsname.Invalid(host, err)
	}
	abs = dnsname.Escape(abs)
	// Asking for A follows the whole chain, as a stub resolver's query does.
	a := z.Resolve(abs, dns.TypeA)
	switch a.Failure {
	case Timeout:
		return "", dnsname.Timeout(host, "dnstest")
	case ServFail:
		return "", dnsname.ServFail(host, "dnstest")
	case Refused:
		return "", dnsname.Refused(host, "dnstest")
	}
	if a.Loop {
		return "", dnsname.Temporary(host, "dnstest", "CNAME chain loops or is longer than 8")
	}
	target := abs
	for _, rr := range a.Records {
		if c, ok := rr.(*dns.CNAME); ok {
			target = c.Target
		}
	}
	if a.Rcode == dns.RcodeNameError && target == abs {
		return "", dnsname.NotFound(host, "")
	}
	return target, nil
}

// LookupNetIP returns the addresses of host: network "ip4" asks for A,
// "ip6" for AAAA, "ip" for both. An IP literal is returned as it is.
func (z *Zone) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return dnsname.LookupNetIP(network, host, func(t uint16) ([]netip.Addr, error) {
		rrs, err := z.lookup(ctx, host, t)
		return dnsrr.Addrs(rrs), err
	})
}

// LookupAddr returns the names of addr from its PTR records, absolute.
func (z *Zone) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	rrs, err := z.lookup(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	return dnsrr.PTRs(rrs), nil
}
