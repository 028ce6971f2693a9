// Package dnsrr converts miekg/dns resource records to the values
// *net.Resolver returns, for the packages that speak DNS on the wire
// (dnsauth and dnsauth/dnstest). It is apart from internal/dnsname so that
// the packages that only check names and errors (spf, dkim, srs, dmarc) do
// not import miekg/dns.
package dnsrr

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// Each conversion skips the records of other types.

// TXTs joins the character-strings of each TXT record into one string
// (RFC 7208 §3.3, RFC 6376 §3.6.2.2), one string per record, as raw
// octets: miekg/dns keeps them escaped (RFC 1035 §5.1).
func TXTs(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			var b strings.Builder
			for _, s := range t.Txt {
				b.WriteString(dnsname.UnescapeTXT(s))
			}
			out = append(out, b.String())
		}
	}
	return out
}

// MXs returns the MX records sorted by preference (RFC 5321 §5.1), hosts
// absolute.
func MXs(rrs []dns.RR) []*net.MX {
	out := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		if mx, ok := rr.(*dns.MX); ok {
			out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	slices.SortStableFunc(out, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return out
}

// NSs returns the hosts of the NS records.
func NSs(rrs []dns.RR) []*net.NS {
	out := make([]*net.NS, 0, len(rrs))
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, &net.NS{Host: ns.Ns})
		}
	}
	return out
}

// PTRs returns the names of the PTR records, absolute.
func PTRs(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			out = append(out, p.Ptr)
		}
	}
	return out
}

// Addrs returns the addresses of the A and AAAA records.
func Addrs(rrs []dns.RR) []netip.Addr {
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
