package spf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// match evaluates one mechanism (RFC 7208 §5). ok is false when the
// evaluation ends with o (temperror or permerror).
func (e *eval) match(t *Term, name string, depth int) (match bool, o outcome, ok bool) {
	switch t.Mechanism {
	case MechAll:
		return true, o, true
	case MechIP4:
		return e.ip.Is4() && t.Prefix().Contains(e.ip), o, true
	case MechIP6:
		if e.ip.Is4() && t.Addr.Is4In6() && (t.CIDR6 < 0 || t.CIDR6 >= 96) {
			// An IPv4-mapped network matches the IPv4 client it maps
			// (RFC 7208 §5: mapped addresses are IPv4 addresses).
			bits := 32
			if t.CIDR6 >= 0 {
				bits = t.CIDR6 - 96
			}
			p, _ := t.Addr.Unmap().Prefix(bits)
			return p.Contains(e.ip), o, true
		}
		return e.ip.Is6() && t.Prefix().Contains(e.ip), o, true
	case MechA:
		target := e.target(t, name)
		addrs, err := e.lookupIP(target, e.network())
		if err != nil {
			return e.lookupFailed(err)
		}
		return e.anyInCIDR(addrs, t), o, true
	case MechMX:
		return e.matchMX(t, e.target(t, name))
	case MechPTR:
		return e.matchPTR(e.target(t, name))
	case MechExists:
		// RFC 7208 §5.7: always an A query, whatever the client's family.
		addrs, err := e.lookupIP(e.target(t, name), "ip4")
		if err != nil {
			return e.lookupFailed(err)
		}
		return len(addrs) > 0, o, true
	case MechInclude:
		target := e.target(t, name)
		if !validDomain(target) {
			return false, permErr(fmt.Errorf("%w: include of invalid domain %q", ErrSyntax, target)), false
		}
		out := e.checkHost(target, depth+1, false)
		// RFC 7208 §5.2.
		switch out.status {
		case Pass:
			return true, o, true
		case Fail, SoftFail, Neutral:
			return false, o, true
		case None:
			return false, permErr(fmt.Errorf("%w: include target %s", ErrNoRecord, target)), false
		}
		return false, out, false
	}
	return false, permErr(fmt.Errorf("%w: unknown mechanism %q", ErrSyntax, t.Mechanism)), false
}

// lookupFailed turns the error of a mechanism's first lookup into a void
// lookup (not found) or a temperror.
func (e *eval) lookupFailed(err error) (bool, outcome, bool) {
	if isNotFound(err) {
		if o, ok := e.void(); !ok {
			return false, o, false
		}
		return false, outcome{}, true
	}
	return false, outcome{status: TempError, err: fmt.Errorf("%w: %v", ErrDNS, err)}, false
}

func (e *eval) network() string {
	if e.ip.Is4() {
		return "ip4"
	}
	return "ip6"
}

func (e *eval) lookupIP(name, network string) ([]netip.Addr, error) {
	addrs, err := e.c.r.LookupNetIP(e.ctx, network, fqdn(name))
	q := "A"
	if network == "ip6" {
		q = "AAAA"
	}
	e.step(Step{Kind: StepLookup, Query: q, Text: strings.TrimSuffix(name, "."), Err: err, N: len(addrs)})
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: name, IsNotFound: true}
	}
	return addrs, err
}

// anyInCIDR reports whether the client address is in one of addrs with the
// mechanism's CIDR length for its family (RFC 7208 §5.3, §5.6).
func (e *eval) anyInCIDR(addrs []netip.Addr, t *Term) bool {
	bits := t.CIDR4
	if e.ip.Is6() {
		bits = t.CIDR6
	}
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() != e.ip.Is4() {
			continue
		}
		if bits < 0 {
			if a == e.ip {
				return true
			}
			continue
		}
		p, err := a.Prefix(bits)
		if err == nil && p.Contains(e.ip) {
			return true
		}
	}
	return false
}

// matchMX implements the mx mechanism (RFC 7208 §5.4).
func (e *eval) matchMX(t *Term, target string) (bool, outcome, bool) {
	mxs, err := e.c.r.LookupMX(e.ctx, fqdn(target))
	e.step(Step{Kind: StepLookup, Query: "MX", Text: strings.TrimSuffix(target, "."), Err: err, N: len(mxs)})
	if err == nil && len(mxs) == 0 {
		err = &net.DNSError{Err: "no MX records", Name: target, IsNotFound: true}
	}
	if err != nil {
		return e.lookupFailed(err)
	}
	hosts := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		if mx.Host == "." || mx.Host == "" {
			continue // null MX (RFC 7505)
		}
		hosts = append(hosts, mx.Host)
	}
	// RFC 7208 §4.6.4: evaluating an mx mechanism must not query more
	// than MaxMXNames address records; more names is permerror, before
	// any address lookup (as the openspf mx-limit case and pyspf have it).
	if len(hosts) > e.c.opts.MaxMXNames {
		return false, permErr(fmt.Errorf("%w: %s has %d MX names, over %d", ErrTooManyLookups, target[:len(target)-1], len(hosts), e.c.opts.MaxMXNames)), false
	}
	type answer struct {
		addrs []netip.Addr
		err   error
	}
	answers := make([]answer, len(hosts))
	network := e.network()
	if !e.c.opts.ConcurrentMX || len(hosts) < 2 {
		for i, h := range hosts {
			addrs, err := e.c.r.LookupNetIP(e.ctx, network, fqdn(h))
			answers[i] = answer{addrs, err}
			if err != nil && !isNotFound(err) || err == nil && e.anyInCIDR(addrs, t) {
				answers = answers[:i+1]
				break
			}
		}
	} else {
		done := make(chan struct{}, len(hosts))
		for i, h := range hosts {
			go func() {
				addrs, err := e.c.r.LookupNetIP(e.ctx, network, fqdn(h))
				answers[i] = answer{addrs, err}
				done <- struct{}{}
			}()
		}
		for range hosts {
			<-done
		}
	}
	q := "A"
	if network == "ip6" {
		q = "AAAA"
	}
	for i, a := range answers {
		e.step(Step{Kind: StepLookup, Query: q, Text: strings.TrimSuffix(hosts[i], "."), Err: a.err, N: len(a.addrs)})
		if a.err != nil {
			if isNotFound(a.err) {
				continue
			}
			return false, outcome{status: TempError, err: fmt.Errorf("%w: %v", ErrDNS, a.err)}, false
		}
		if e.anyInCIDR(a.addrs, t) {
			return true, outcome{}, true
		}
	}
	return false, outcome{}, true
}

// ptr returns the PTR names of the client address, looked up at most once
// per evaluation.
func (e *eval) ptr() ([]string, error) {
	if !e.ptrDone {
		e.ptrDone = true
		e.ptrNames, e.ptrErr = e.c.r.LookupAddr(e.ctx, e.ip.String())
		e.step(Step{Kind: StepLookup, Query: "PTR", Text: e.ip.String(), Err: e.ptrErr, N: len(e.ptrNames)})
	}
	return e.ptrNames, e.ptrErr
}

// validated reports whether name has an address equal to the client's
// (RFC 7208 §5.5 forward lookup).
// Answers are remembered for the evaluation, so repeated ptr mechanisms
// and %{p} macros query each name once.
func (e *eval) validated(name string) bool {
	key := strings.ToLower(strings.TrimSuffix(name, "."))
	if v, ok := e.valid[key]; ok {
		return v
	}
	ok := false
	addrs, err := e.lookupIP(key, e.network())
	for _, a := range addrs {
		if err == nil && a.Unmap() == e.ip {
			ok = true
		}
	}
	if e.valid == nil {
		e.valid = map[string]bool{}
	}
	e.valid[key] = ok
	return ok
}

// matchPTR implements the ptr mechanism (RFC 7208 §5.5): a PTR lookup
// error means no match; names beyond MaxPTRNames are ignored.
func (e *eval) matchPTR(target string) (bool, outcome, bool) {
	names, err := e.ptr()
	if err != nil {
		if isNotFound(err) {
			if o, ok := e.void(); !ok {
				return false, o, false
			}
		}
		return false, outcome{}, true
	}
	if len(names) > e.c.opts.MaxPTRNames {
		names = names[:e.c.opts.MaxPTRNames]
	}
	target = target[:len(target)-1]
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		if !isSubdomain(n, target) {
			continue
		}
		if e.validated(n) {
			return true, outcome{}, true
		}
	}
	return false, outcome{}, true
}

// isSubdomain reports whether name equals domain or ends with "."+domain,
// ignoring case.
func isSubdomain(name, domain string) bool {
	if len(name) < len(domain) {
		return false
	}
	if len(name) == len(domain) {
		return strings.EqualFold(name, domain)
	}
	return name[len(name)-len(domain)-1] == '.' && strings.EqualFold(name[len(name)-len(domain):], domain)
}

// explain computes the explanation of the exp modifier t (RFC 7208 §6.2);
// any problem gives no explanation.
func (e *eval) explain(t *Term, name string) string {
	e.inExp = true
	target := e.target(t, name)
	e.inExp = false
	if !validDomain(target) {
		return ""
	}
	txts, err := e.c.r.LookupTXT(e.ctx, target)
	e.step(Step{Kind: StepLookup, Query: "TXT", Text: target[:len(target)-1], Note: noteExplanation, Err: err, N: len(txts)})
	if err != nil || len(txts) != 1 {
		return ""
	}
	m, err := parseMacroString(txts[0], true)
	if err != nil {
		return ""
	}
	e.inExp = true
	defer func() { e.inExp = false }()
	return m.expand(e, name[:len(name)-1])
}

// macroValue returns the value of a macro letter (RFC 7208 §7.2).
func (e *eval) macroValue(letter byte, domain string) string {
	switch letter {
	case 's':
		return e.sender
	case 'l':
		return e.local
	case 'o':
		return e.senderDomain
	case 'd':
		return domain
	case 'i':
		if e.ipDots == "" {
			e.ipDots = dotIP(e.ip)
		}
		return e.ipDots
	case 'p':
		return e.validatedName(domain)
	case 'v':
		if e.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'h':
		if e.helo == "" {
			return "unknown"
		}
		return e.helo
	case 'c':
		return e.ip.String()
	case 'r':
		return e.c.opts.Hostname
	case 't':
		return fmt.Sprint(e.c.opts.Now().Unix())
	}
	return ""
}

// dotIP is the %{i} form: dotted quad for IPv4, dot-separated nibbles for
// IPv6 (RFC 7208 §7.3).
func dotIP(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	// Upper-case nibbles, as the openspf suites expect in explanations
	// (v-macro-ip6); DNS names compare case-insensitively, so queries are
	// the same as with RFC 7208 §7.4's lower-case example.
	const hex = "0123456789ABCDEF"
	a := ip.As16()
	b := make([]byte, 0, 63)
	for i, x := range a {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, hex[x>>4], '.', hex[x&15])
	}
	return string(b)
}

// validatedName is the %{p} value (RFC 7208 §7.3): a validated PTR name of
// the client, preferring domain itself, then a subdomain of it; "unknown"
// when there is none.
func (e *eval) validatedName(domain string) string {
	names, err := e.ptr()
	if err != nil {
		return "unknown"
	}
	if len(names) > e.c.opts.MaxPTRNames {
		names = names[:e.c.opts.MaxPTRNames]
	}
	var sub, other string
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		isSub := isSubdomain(n, domain)
		if (!isSub && other != "") || (isSub && sub != "" && !strings.EqualFold(n, domain)) {
			continue
		}
		if !e.validated(n) {
			continue
		}
		if strings.EqualFold(n, domain) {
			return n
		}
		if isSub {
			sub = n
		} else {
			other = n
		}
	}
	if sub != "" {
		return sub
	}
	if other != "" {
		return other
	}
	return "unknown"
}
