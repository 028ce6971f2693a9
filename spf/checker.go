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

	"github.com/smarthost-go/smarthost/internal/dnsname"
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

// CheckHost evaluates check_host(ip, domain, sender) (RFC 7208 §4), as
// Checker.CheckHost does, with net.DefaultResolver and the default
// Options, for a one-off check. A program that checks many messages, or
// needs another resolver or other limits, makes one Checker with
// NewChecker and keeps it: it also keeps the records it has parsed.
func CheckHost(ctx context.Context, ip netip.Addr, domain, sender string) *Result {
	c, err := NewChecker(net.DefaultResolver, nil)
	if err != nil {
		// Not reached: a resolver and no options are always accepted.
		return &Result{Status: PermError, Err: err, IP: ip, Domain: domain, Sender: sender}
	}
	return c.CheckHost(ctx, ip, domain, sender)
}

// CheckHost evaluates check_host(ip, domain, sender) (RFC 7208 §4): ip is
// the SMTP client's address (an IPv4-mapped IPv6 address is taken as IPv4,
// §5), domain the domain to check, sender the "local-part@domain" used by
// the macros (a missing local-part becomes "postmaster", §4.3). %{h}
// expands to "unknown"; use CheckMailFrom or CheckHELO to supply it.
func (c *Checker) CheckHost(ctx context.Context, ip netip.Addr, domain, sender string) *Result {
	return c.check(ctx, ip, domain, sender, "", IdentityMailFrom)
}

// CheckMailFrom checks the MAIL FROM identity (RFC 7208 §2.4): domain and
// sender come from the reverse-path mailFrom; when it is null ("" or "<>"),
// the sender is postmaster@helo (§2.4) and helo is the domain checked.
func (c *Checker) CheckMailFrom(ctx context.Context, ip netip.Addr, mailFrom, helo string) *Result {
	mailFrom = strings.TrimSuffix(strings.TrimPrefix(mailFrom, "<"), ">")
	if mailFrom == "" {
		return c.check(ctx, ip, helo, "postmaster@"+helo, helo, IdentityMailFrom)
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
func (c *Checker) CheckHELO(ctx context.Context, ip netip.Addr, helo string) *Result {
	return c.check(ctx, ip, helo, "postmaster@"+helo, helo, IdentityHELO)
}

func (c *Checker) check(ctx context.Context, ip netip.Addr, domain, sender, helo string, id Identity) *Result {
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
	}
	e.sender = sender
	domain = strings.TrimSuffix(domain, ".")
	res := &Result{Domain: domain, Sender: sender, HELO: helo, IP: ip, Identity: id}
	var out outcome
	if !ip.IsValid() {
		out = outcome{status: PermError, err: errors.New("spf: invalid IP address")}
	} else if !validDomain(domain) {
		// RFC 7208 §4.3: a malformed or single-label domain gives none.
		out = outcome{status: None, err: fmt.Errorf("%w: %q is not a valid domain name", ErrNoRecord, domain)}
		e.step(Step{Kind: StepRecord, Domain: domain, Note: "not a valid domain name"})
	} else {
		out = e.checkHost(fqdn(domain), 0, true)
	}
	res.Status, res.Err = out.status, out.err
	if out.mech != nil {
		res.Mechanism = out.mech.text()
		res.MatchedDomain = out.domain
	}
	switch out.status {
	case Fail, SoftFail, Neutral:
		res.Err = &verdictError{status: out.status, domain: domain, ip: ip, mech: res.Mechanism, in: out.domain}
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

// validDomain reports whether d, relative or absolute, is a domain name
// that RFC 7208 §4.3 lets check_host() query: within the lengths of
// RFC 1035 §2.3.4 (dnsname.Check, which any octet may fill), and, as SPF
// adds, of more than one label, the last a toplabel (RFC 7208 §7.1: not
// all digits, so an IP address is not a domain).
func validDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	dot := strings.LastIndexByte(d, '.')
	return dnsname.Check(d) == nil && dot >= 0 && isTopLabel(d[dot+1:])
}
