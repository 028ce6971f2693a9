package dnstest

import (
	"slices"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// serveUpdate applies an RFC 2136 UPDATE to the Zone: zone section checked
// (§3.1), TSIG required when keys are set (RFC 8945 §5.2), prerequisites
// checked (§3.2), then the update section applied as one change (§3.4).
func (s *Server) serveUpdate(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	reply := func(rcode int) {
		m.Rcode = rcode
		if t := req.IsTsig(); t != nil && w.TsigStatus() == nil {
			m.SetTsig(t.Hdr.Name, t.Algorithm, 300, int64(t.TimeSigned))
		}
		w.WriteMsg(m)
	}
	s.mu.Lock()
	enabled, needKey := s.updates, len(s.tsig) > 0
	s.mu.Unlock()
	if !enabled {
		reply(dns.RcodeRefused)
		return
	}
	if needKey && (req.IsTsig() == nil || w.TsigStatus() != nil) {
		reply(dns.RcodeNotAuth)
		return
	}
	zq := req.Question[0]
	if zq.Qtype != dns.TypeSOA || zq.Qclass != dns.ClassINET {
		reply(dns.RcodeFormatError)
		return
	}
	reply(s.Zone.update(dnsname.Key(dns.Fqdn(zq.Name)), req.Answer, req.Ns))
}

// update checks prerequisites and applies updates atomically; it returns
// the RCODE of the outcome.
func (z *Zone) update(zone string, prereq, updates []dns.RR) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.rrs[key{zone, dns.TypeSOA}]) == 0 {
		return dns.RcodeNotAuth // not authoritative for that zone
	}
	for _, rr := range slices.Concat(prereq, updates) {
		if !dns.IsSubDomain(zone, dnsname.Key(dns.Fqdn(rr.Header().Name))) {
			return dns.RcodeNotZone
		}
	}
	// §3.2: prerequisites. A name is in use when it owns a record (§2.4.4);
	// an empty non-terminal, which only has names below it, is not.
	values := map[key][]dns.RR{}
	for _, rr := range prereq {
		h := rr.Header()
		n := dnsname.Key(dns.Fqdn(h.Name))
		if h.Ttl != 0 { // §3.2.1
			return dns.RcodeFormatError
		}
		switch h.Class {
		case dns.ClassANY:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if h.Rrtype == dns.TypeANY {
				if !z.owns(n) {
					return dns.RcodeNameError
				}
			} else if len(z.rrs[key{n, h.Rrtype}]) == 0 {
				return dns.RcodeNXRrset
			}
		case dns.ClassNONE:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if h.Rrtype == dns.TypeANY {
				if z.owns(n) {
					return dns.RcodeYXDomain
				}
			} else if len(z.rrs[key{n, h.Rrtype}]) > 0 {
				return dns.RcodeYXRrset
			}
		case dns.ClassINET:
			k := key{n, h.Rrtype}
			values[k] = append(values[k], rr)
		default:
			return dns.RcodeFormatError
		}
	}
	for k, want := range values { // value-dependent RRset equality (§3.2.3)
		have := z.rrs[k]
		if len(have) != len(want) {
			return dns.RcodeNXRrset
		}
		for _, rr := range want {
			if !slices.ContainsFunc(have, func(o dns.RR) bool { return dns.IsDuplicate(o, rr) }) {
				return dns.RcodeNXRrset
			}
		}
	}
	// §3.4.1: prescan.
	for _, rr := range updates {
		h := rr.Header()
		switch h.Class {
		case dns.ClassINET, dns.ClassNONE:
			if h.Rrtype == dns.TypeANY || h.Rrtype == dns.TypeAXFR || h.Rrtype == dns.TypeIXFR {
				return dns.RcodeFormatError
			}
		case dns.ClassANY:
			if h.Ttl != 0 || h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
		default:
			return dns.RcodeFormatError
		}
	}
	// §3.4.2: apply. The apex SOA and NS RRsets are never deleted whole.
	for _, rr := range updates {
		h := rr.Header()
		n := dnsname.Key(dns.Fqdn(h.Name))
		k := key{n, h.Rrtype}
		apexKeep := func(t uint16) bool { return n == zone && (t == dns.TypeSOA || t == dns.TypeNS) }
		switch h.Class {
		case dns.ClassINET:
			c := dns.Copy(rr)
			c.Header().Name = n
			// §3.4.2.2: a CNAME is not added beside other data, nor other
			// data beside a CNAME (DNSSEC records aside); both are ignored.
			if h.Rrtype == dns.TypeCNAME && z.ownsOtherThan(n, dns.TypeCNAME) ||
				h.Rrtype != dns.TypeCNAME && !isDNSSEC(h.Rrtype) && len(z.rrs[key{n, dns.TypeCNAME}]) > 0 {
				continue
			}
			if h.Rrtype == dns.TypeSOA || h.Rrtype == dns.TypeCNAME {
				z.rrs[k] = []dns.RR{c} // singletons are replaced
			} else if i := slices.IndexFunc(z.rrs[k], func(o dns.RR) bool { return dns.IsDuplicate(o, c) }); i >= 0 {
				z.rrs[k][i] = c // a duplicate replaces the zone's RR (its TTL)
			} else {
				z.rrs[k] = append(z.rrs[k], c)
			}
		case dns.ClassANY:
			for kk := range z.rrs {
				if kk.name == n && (h.Rrtype == dns.TypeANY || kk.qtype == h.Rrtype) && !apexKeep(kk.qtype) {
					delete(z.rrs, kk)
				}
			}
		case dns.ClassNONE:
			if h.Rrtype == dns.TypeSOA {
				continue
			}
			c := dns.Copy(rr)
			c.Header().Class = dns.ClassINET
			z.rrs[k] = slices.DeleteFunc(z.rrs[k], func(o dns.RR) bool { return dns.IsDuplicate(o, c) })
			if len(z.rrs[k]) == 0 {
				delete(z.rrs, k)
			}
		}
	}
	if soa := z.rrs[key{zone, dns.TypeSOA}]; len(updates) > 0 && len(soa) > 0 {
		soa[0].(*dns.SOA).Serial++ // RFC 2136 §3.6
	}
	z.recomputeNames()
	return dns.RcodeSuccess
}

// owns reports whether n owns at least one record.
func (z *Zone) owns(n string) bool { return z.ownsOtherThan(n, dns.TypeNone) }

// ownsOtherThan reports whether n owns a record of a type other than t
// (and other than DNSSEC's, which stand beside any).
func (z *Zone) ownsOtherThan(n string, t uint16) bool {
	for k, rrs := range z.rrs {
		if k.name == n && k.qtype != t && len(rrs) > 0 && (t == dns.TypeNone || !isDNSSEC(k.qtype)) {
			return true
		}
	}
	return false
}

func isDNSSEC(t uint16) bool {
	switch t {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
		return true
	}
	return false
}
