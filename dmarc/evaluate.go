package dmarc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// Status is the DMARC result, an RFC 8601 result keyword as registered for
// the "dmarc" method (RFC 7489 §11.2).
type Status string

// The statuses.
const (
	// StatusPass: an authenticated identifier aligned with the author domain.
	StatusPass Status = "pass"
	// StatusFail: a policy record applies and no identifier aligned.
	StatusFail Status = "fail"
	// StatusNone: no policy record applies (none published, several, or a
	// record without a usable p= and rua=); DMARC does not apply.
	StatusNone Status = "none"
	// StatusTempError: a DNS lookup failed temporarily.
	StatusTempError Status = "temperror"
	// StatusPermError: the message has no usable RFC5322.From.
	StatusPermError Status = "permerror"
)

// SPFResult is the outcome of SPF (RFC 7208) for the message, as plain
// values.
type SPFResult struct {
	// Domain is the domain SPF checked: the RFC5321.MailFrom domain, or the
	// HELO domain when the reverse-path was null (RFC 7208 §2.4).
	Domain string
	// Result is the RFC 8601 keyword: pass, fail, softfail, neutral, none,
	// temperror, permerror.
	Result authres.ResultValue
	// Scope is "mfrom" (the default, for "") or "helo", for reports.
	Scope string
}

// DKIMResult is the outcome of one DKIM signature (RFC 6376), as plain
// values.
type DKIMResult struct {
	Domain   string              // d=
	Selector string              // s=, for reports
	Result   authres.ResultValue // pass, fail, neutral, policy, temperror, permerror, none
}

// Params are the inputs of Evaluate.
type Params struct {
	// Header is the message header; its From fields are used. A
	// textproto.MIMEHeader converts to it.
	Header mail.Header
	// SPF is the SPF result.
	SPF SPFResult
	// DKIM holds the result of every DKIM signature verified.
	DKIM []DKIMResult
	// SourceIP is the connecting client, recorded by a Reporter.
	SourceIP netip.Addr
}

// HostResolver is a Resolver that can also tell whether a domain exists,
// for the np= tag (RFC 9989 §4.7, Appendix A.4). *net.Resolver satisfies
// it.
type HostResolver interface {
	Resolver
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// Evaluator evaluates messages against DMARC. The zero value is not usable:
// Resolver must be set. An Evaluator is safe for concurrent use when its
// Resolver and Rand are.
type Evaluator struct {
	// Resolver answers the DNS queries. Required.
	Resolver Resolver
	// Rules selects RFC 9989 (the default) or RFC 7489 behaviour; see the
	// package documentation.
	Rules Rules
	// Rand draws the pct= sample under RFC7489 rules (RFC 7489 §6.6.4).
	// Default: crypto/rand.Reader.
	Rand io.Reader
	// MaxAuthorDomains is how many distinct domains a single From field may
	// carry before evaluation gives permerror. RFC 7489 §6.6.1 evaluates
	// each and applies the strictest failing policy; RFC 9989 §11.5 advises
	// a limit. Default 4.
	MaxAuthorDomains int
	// Logger receives one debug record per evaluation. Default: none.
	Logger *slog.Logger
}

// Result is the outcome of Evaluate. Status is always set. Err is nil for
// pass and fail, non-nil for temperror and permerror, and for none says
// why no policy applies (wrapping ErrNoRecord or ErrMultipleRecords).
type Result struct {
	Status Status
	Err    error
	// AuthorDomain is the RFC5322.From domain evaluated; AuthorDomains all
	// of them when the From field held several.
	AuthorDomain  string
	AuthorDomains []string
	// Record is the policy record applied, Domain where it was found
	// (without "_dmarc."), and OrgDomain the author domain's
	// organizational domain.
	Record       *Record
	PolicyDomain string
	OrgDomain    string
	// SPF and DKIM say whether each mechanism gave an aligned pass
	// (StatusPass), a pass that did not align (StatusFail), or no pass at
	// all (StatusNone).
	SPF, DKIM Status
	// SPFDomain is the SPF domain when it aligned; DKIMDomains the d= of
	// every passing signature that aligned.
	SPFDomain   string
	DKIMDomains []string
	// Policy is the policy that applies to the author domain (p=, sp= or
	// np=; "p=none" when p= is missing but rua= present), and PolicyTag
	// names the tag it came from.
	Policy    Policy
	PolicyTag string
	// Disposition is what the owner asks for this message: none on pass;
	// on fail the Policy, one level weaker when sampled out by pct= (RFC
	// 7489) or in test mode t=y (RFC 9989).
	Disposition Policy
	SampledOut  bool
	TestMode    bool
	// Queries counts the DNS queries made.
	Queries int
}

// AuthResult returns the result as an Authentication-Results entry (RFC
// 8601, RFC 7489 §11.2).
func (r *Result) AuthResult() *authres.DMARCResult {
	ar := &authres.DMARCResult{Value: authres.ResultValue(r.Status), From: r.AuthorDomain}
	switch {
	case r.Status == StatusFail:
		ar.Reason = "p=" + string(r.Policy) + " dis=" + string(r.Disposition)
	case r.Err != nil && r.Status != StatusNone:
		ar.Reason = r.Err.Error()
	}
	return ar
}

func (e *Evaluator) maxDomains() int {
	if e.MaxAuthorDomains > 0 {
		return e.MaxAuthorDomains
	}
	return 4
}

// Evaluate applies DMARC to a message (RFC 7489 §6.6, RFC 9989 §5.3): it
// extracts the author domain from the From header field, discovers the
// policy, checks the alignment of the SPF and DKIM passes and gives the
// disposition.
//
// A message with no From field, several From fields, or a From field
// without a well-formed address gets permerror wrapping ErrFrom: DMARC is
// then not possible (RFC 9989 §4.4, §5.3.1), and RFC 7489 §6.6.1 suggests
// rejecting such messages. A From field with several addresses is
// evaluated for each distinct domain, up to MaxAuthorDomains, and the
// strictest failing result is returned (RFC 7489 §6.6.1, RFC 9989 §11.5).
func (e *Evaluator) Evaluate(ctx context.Context, p *Params) *Result {
	var froms []string
	for k, v := range p.Header {
		if strings.EqualFold(k, "From") {
			froms = append(froms, v...)
		}
	}
	var domains []string
	var err error
	switch len(froms) {
	case 0:
		err = fmt.Errorf("%w: the message has no From field", ErrFrom)
	case 1:
		domains, err = FromDomains(froms[0])
	default:
		err = fmt.Errorf("%w: the message has %d From fields", ErrFrom, len(froms))
	}
	if err == nil && len(domains) > e.maxDomains() {
		err = fmt.Errorf("%w: From field with %d domains, more than %d", ErrFrom, len(domains), e.maxDomains())
	}
	if err != nil {
		e.log(ctx, "", StatusPermError, err)
		return &Result{Status: StatusPermError, Err: err, SPF: StatusNone, DKIM: StatusNone, Disposition: PolicyNone}
	}
	if e.Resolver == nil {
		return &Result{Status: StatusTempError, Err: errNoResolver, AuthorDomain: domains[0], AuthorDomains: domains, SPF: StatusNone, DKIM: StatusNone, Disposition: PolicyNone}
	}
	s := newLookupState(e.Resolver)
	var best *Result
	for _, d := range domains {
		r := e.evaluateDomain(ctx, s, d, p)
		if best == nil || rank(r) > rank(best) {
			best = r
		}
	}
	best.AuthorDomains = domains
	best.Queries = s.queries
	e.log(ctx, best.AuthorDomain, best.Status, best.Err)
	return best
}

func (e *Evaluator) log(ctx context.Context, domain string, st Status, err error) {
	if e.Logger != nil {
		e.Logger.DebugContext(ctx, "dmarc evaluate", "domain", domain, "status", string(st), "err", err)
	}
}

// rank orders results of several author domains: the strictest failure
// first (RFC 7489 §6.6.1), then errors, then pass, then none.
func rank(r *Result) int {
	switch r.Status {
	case StatusFail:
		switch r.Disposition {
		case PolicyReject:
			return 7
		case PolicyQuarantine:
			return 6
		}
		return 5
	case StatusTempError:
		return 4
	case StatusPermError:
		return 3
	case StatusPass:
		return 2
	}
	return 1
}

func (e *Evaluator) evaluateDomain(ctx context.Context, s *lookupState, d string, p *Params) *Result {
	r := &Result{AuthorDomain: d, SPF: StatusNone, DKIM: StatusNone, Disposition: PolicyNone}
	disc, err := e.discover(ctx, s, d)
	r.OrgDomain = disc.OrgDomain
	if err != nil {
		r.Err = err
		r.Status = StatusNone
		if errors.Is(err, ErrDNS) {
			r.Status = StatusTempError
		}
		return r
	}
	rec := disc.Record
	r.Record, r.PolicyDomain = rec, disc.Domain

	// RFC 7489 §6.6.3 step 6, RFC 9989 §4.10.1: no valid p=, or an invalid
	// sp= (or np=): p=none if rua= has a valid URI, else no DMARC.
	badPolicy := rec.Policy == "" || rec.invalid("sp") || (e.Rules == RFC9989 && rec.invalid("np"))
	if badPolicy && len(rec.AggregateURIs) == 0 {
		r.Status = StatusNone
		r.Err = fmt.Errorf("%w: the record at _dmarc.%s has no valid p= and no rua=", ErrNoRecord, disc.Domain)
		return r
	}

	// Alignment (RFC 7489 §3.1, RFC 9989 §4.4, §4.10.2).
	aligned := func(mode Alignment, id string) (bool, error) {
		id = normalizeDomain(id)
		if id == "" {
			return false, nil
		}
		if id == d {
			return true, nil
		}
		if mode == Strict {
			return false, nil
		}
		org, err := s.orgDomain(ctx, e.Rules, id)
		if err != nil {
			return false, err
		}
		return org == r.OrgDomain, nil
	}
	if strings.EqualFold(string(p.SPF.Result), "pass") {
		ok, err := aligned(rec.SPFAlignment(), p.SPF.Domain)
		if err != nil {
			r.Status, r.Err = StatusTempError, err
			return r
		}
		r.SPF = StatusFail
		if ok {
			r.SPF, r.SPFDomain = StatusPass, normalizeDomain(p.SPF.Domain)
		}
	}
	for _, k := range p.DKIM {
		if !strings.EqualFold(string(k.Result), "pass") {
			continue
		}
		ok, err := aligned(rec.DKIMAlignment(), k.Domain)
		if err != nil {
			r.Status, r.Err = StatusTempError, err
			return r
		}
		if r.DKIM == StatusNone {
			r.DKIM = StatusFail
		}
		if ok {
			r.DKIM = StatusPass
			r.DKIMDomains = append(r.DKIMDomains, normalizeDomain(k.Domain))
		}
	}

	// The applicable policy (RFC 9989 §4.10.1; RFC 7489 §6.6.3).
	r.Policy, r.PolicyTag = rec.Policy, "p"
	if badPolicy {
		r.Policy, r.PolicyTag = PolicyNone, "p"
	} else if disc.Domain != d {
		if e.Rules == RFC9989 && rec.NonexistentPolicy != "" && !e.exists(ctx, s, d) {
			r.Policy, r.PolicyTag = rec.NonexistentPolicy, "np"
		} else if rec.SubdomainPolicy != "" {
			r.Policy, r.PolicyTag = rec.SubdomainPolicy, "sp"
		}
	}

	if r.SPF == StatusPass || r.DKIM == StatusPass {
		r.Status = StatusPass
		return r
	}
	r.Status = StatusFail
	r.Disposition = r.Policy
	switch e.Rules {
	case RFC7489:
		if pct := rec.Pct(); pct < 100 && e.draw() >= pct {
			r.SampledOut = true
			r.Disposition = r.Disposition.weaker()
		}
	default:
		if rec.Testing {
			r.TestMode = true
			r.Disposition = r.Disposition.weaker()
		}
	}
	return r
}

// draw returns a uniform random number from 0 to 99; a message is in the
// pct= sample when it is below pct (RFC 7489 §6.3: "if (random mod 100) <
// pct then selected"), otherwise the next policy down applies (§6.6.4).
func (e *Evaluator) draw() int {
	src := e.Rand
	if src == nil {
		src = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(src, b[:]); err != nil {
		return 0 // no randomness: apply the policy
	}
	return int(binary.BigEndian.Uint64(b[:]) % 100)
}

// exists reports whether domain exists (RFC 9989 §3.2.13, Appendix A.4): it
// has an A, AAAA, MX or TXT record. Without a HostResolver, or on a DNS
// failure, the domain is taken to exist, so sp= rather than np= applies.
func (e *Evaluator) exists(ctx context.Context, s *lookupState, domain string) bool {
	hr, ok := e.Resolver.(HostResolver)
	if !ok {
		return true
	}
	notFound := func(err error) bool {
		var de *net.DNSError
		return errors.As(err, &de) && de.IsNotFound
	}
	s.queries++
	if addrs, err := hr.LookupNetIP(ctx, "ip", domain); len(addrs) > 0 || !notFound(err) {
		return true
	}
	s.queries++
	if mxs, err := hr.LookupMX(ctx, domain); len(mxs) > 0 || !notFound(err) {
		return true
	}
	s.queries++
	if txts, err := hr.LookupTXT(ctx, domain); len(txts) > 0 || !notFound(err) {
		return true
	}
	return false
}
