package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// outcome is what one record's evaluation gives.
type outcome struct {
	status Status
	err    error
	mech   *Term  // the directive that matched, if any
	domain string // the domain whose record held mech, or ran out of terms
	exp    string // the explanation of a fail
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
		s.Note = noteExplanation
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
	return outcome{status: Neutral, domain: domain}
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
			return nil, outcome{status: None, err: fmt.Errorf("%w at %s", ErrNoRecord, domain)}, false
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
		return nil, outcome{status: None, err: fmt.Errorf("%w at %s", ErrNoRecord, domain)}, false
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

// isNotFound reports a not-found answer (NXDOMAIN or NODATA). A
// *net.AddrError is *net.Resolver's "no suitable address" when a name has
// addresses only of the other family: not found too.
func isNotFound(err error) bool {
	if errors.As(err, new(*net.DNSError)) {
		return dnsname.IsNotFound(err)
	}
	return errors.As(err, new(*net.AddrError))
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
