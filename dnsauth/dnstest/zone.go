// Package dnstest provides DNS fixtures for tests, in the manner of
// net/http/httptest: Zone, an in-memory resolver built from zone-file text or
// Go values, and Server, a real DNS server on the loopback interface that
// serves a Zone over UDP and TCP.
//
// A Zone has the methods of *net.Resolver that the mail-authentication
// packages of this module consume (LookupTXT, LookupMX, LookupNetIP,
// LookupAddr, LookupCNAME, LookupNS), so it can stand in for
// net.DefaultResolver or a dnsauth.Resolver. It keeps the module's error
// contract: a name that does not exist (NXDOMAIN) or has no record of the
// type asked (NODATA) gives a *net.DNSError with IsNotFound; an injected
// failure gives a temporary *net.DNSError (IsTimeout for Timeout).
package dnstest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// DefaultTTL is the TTL of records added without one.
const DefaultTTL = 3600

// maxChain is the longest CNAME chain followed (RFC 1034 §3.6.2 leaves the
// limit to implementations; 8 is the module's limit everywhere).
const maxChain = 8

// Failure is a failure injected for a name and type.
type Failure int

// The failures a Zone can inject.
const (
	// NoFailure removes an injected failure.
	NoFailure Failure = iota
	// Timeout: the lookup fails as if no answer came (a Server drops the
	// query).
	Timeout
	// ServFail: the answer has RCODE SERVFAIL.
	ServFail
	// Refused: the answer has RCODE REFUSED.
	Refused
)

func (f Failure) String() string {
	switch f {
	case NoFailure:
		return "none"
	case Timeout:
		return "timeout"
	case ServFail:
		return "SERVFAIL"
	case Refused:
		return "REFUSED"
	}
	return fmt.Sprintf("Failure(%d)", int(f))
}

// Query is one question a Zone was asked.
type Query struct {
	Name string // absolute, lower case
	Type uint16 // dns.TypeTXT, dns.TypeA, ...
}

func (q Query) String() string { return dns.TypeToString[q.Type] + " " + q.Name }

type key struct {
	name  string
	qtype uint16
}

// Zone is an in-memory set of resource records that answers lookups. The
// zero value is not usable; use NewZone or ParseZone. A Zone is safe for
// concurrent use.
//
// Names given to its methods (the Lookup methods, the Add helpers, Remove,
// Fail) are raw labels separated by dots, as *net.Resolver takes them: a
// backslash or a quote is that octet. Zone-file text, the records given to
// Add and Resolve's name are in the presentation form of RFC 1035 §5.1,
// where such octets are escaped, as miekg/dns writes them. TXT text is raw
// octets in AddTXT and in what LookupTXT returns.
type Zone struct {
	mu    sync.Mutex
	rrs   map[key][]dns.RR
	names map[string]bool // every owner name and its ancestors (RFC 8020)
	fail  map[key]Failure
	log   []Query
}

// NewZone returns an empty Zone.
func NewZone() *Zone {
	return &Zone{rrs: map[key][]dns.RR{}, names: map[string]bool{}, fail: map[key]Failure{}}
}

// ParseZone returns a Zone holding the records of zone-file text (RFC 1035
// §5, as read by miekg/dns). Relative names are relative to the root unless
// the text sets $ORIGIN; records without a TTL get DefaultTTL.
func ParseZone(text string) (*Zone, error) {
	z := NewZone()
	if err := z.AddText(text); err != nil {
		return nil, err
	}
	return z, nil
}

// ReadZoneFile is ParseZone of the file at path; its errors name the file.
func ReadZoneFile(path string) (*Zone, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err // an *fs.PathError names the file
	}
	z, err := ParseZone(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return z, nil
}

// MustParseZone is like ParseZone but panics on an error; for tests and
// examples.
func MustParseZone(text string) *Zone {
	z, err := ParseZone(text)
	if err != nil {
		panic(err)
	}
	return z
}

// AddText adds the records of zone-file text, as ParseZone does.
func (z *Zone) AddText(text string) error {
	zp := dns.NewZoneParser(strings.NewReader(text), ".", "")
	zp.SetDefaultTTL(DefaultTTL)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("dnstest: zone text: %w", err)
	}
	z.Add(rrs...)
	return nil
}

// Add adds resource records.
func (z *Zone) Add(rrs ...dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = dns.Fqdn(h.Name)
		k := key{dnsname.Key(h.Name), h.Rrtype}
		if slices.ContainsFunc(z.rrs[k], func(o dns.RR) bool { return dns.IsDuplicate(o, rr) }) {
			continue
		}
		z.rrs[k] = append(z.rrs[k], rr)
		for n := k.name; ; {
			z.names[n] = true
			i, end := dns.NextLabel(n, 0)
			if end {
				break
			}
			n = n[i:]
		}
	}
}

// Remove deletes every record of the type at name; type dns.TypeANY removes
// all of them. The name keeps existing if other records stand below it.
func (z *Zone) Remove(name string, qtype uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := dnsname.Key(fqdn(name))
	for k := range z.rrs {
		if k.name == n && (qtype == dns.TypeANY || k.qtype == qtype) {
			delete(z.rrs, k)
		}
	}
	z.recomputeNames()
}

func (z *Zone) recomputeNames() {
	clear(z.names)
	for k := range z.rrs {
		for n := k.name; ; {
			z.names[n] = true
			i, end := dns.NextLabel(n, 0)
			if end {
				break
			}
			n = n[i:]
		}
	}
}

// hdr is the header of a record owned by name, a name of raw labels as the
// Add helpers take it.
func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: DefaultTTL}
}

// fqdn is the absolute presentation form (RFC 1035 §5.1) of a raw name.
func fqdn(name string) string { return dns.Fqdn(dnsname.Escape(name)) }

// AddTXT adds one TXT record whose text is value, raw octets (no escapes),
// split into character-strings of at most 255 octets (RFC 1035 §3.3.14).
func (z *Zone) AddTXT(name, value string) {
	parts := dnsname.SplitTXT(value)
	for i, p := range parts {
		parts[i] = dnsname.EscapeTXT(p)
	}
	z.Add(&dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: parts})
}

// AddIP adds an A or AAAA record for each address.
func (z *Zone) AddIP(name string, addrs ...netip.Addr) {
	for _, a := range addrs {
		if a.Unmap().Is4() {
			z.Add(&dns.A{Hdr: hdr(name, dns.TypeA), A: net.IP(a.Unmap().AsSlice())})
		} else {
			z.Add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
		}
	}
}

// AddMX adds an MX record.
func (z *Zone) AddMX(name string, pref uint16, host string) {
	z.Add(&dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: pref, Mx: fqdn(host)})
}

// AddCNAME adds a CNAME record from name to target.
func (z *Zone) AddCNAME(name, target string) {
	z.Add(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: fqdn(target)})
}

// AddNS adds an NS record.
func (z *Zone) AddNS(name, host string) {
	z.Add(&dns.NS{Hdr: hdr(name, dns.TypeNS), Ns: fqdn(host)})
}

// AddPTR adds a PTR record for addr under in-addr.arpa or ip6.arpa.
func (z *Zone) AddPTR(addr netip.Addr, name string) {
	rev, _ := dns.ReverseAddr(addr.Unmap().String())
	z.Add(&dns.PTR{Hdr: hdr(rev, dns.TypePTR), Ptr: fqdn(name)})
}

// Fail makes every query for name and qtype fail with f; qtype dns.TypeANY
// makes every type fail. NoFailure removes the injection. Failures apply
// to the name asked and to names reached through a CNAME.
func (z *Zone) Fail(name string, qtype uint16, f Failure) {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := key{dnsname.Key(fqdn(name)), qtype}
	if f == NoFailure {
		delete(z.fail, k)
	} else {
		z.fail[k] = f
	}
}

// Queries returns the questions asked so far, in order. A lookup of network
// "ip" asks two (A and AAAA).
func (z *Zone) Queries() []Query {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.log)
}

// ResetQueries clears the query log.
func (z *Zone) ResetQueries() {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.log = nil
}

// Answer is the outcome of one question, as an authoritative server would
// give it.
type Answer struct {
	Rcode   int      // dns.RcodeSuccess or dns.RcodeNameError (NXDOMAIN)
	Failure Failure  // non-zero when a failure was injected
	Records []dns.RR // CNAMEs followed, then the records of the type asked
	SOA     *dns.SOA // for negative answers: the closest enclosing SOA, if any
	Loop    bool     // the CNAME chain loops or is longer than 8
}

// Resolve answers one question and logs it. It follows CNAMEs (at most 8),
// as an authoritative server does within its data. Copies of the records
// are returned.
func (z *Zone) Resolve(name string, qtype uint16) Answer {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := dnsname.Key(dns.Fqdn(name))
	z.log = append(z.log, Query{n, qtype})
	var a Answer
	seen := map[string]bool{}
	for hop := 0; ; hop++ {
		if f := z.failure(n, qtype); f != NoFailure {
			return Answer{Failure: f}
		}
		if rrs := z.rrs[key{n, qtype}]; len(rrs) > 0 {
			a.Records = appendCopies(a.Records, rrs)
			return a
		}
		cn := z.rrs[key{n, dns.TypeCNAME}]
		if len(cn) == 0 || qtype == dns.TypeCNAME {
			break
		}
		if hop == maxChain || seen[n] {
			a.Loop = true
			return a
		}
		seen[n] = true
		a.Records = appendCopies(a.Records, cn[:1])
		n = dnsname.Key(cn[0].(*dns.CNAME).Target)
	}
	if !z.names[n] {
		a.Rcode = dns.RcodeNameError
	}
	a.SOA = z.soaFor(n)
	return a
}

func appendCopies(dst, rrs []dns.RR) []dns.RR {
	for _, rr := range rrs {
		dst = append(dst, dns.Copy(rr))
	}
	return dst
}

func (z *Zone) failure(n string, qtype uint16) Failure {
	if f := z.fail[key{n, qtype}]; f != NoFailure {
		return f
	}
	return z.fail[key{n, dns.TypeANY}]
}

func (z *Zone) soaFor(n string) *dns.SOA {
	for {
		if rrs := z.rrs[key{n, dns.TypeSOA}]; len(rrs) > 0 {
			return dns.Copy(rrs[0]).(*dns.SOA)
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			return nil
		}
		n = n[i:]
	}
}
