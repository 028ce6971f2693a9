package spf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Resolver is the DNS interface check_host() consumes. *net.Resolver (and
// so net.DefaultResolver), the module's dnsauth resolver and dnstest.Zone
// satisfy it. Not-found answers (NXDOMAIN or no records) must be a
// *net.DNSError with IsNotFound; any other error is taken as temporary
// (RFC 7208 §2.6.6 temperror).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Options configures a Checker. A nil *Options, and every zero field, mean
// the defaults.
type Options struct {
	// MaxDNSTerms limits the terms that cause DNS queries (include, a, mx,
	// ptr, exists, redirect) over the whole evaluation. Default 10
	// (RFC 7208 §4.6.4, a MUST).
	MaxDNSTerms int
	// MaxVoidLookups limits the DNS-querying terms whose lookup finds no
	// record (NXDOMAIN or an empty answer). Default 2 (RFC 7208 §4.6.4,
	// RECOMMENDED).
	MaxVoidLookups int
	// MaxMXNames limits the names of one mx mechanism; more is permerror.
	// Default 10 (RFC 7208 §4.6.4).
	MaxMXNames int
	// MaxPTRNames limits the names of one ptr mechanism or %{p} macro that
	// are checked; the rest are ignored. Default 10 (RFC 7208 §4.6.4).
	MaxPTRNames int
	// ConcurrentMX runs the address lookups of an mx mechanism's names
	// concurrently. Default false: one after another, stopping at the first
	// match, which makes the fewest queries. The result and the counts
	// against the limits are the same either way.
	ConcurrentMX bool
	// Hostname is the %{r} macro value in explanations: the domain name of
	// the host performing the check (RFC 7208 §7.2). Default "unknown".
	Hostname string
	// Now gives the %{t} macro value in explanations (RFC 7208 §7.2).
	// Default time.Now.
	Now func() time.Time
	// Logger gets one debug record per evaluation. Default: none.
	Logger *slog.Logger
}

// Checker evaluates SPF (RFC 7208 check_host()). It is safe for concurrent
// use; its fields must not change after NewChecker.
type Checker struct {
	r    Resolver
	opts Options

	mu    sync.RWMutex
	cache map[string]parsed // parsed records by text
}

type parsed struct {
	rec *Record
	err error
}

// maxCached bounds the parsed-record cache; it is emptied when full.
const maxCached = 1024

// parse is Parse with a cache of the records seen: records are immutable
// once parsed, and the same few records are evaluated again and again.
func (c *Checker) parse(text string) (*Record, error) {
	c.mu.RLock()
	p, ok := c.cache[text]
	c.mu.RUnlock()
	if ok {
		return p.rec, p.err
	}
	rec, err := Parse(text)
	c.mu.Lock()
	if len(c.cache) >= maxCached {
		clear(c.cache)
	}
	c.cache[text] = parsed{rec, err}
	c.mu.Unlock()
	return rec, err
}

// NewChecker returns a Checker that queries r. opts may be nil.
func NewChecker(r Resolver, opts *Options) (*Checker, error) {
	if r == nil {
		return nil, errors.New("spf: nil Resolver")
	}
	c := &Checker{r: r, cache: map[string]parsed{}}
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	if o.MaxDNSTerms < 0 || o.MaxVoidLookups < 0 || o.MaxMXNames < 0 || o.MaxPTRNames < 0 {
		return nil, errors.New("spf: negative limit in Options")
	}
	if o.MaxDNSTerms == 0 {
		o.MaxDNSTerms = 10
	}
	if o.MaxVoidLookups == 0 {
		o.MaxVoidLookups = 2
	}
	if o.MaxMXNames == 0 {
		o.MaxMXNames = 10
	}
	if o.MaxPTRNames == 0 {
		o.MaxPTRNames = 10
	}
	if o.Hostname == "" {
		o.Hostname = "unknown"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return c, nil
}

// CheckHost evaluates check_host(ip, domain, sender) with the default
// Options (RFC 7208 §4).
func CheckHost(ctx context.Context, r Resolver, ip netip.Addr, domain, sender string) Result {
	c, err := NewChecker(r, nil)
	if err != nil {
		return Result{Status: PermError, Err: err, IP: ip, Domain: domain, Sender: sender}
	}
	return c.CheckHost(ctx, ip, domain, sender)
}

// CheckHost evaluates check_host(ip, domain, sender) (RFC 7208 §4): ip is
// the SMTP client's address (an IPv4-mapped IPv6 address is taken as IPv4,
// §5), domain the domain to check, sender the "local-part@domain" used by
// the macros (a missing local-part becomes "postmaster", §4.3). %{h}
// expands to "unknown"; use CheckMailFrom or CheckHELO to supply it.
func (c *Checker) CheckHost(ctx context.Context, ip netip.Addr, domain, sender string) Result {
	return c.check(ctx, ip, domain, sender, "", IdentityMailFrom)
}

// CheckMailFrom checks the MAIL FROM identity (RFC 7208 §2.4): domain and
// sender come from the reverse-path mailFrom; when it is null ("" or "<>"),
// the sender is postmaster@helo (§2.4) and helo is the domain checked.
func (c *Checker) CheckMailFrom(ctx context.Context, ip netip.Addr, mailFrom, helo string) Result {
	mailFrom = strings.TrimSuffix(strings.TrimPrefix(mailFrom, "<"), ">")
	if mailFrom == "" {
		r := c.check(ctx, ip, helo, "postmaster@"+helo, helo, IdentityMailFrom)
		return r
	}
	domain := mailFrom
	if i := strings.LastIndexByte(mailFrom, '@'); i >= 0 {
		domain = mailFrom[i+1:]
	} else {
		mailFrom = "postmaster@" + mailFrom
	}
	return c.check(ctx, ip, domain, mailFrom, helo, IdentityMailFrom)
}

// CheckHELO checks the HELO identity (RFC 7208 §2.3): the domain is helo
// and the sender postmaster@helo.
func (c *Checker) CheckHELO(ctx context.Context, ip netip.Addr, helo string) Result {
	return c.check(ctx, ip, helo, "postmaster@"+helo, helo, IdentityHELO)
}

func (c *Checker) check(ctx context.Context, ip netip.Addr, domain, sender, helo string, id Identity) Result {
	var start time.Time
	if c.opts.Logger != nil {
		start = time.Now()
	}
	ip = ip.Unmap()
	e := &eval{c: c, ctx: ctx, ip: ip, sender: sender, helo: helo}
	e.trace = make(Trace, 0, 96)
	e.stack = e.stackBuf[:0]
	if sender == "" {
		sender = "postmaster@" + domain
	}
	at := strings.LastIndexByte(sender, '@')
	if at >= 0 {
		e.local, e.senderDomain = sender[:at], sender[at+1:]
	} else {
		e.senderDomain = sender
	}
	if e.local == "" {
		// RFC 7208 §4.3: no local-part means "postmaster".
		e.local = "postmaster"
		sender = "postmaster@" + e.senderDomain
		e.sender = sender
	}
	domain = strings.TrimSuffix(domain, ".")
	res := Result{Domain: domain, Sender: sender, HELO: helo, IP: ip, Identity: id}
	var out outcome
	if !ip.IsValid() {
		out = outcome{status: PermError, err: errors.New("spf: invalid IP address")}
	} else if !validDomain(domain) {
		// RFC 7208 §4.3: a malformed or single-label domain gives none.
		out = outcome{status: None}
		e.step(Step{Kind: StepRecord, Domain: domain, Note: "not a valid domain name"})
	} else {
		out = e.checkHost(fqdn(domain), 0, true)
	}
	res.Status, res.Err = out.status, out.err
	if out.mech != nil {
		res.Mechanism = out.mech.text()
		res.MatchedDomain = out.domain
	}
	res.Explanation = out.exp
	res.DNSTerms, res.VoidLookups = e.terms, e.voids
	res.Trace = e.trace
	if l := c.opts.Logger; l != nil {
		l.LogAttrs(ctx, slog.LevelDebug, "spf check_host",
			slog.String("ip", ip.String()), slog.String("domain", domain),
			slog.String("sender", sender), slog.String("result", string(res.Status)),
			slog.String("mechanism", res.Mechanism), slog.Any("err", res.Err),
			slog.Int("dns_terms", e.terms), slog.Duration("took", time.Since(start)))
	}
	return res
}

// validDomain reports whether d is a multi-label domain name of valid
// labels ending in a top-level label (RFC 7208 §4.3, §7.1).
func validDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if len(d) > 253 || d == "" {
		return false
	}
	labels := 0
	start := 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			continue
		}
		if l := i - start; l == 0 || l > 63 {
			return false
		}
		labels++
		start = i + 1
	}
	return labels > 1 && isTopLabel(d[strings.LastIndexByte(d, '.')+1:])
}

type outcome struct {
	status Status
	err    error
	mech   *Term
	domain string
	exp    string
}

type eval struct {
	c                   *Checker
	ctx                 context.Context
	ip                  netip.Addr
	sender, local, helo string
	senderDomain        string
	terms, voids        int
	trace               Trace
	stack               []string // domains being evaluated, for loops
	stackBuf            [12]string
	depth               int

	ipDots   string   // %{i}
	ptrNames []string // PTR answer, looked up once
	ptrDone  bool
	ptrErr   error
	valid    map[string]bool // validated PTR names
	inExp    bool            // computing an explanation
}

func (e *eval) step(s Step) {
	s.Depth = e.depth
	if e.inExp && s.Kind == StepLookup {
		s.Note = NoteExplanation
	}
	e.trace = append(e.trace, s)
}

func permErr(err error) outcome { return outcome{status: PermError, err: err} }

// checkHost is check_host() for one domain, given as an absolute name
// (RFC 7208 §4.4 to §4.7). wantExp is false inside include, whose exp is
// never used (§6.2).
func (e *eval) checkHost(name string, depth int, wantExp bool) outcome {
	domain := name[:len(name)-1]
	for _, d := range e.stack {
		if strings.EqualFold(d, name) {
			return permErr(fmt.Errorf("%w: %s", ErrLoop, domain))
		}
	}
	e.stack = append(e.stack, name)
	defer func() { e.stack = e.stack[:len(e.stack)-1] }()
	saved := e.depth
	e.depth = depth
	defer func() { e.depth = saved }()

	rec, out, ok := e.record(name)
	if !ok {
		return out
	}
	for i := range rec.Terms {
		t := &rec.Terms[i]
		if t.IsModifier() {
			continue
		}
		if t.LooksUpDNS() {
			if o, ok := e.countTerm(); !ok {
				return o
			}
		}
		match, o, ok := e.match(t, name, depth)
		if !ok {
			e.step(Step{Kind: StepTerm, Domain: domain, Text: t.text(), Err: o.err})
			return o
		}
		if !match {
			e.step(Step{Kind: StepTerm, Domain: domain, Text: t.text(), Note: "no match"})
			continue
		}
		e.step(Step{Kind: StepTerm, Domain: domain, Text: t.text(), Note: "match"})
		out := outcome{status: t.Qualifier.Status(), mech: t, domain: domain}
		if out.status == Fail && wantExp && rec.Exp != nil {
			out.exp = e.explain(rec.Exp, name)
		}
		e.step(Step{Kind: StepResult, Domain: domain, Text: string(out.status)})
		return out
	}
	if t := rec.Redirect; t != nil {
		// RFC 7208 §6.1: redirect applies when no mechanism matched (an
		// "all" always matches, so it never gets here).
		if o, ok := e.countTerm(); !ok {
			return o
		}
		target := e.target(t, name)
		e.step(Step{Kind: StepTerm, Domain: domain, Text: t.text()})
		if !validDomain(target) {
			return permErr(fmt.Errorf("%w: redirect to invalid domain %q", ErrSyntax, target))
		}
		out := e.checkHost(target, depth+1, wantExp)
		if out.status == None {
			return permErr(fmt.Errorf("%w: redirect target %s", ErrNoRecord, target))
		}
		return out
	}
	e.step(Step{Kind: StepResult, Domain: domain, Text: string(Neutral), Note: "no mechanism matched"})
	return outcome{status: Neutral}
}

func (e *eval) countTerm() (outcome, bool) {
	e.terms++
	if e.terms > e.c.opts.MaxDNSTerms {
		return permErr(fmt.Errorf("%w: more than %d DNS-querying terms", ErrTooManyLookups, e.c.opts.MaxDNSTerms)), false
	}
	return outcome{}, true
}

// void counts a void lookup (RFC 7208 §4.6.4).
func (e *eval) void() (outcome, bool) {
	e.voids++
	if e.voids > e.c.opts.MaxVoidLookups {
		return permErr(fmt.Errorf("%w: more than %d void lookups", ErrTooManyLookups, e.c.opts.MaxVoidLookups)), false
	}
	return outcome{}, true
}

// record looks up and selects the SPF record of name (RFC 7208 §4.4,
// §4.5) and parses it.
func (e *eval) record(name string) (*Record, outcome, bool) {
	domain := name[:len(name)-1]
	txts, err := e.c.r.LookupTXT(e.ctx, name)
	e.step(Step{Kind: StepLookup, Domain: domain, Query: "TXT", Text: domain, Err: err, N: len(txts)})
	if err != nil {
		if isNotFound(err) {
			return nil, outcome{status: None}, false
		}
		return nil, outcome{status: TempError, err: fmt.Errorf("%w: TXT %s: %v", ErrDNS, domain, err)}, false
	}
	var found string
	n := 0
	for _, t := range txts {
		if IsSPF(t) {
			found = t
			n++
		}
	}
	switch n {
	case 0:
		e.step(Step{Kind: StepRecord, Domain: domain, Note: "no SPF record"})
		return nil, outcome{status: None}, false
	case 1:
	default:
		e.step(Step{Kind: StepRecord, Domain: domain, Err: ErrMultipleRecords})
		return nil, permErr(fmt.Errorf("%w at %s", ErrMultipleRecords, domain)), false
	}
	e.step(Step{Kind: StepRecord, Domain: domain, Text: found})
	rec, err := e.c.parse(found)
	if err != nil {
		return nil, permErr(fmt.Errorf("%w (in the record of %s)", err, domain)), false
	}
	return rec, outcome{}, true
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// target is the expanded domain-spec of t as an absolute name, or name
// (the current domain) when t has none (RFC 7208 §4.8).
func (e *eval) target(t *Term, name string) string {
	switch {
	case t.Domain == "":
		return name
	case t.macro == nil:
		return t.fqdn
	}
	return fqdn(truncateDomain(t.macro.expand(e, name[:len(name)-1])))
}

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
	e.step(Step{Kind: StepLookup, Query: "TXT", Text: target[:len(target)-1], Note: NoteExplanation, Err: err, N: len(txts)})
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
