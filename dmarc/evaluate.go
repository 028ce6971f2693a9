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

	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/msgauth"
)

// HostResolver is a Resolver that can also tell whether a domain exists,
// for the np= tag (RFC 9989 §4.7, Appendix A.4). *net.Resolver satisfies
// it.
type HostResolver interface {
	Resolver
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// Options configure an Evaluator. A nil *Options, like the zero value,
// means every default.
type Options struct {
	// Rules selects the specification followed: RFC9989 (the default,
	// RFC 9989 §4.10 DNS Tree Walk) or RFC7489 (RFC 7489 §3.2 public
	// suffix list and §6.3 pct=); see the package documentation.
	Rules Rules
	// Rand draws the pct= sample under RFC7489 rules (RFC 7489 §6.6.4).
	// Default: crypto/rand.Reader.
	Rand io.Reader
	// MaxAuthorDomains is how many distinct domains a single From field may
	// carry before evaluation gives permerror. RFC 7489 §6.6.1 evaluates
	// each and applies the strictest failing policy; RFC 9989 §11.5 advises
	// a limit. Default (0): 4.
	MaxAuthorDomains int
	// Logger receives one debug record per evaluation and per lookup.
	// Default (nil): nothing is logged.
	Logger *slog.Logger
}

// Evaluator evaluates messages against DMARC. Make one with NewEvaluator;
// it is safe for concurrent use when its Resolver and Options.Rand are.
type Evaluator struct {
	res        Resolver
	rules      Rules
	rand       io.Reader
	maxDomains int
	logger     *slog.Logger
}

// NewEvaluator returns an Evaluator that asks r for DNS records (a
// HostResolver, such as *net.Resolver, also gives np= its meaning). It
// fails when r is nil or an option is out of range.
func NewEvaluator(r Resolver, opts *Options) (*Evaluator, error) {
	if r == nil {
		return nil, errors.New("dmarc: NewEvaluator: nil Resolver")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Rules != RFC9989 && o.Rules != RFC7489 {
		return nil, fmt.Errorf("dmarc: NewEvaluator: unknown Rules %d", int(o.Rules))
	}
	if o.MaxAuthorDomains < 0 {
		return nil, fmt.Errorf("dmarc: NewEvaluator: negative MaxAuthorDomains %d", o.MaxAuthorDomains)
	}
	e := &Evaluator{res: r, rules: o.Rules, rand: o.Rand, maxDomains: o.MaxAuthorDomains, logger: o.Logger}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.maxDomains == 0 {
		e.maxDomains = 4
	}
	return e, nil
}

// errNotMade is the error of an Evaluator that NewEvaluator did not make,
// which has no Resolver.
var errNotMade = errors.New("dmarc: the Evaluator has no Resolver; make it with NewEvaluator")

// Evaluate is Evaluator.Evaluate with net.DefaultResolver and the default
// Options, for one-off use.
func Evaluate(ctx context.Context, header mail.Header, results ...msgauth.Result) *Result {
	e, _ := NewEvaluator(net.DefaultResolver, nil)
	return e.Evaluate(ctx, header, results...)
}

// Evaluate applies DMARC to a message (RFC 7489 §6.6, RFC 9989 §5.3): it
// extracts the author domain from the From field of header (a
// textproto.MIMEHeader converts to a mail.Header), discovers the policy,
// checks the alignment of the SPF and DKIM passes in results and gives the
// disposition.
//
// The SPF and DKIM results are read from the Authentication-Results
// entries (RFC 8601) that results give, as OpenDMARC reads the
// Authentication-Results fields that upstream filters add: the results of
// this module's spf and dkim packages can be passed as they are, and
// msgauth.Entries wraps entries from elsewhere (authres.Parse of a field
// written by a trusted host, for instance). SPF entries are
// *authres.SPFResult and *authres.GenericResult with the method "spf"
// (properties smtp.mailfrom and smtp.helo); the SPF domain is the domain
// of smtp.mailfrom (after its last '@', or the whole value when it has
// none) of the first entry that has one, else the smtp.helo domain
// (scope "helo", RFC 7208 §2.4). DKIM entries are *authres.DKIMResult
// (its Domain) and *authres.GenericResult with the method "dkim"
// (header.d, and header.s for reports); an entry without a d= domain is
// left out. Entries of other methods are ignored. What was read is in
// Result.Inputs, results other than pass too, though only a pass can
// align.
//
// A message with no From field, several From fields, or a From field
// without a well-formed address gets permerror wrapping ErrFrom: DMARC is
// then not possible (RFC 9989 §4.4, §5.3.1), and RFC 7489 §6.6.1 suggests
// rejecting such messages. A From field with several addresses is
// evaluated for each distinct domain, up to Options.MaxAuthorDomains, and
// the strictest failing result is returned (RFC 7489 §6.6.1, RFC 9989
// §11.5).
//
// A record without a valid p=, or with an invalid sp= (or, under RFC 9989
// rules, np=), is read as p=none when its rua= holds a valid URI, so that
// reports flow, and is no policy at all otherwise (RFC 7489 §6.6.3 step 6,
// RFC 9989 §4.10.1).
func (e *Evaluator) Evaluate(ctx context.Context, header mail.Header, results ...msgauth.Result) *Result {
	in := readInputs(results)
	if e.res == nil {
		return &Result{Status: TempError, Err: errNotMade, SPF: None, DKIM: None, Disposition: PolicyNone, Inputs: in}
	}
	domains, err := e.authorDomains(header)
	if err != nil {
		e.log(ctx, "", PermError, err)
		return &Result{Status: PermError, Err: err, SPF: None, DKIM: None, Disposition: PolicyNone, Inputs: in}
	}
	s := newLookupState(e.res)
	var best *Result
	for _, d := range domains {
		r := e.evaluateDomain(ctx, s, d, &in)
		if best == nil || rank(r) > rank(best) {
			best = r
		}
	}
	best.AuthorDomains = domains
	best.Inputs = in
	best.Queries = s.queries
	e.log(ctx, best.AuthorDomain, best.Status, best.Err)
	return best
}

// authorDomains returns the domains of the one From field of header (RFC
// 7489 §6.6.1, RFC 9989 §5.3.1), or an error wrapping ErrFrom.
func (e *Evaluator) authorDomains(header mail.Header) ([]string, error) {
	var froms []string
	for k, v := range header {
		if strings.EqualFold(k, "From") {
			froms = append(froms, v...)
		}
	}
	switch len(froms) {
	case 0:
		return nil, fmt.Errorf("%w: the message has no From field", ErrFrom)
	case 1:
	default:
		return nil, fmt.Errorf("%w: the message has %d From fields", ErrFrom, len(froms))
	}
	domains, err := fromDomains(froms[0])
	if err != nil {
		return nil, err
	}
	if len(domains) > e.maxDomains {
		return nil, fmt.Errorf("%w: From field with %d domains, more than %d", ErrFrom, len(domains), e.maxDomains)
	}
	return domains, nil
}

func (e *Evaluator) log(ctx context.Context, domain string, st Status, err error) {
	if e.logger != nil {
		e.logger.DebugContext(ctx, "dmarc evaluate", "domain", domain, "status", string(st), "err", err)
	}
}

// rank orders results of several author domains: the strictest failure
// first (RFC 7489 §6.6.1), then errors, then pass, then none.
func rank(r *Result) int {
	switch r.Status {
	case Fail:
		switch r.Disposition {
		case PolicyReject:
			return 7
		case PolicyQuarantine:
			return 6
		}
		return 5
	case TempError:
		return 4
	case PermError:
		return 3
	case Pass:
		return 2
	}
	return 1
}

// evaluateDomain evaluates the message for one author domain d: policy
// discovery, alignment of the inputs, the applicable policy and the
// disposition.
func (e *Evaluator) evaluateDomain(ctx context.Context, s *lookupState, d string, in *AuthResults) *Result {
	r := &Result{AuthorDomain: d, SPF: None, DKIM: None, Disposition: PolicyNone}
	disc, err := e.discover(ctx, s, d)
	r.OrgDomain = disc.OrgDomain
	if err != nil {
		r.Status, r.Err = None, err
		if errors.Is(err, ErrDNS) {
			r.Status = TempError
		}
		return r
	}
	rec := disc.Record
	r.Record, r.PolicyDomain = rec, disc.Domain

	// RFC 7489 §6.6.3 step 6, RFC 9989 §4.10.1: no valid p=, or an invalid
	// sp= (or np=): p=none if rua= has a valid URI, else no DMARC.
	badPolicy := rec.Policy == "" || rec.invalid("sp") || (e.rules == RFC9989 && rec.invalid("np"))
	if badPolicy && len(rec.AggregateURIs) == 0 {
		r.Status = None
		r.Err = fmt.Errorf("%w: the record at _dmarc.%s has no valid p= and no rua=", ErrNoRecord, disc.Domain)
		return r
	}
	if err := e.align(ctx, s, r, in); err != nil {
		r.Status, r.Err = TempError, err
		return r
	}
	r.Policy, r.PolicyTag = PolicyNone, "p"
	if !badPolicy {
		r.Policy, r.PolicyTag = e.applicablePolicy(ctx, s, rec, disc.Domain, d)
	}
	if r.SPF == Pass || r.DKIM == Pass {
		r.Status = Pass
		return r
	}
	r.Status, r.Err = Fail, notAligned(d, rec, in)
	e.dispose(r)
	return r
}

// align checks the SPF and DKIM passes of in against the author domain of
// r under the alignment modes of r.Record (RFC 7489 §3.1, RFC 9989 §4.4,
// §4.10.2) and sets r.SPF, r.SPFDomain, r.DKIM and r.DKIMDomains. The
// error, from finding an organizational domain, wraps ErrDNS.
func (e *Evaluator) align(ctx context.Context, s *lookupState, r *Result, in *AuthResults) error {
	for _, spf := range in.SPF {
		if spf.Result != "pass" {
			continue
		}
		ok, err := e.aligned(ctx, s, r.Record.SPFAlignment(), r.AuthorDomain, r.OrgDomain, spf.Domain)
		if err != nil {
			return err
		}
		r.SPF = Fail
		if ok {
			r.SPF, r.SPFDomain = Pass, spf.Domain
		}
	}
	for _, k := range in.DKIM {
		if k.Result != "pass" {
			continue
		}
		ok, err := e.aligned(ctx, s, r.Record.DKIMAlignment(), r.AuthorDomain, r.OrgDomain, k.Domain)
		if err != nil {
			return err
		}
		if r.DKIM == None {
			r.DKIM = Fail
		}
		if ok {
			r.DKIM = Pass
			r.DKIMDomains = append(r.DKIMDomains, k.Domain)
		}
	}
	return nil
}

// aligned reports whether the identifier id is aligned in mode with the
// author domain, whose organizational domain is org: the same name, or
// under relaxed alignment the same organizational domain.
func (e *Evaluator) aligned(ctx context.Context, s *lookupState, mode Alignment, author, org, id string) (bool, error) {
	id = normalizeDomain(id)
	switch {
	case id == "":
		return false, nil
	case id == author:
		return true, nil
	case mode == Strict:
		return false, nil
	}
	idOrg, err := s.orgDomain(ctx, e.rules, id)
	if err != nil {
		return false, err
	}
	return idOrg == org, nil
}

// applicablePolicy returns the policy of rec, found at policyDomain, for
// the author domain d and the tag it comes from (RFC 9989 §4.10.1; RFC
// 7489 §6.6.3): p= at the author domain itself; at a subdomain np= when
// the domain does not exist (RFC 9989 only), else sp=, else p=.
func (e *Evaluator) applicablePolicy(ctx context.Context, s *lookupState, rec *Record, policyDomain, d string) (Policy, string) {
	if policyDomain == d {
		return rec.Policy, "p"
	}
	if e.rules == RFC9989 && rec.NonexistentPolicy != "" && !e.exists(ctx, s, d) {
		return rec.NonexistentPolicy, "np"
	}
	if rec.SubdomainPolicy != "" {
		return rec.SubdomainPolicy, "sp"
	}
	return rec.Policy, "p"
}

// dispose sets the disposition of a fail: the policy, one level weaker
// when pct= samples the message out (RFC 7489 §6.6.4) or t=y asks for
// testing (RFC 9989 §4.7).
func (e *Evaluator) dispose(r *Result) {
	r.Disposition = r.Policy
	switch e.rules {
	case RFC7489:
		if pct := r.Record.Pct(); pct < 100 && e.draw() >= pct {
			r.SampledOut = true
			r.Disposition = r.Disposition.weaker()
		}
	default:
		if r.Record.Testing {
			r.TestMode = true
			r.Disposition = r.Disposition.weaker()
		}
	}
}

// draw returns a uniform random number from 0 to 99; a message is in the
// pct= sample when it is below pct (RFC 7489 §6.3: "if (random mod 100) <
// pct then selected"), otherwise the next policy down applies (§6.6.4).
func (e *Evaluator) draw() int {
	var b [8]byte
	if _, err := io.ReadFull(e.rand, b[:]); err != nil {
		return 0 // no randomness: apply the policy
	}
	return int(binary.BigEndian.Uint64(b[:]) % 100)
}

// exists reports whether domain exists (RFC 9989 §3.2.13, Appendix A.4): it
// has an A, AAAA, MX or TXT record. Without a HostResolver, or on a DNS
// failure, the domain is taken to exist, so sp= rather than np= applies.
func (e *Evaluator) exists(ctx context.Context, s *lookupState, domain string) bool {
	hr, ok := e.res.(HostResolver)
	if !ok {
		return true
	}
	s.queries++
	if addrs, err := hr.LookupNetIP(ctx, "ip", domain); len(addrs) > 0 || !dnsname.IsNotFound(err) {
		return true
	}
	s.queries++
	if mxs, err := hr.LookupMX(ctx, domain); len(mxs) > 0 || !dnsname.IsNotFound(err) {
		return true
	}
	s.queries++
	if txts, err := hr.LookupTXT(ctx, domain); len(txts) > 0 || !dnsname.IsNotFound(err) {
		return true
	}
	return false
}
