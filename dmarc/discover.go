package dmarc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// Rules selects which specification governs discovery and evaluation.
type Rules int

const (
	// RFC9989 (the default): policy discovery and organizational domains
	// by the DNS Tree Walk (RFC 9989 §4.10), psd=, np= and t= honoured,
	// pct=, rf= and ri= ignored.
	RFC9989 Rules = iota
	// RFC7489: organizational domains from the public suffix list (RFC
	// 7489 §3.2, golang.org/x/net/publicsuffix), discovery at the author
	// domain then its organizational domain (§6.6.3), pct= sampling; np=,
	// psd= and t= are unknown tags.
	RFC7489
)

func (r Rules) String() string {
	if r == RFC7489 {
		return "RFC 7489"
	}
	return "RFC 9989"
}

// maxTreeWalkQueries is the most DNS queries one DNS Tree Walk makes (RFC
// 9989 §4.10).
const maxTreeWalkQueries = 8

// normalizeDomain lower-cases a domain and strips the dots at its ends (so
// ".mac.com." is "mac.com", as OpenDMARC's alignment tests expect).
func normalizeDomain(d string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(d), "."))
}

// labelCount counts the labels of a normalized domain.
func labelCount(d string) int {
	if d == "" {
		return 0
	}
	return strings.Count(d, ".") + 1
}

// lastLabels returns the n right-most labels of d.
func lastLabels(d string, n int) string {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] == '.' {
			n--
			if n == 0 {
				return d[i+1:]
			}
		}
	}
	return d
}

// treeWalkTargets returns the names whose _dmarc records a DNS Tree Walk
// starting at domain queries, in order (RFC 9989 §4.10 steps 3, 4 and 7):
// the domain, then, if it has 8 or more labels, its 7 right-most labels,
// then one label fewer at a time down to the top-level domain. There are at
// most maxTreeWalkQueries names.
func treeWalkTargets(domain string) []string {
	d := normalizeDomain(domain)
	x := labelCount(d)
	if x == 0 {
		return nil
	}
	out := []string{d}
	next := x - 1
	if x >= maxTreeWalkQueries {
		next = maxTreeWalkQueries - 1
	}
	for n := next; n >= 1; n-- {
		out = append(out, lastLabels(d, n))
	}
	return out
}

// found is a valid DMARC record found at a domain.
type found struct {
	domain string
	record *Record
}

// lookupState caches _dmarc answers for one evaluation, so the tree walks
// of the author domain and the identifiers share queries.
type lookupState struct {
	res     Resolver
	cache   map[string]lookupAnswer
	queries int
}

type lookupAnswer struct {
	rec *Record
	err error // ErrNoRecord, ErrMultipleRecords or an ErrDNS error
}

func newLookupState(res Resolver) *lookupState {
	return &lookupState{res: res, cache: map[string]lookupAnswer{}}
}

// lookup asks for the DMARC record at _dmarc.domain. Records that do not
// start with v=DMARC1 are discarded; several remaining records are all
// discarded (RFC 7489 §6.6.3, RFC 9989 §4.10 step 2).
func (s *lookupState) lookup(ctx context.Context, domain string) (*Record, error) {
	if a, ok := s.cache[domain]; ok {
		return a.rec, a.err
	}
	s.queries++
	name := "_dmarc." + domain
	txts, err := s.res.LookupTXT(ctx, name)
	var a lookupAnswer
	switch {
	case err == nil:
	case dnsname.IsNotFound(err):
		txts = nil
	default:
		a.err = fmt.Errorf("%w: TXT %s: %w", ErrDNS, name, err)
	}
	if a.err == nil {
		var recs []string
		for _, t := range txts {
			if IsDMARCRecord(t) {
				recs = append(recs, t)
			}
		}
		switch len(recs) {
		case 0:
			a.err = ErrNoRecord
		case 1:
			a.rec, _ = Parse(recs[0])
		default:
			a.err = fmt.Errorf("%w at %s", ErrMultipleRecords, name)
		}
	}
	s.cache[domain] = a
	return a.rec, a.err
}

// walk performs a DNS Tree Walk from domain (RFC 9989 §4.10). It returns
// the valid records found, longest name first. It stops at a record with
// psd=y or psd=n. A DNS failure stops the walk with an ErrDNS error.
func (s *lookupState) walk(ctx context.Context, domain string) ([]found, error) {
	var out []found
	for _, t := range treeWalkTargets(domain) {
		rec, err := s.lookup(ctx, t)
		if errors.Is(err, ErrDNS) {
			return out, err
		}
		if rec == nil {
			continue
		}
		out = append(out, found{t, rec})
		if rec.PSD == 'y' || rec.PSD == 'n' {
			break
		}
	}
	return out, nil
}

// selectOrg applies the selection of RFC 9989 §4.10.2 to the records found
// by a tree walk that started at start.
func selectOrg(start string, fs []found) string {
	for _, f := range fs {
		if f.record.PSD == 'n' {
			return f.domain
		}
		if f.record.PSD == 'y' && f.domain != start {
			return lastLabels(start, labelCount(f.domain)+1)
		}
	}
	if len(fs) > 0 {
		return fs[len(fs)-1].domain
	}
	return start
}

// orgDomain returns the organizational domain of domain under the rules.
func (s *lookupState) orgDomain(ctx context.Context, rules Rules, domain string) (string, error) {
	d := normalizeDomain(domain)
	if rules == RFC7489 {
		return publicSuffixOrgDomain(d), nil
	}
	fs, err := s.walk(ctx, d)
	if err != nil {
		return "", err
	}
	return selectOrg(d, fs), nil
}

// publicSuffixOrgDomain returns the organizational domain of domain by the
// public suffix list (RFC 7489 §3.2): the public suffix plus one label. A
// domain that is itself a public suffix is its own organizational domain.
func publicSuffixOrgDomain(domain string) string {
	d := normalizeDomain(domain)
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// Discovery is the outcome of policy discovery for an author domain.
type Discovery struct {
	// AuthorDomain is the domain looked up, normalized.
	AuthorDomain string
	// Record is the policy record that applies, nil if none.
	Record *Record
	// Domain is where Record was found (without "_dmarc.").
	Domain string
	// OrgDomain is the organizational domain of the author domain.
	OrgDomain string
	// Queries is the number of DNS queries made.
	Queries int
}

// Lookup discovers the DMARC policy record that applies to an author domain
// (RFC 9989 §4.10.1 or RFC 7489 §6.6.3, by Options.Rules). The error
// wraps ErrNoRecord when no record applies, ErrMultipleRecords when RFC
// 7489 discovery stops at several records, and ErrDNS on a DNS failure.
func (e *Evaluator) Lookup(ctx context.Context, authorDomain string) (*Discovery, error) {
	if e.res == nil {
		return &Discovery{AuthorDomain: normalizeDomain(authorDomain)}, errNotMade
	}
	s := newLookupState(e.res)
	d, err := e.discover(ctx, s, normalizeDomain(authorDomain))
	if e.logger != nil {
		e.logger.DebugContext(ctx, "dmarc lookup", "domain", d.AuthorDomain, "found_at", d.Domain, "org_domain", d.OrgDomain, "queries", d.Queries, "err", err)
	}
	return d, err
}

func (e *Evaluator) discover(ctx context.Context, s *lookupState, d string) (*Discovery, error) {
	disc := &Discovery{AuthorDomain: d}
	defer func() { disc.Queries = s.queries }()
	if d == "" {
		return disc, fmt.Errorf("%w: empty domain", ErrSyntax)
	}
	if e.rules == RFC7489 {
		disc.OrgDomain = publicSuffixOrgDomain(d)
		rec, err := s.lookup(ctx, d)
		if errors.Is(err, ErrNoRecord) && disc.OrgDomain != d {
			// §6.6.3 step 3: only when the set at the author domain is empty.
			rec, err = s.lookup(ctx, disc.OrgDomain)
			disc.Domain = disc.OrgDomain
		} else {
			disc.Domain = d
		}
		if err != nil {
			disc.Domain = ""
			return disc, err
		}
		disc.Record = rec
		return disc, nil
	}
	// RFC 9989 §4.10.1: the author domain first, then the tree walk.
	fs, err := s.walk(ctx, d)
	if err != nil {
		return disc, err
	}
	disc.OrgDomain = selectOrg(d, fs)
	if len(fs) == 0 {
		return disc, ErrNoRecord
	}
	if fs[0].domain == d {
		disc.Record, disc.Domain = fs[0].record, d
		return disc, nil
	}
	// The organizational domain's record, else the public suffix domain's.
	for _, f := range fs {
		if f.domain == disc.OrgDomain {
			disc.Record, disc.Domain = f.record, f.domain
			return disc, nil
		}
	}
	last := fs[len(fs)-1]
	disc.Record, disc.Domain = last.record, last.domain
	return disc, nil
}

// OrganizationalDomain returns the organizational domain of domain under
// Options.Rules: by DNS Tree Walk (RFC 9989 §4.10.2) or by the public
// suffix list (RFC 7489 §3.2). The error wraps ErrDNS.
func (e *Evaluator) OrganizationalDomain(ctx context.Context, domain string) (string, error) {
	if e.res == nil {
		return "", errNotMade
	}
	return newLookupState(e.res).orgDomain(ctx, e.rules, domain)
}

// Aligned reports whether an authenticated identifier (an SPF domain or a
// DKIM d=) is aligned with an author domain in the given mode (RFC 7489
// §3.1, RFC 9989 §4.4): identical under strict alignment, the same
// organizational domain under relaxed alignment. Names compare without
// regard to case and to leading or trailing dots.
func (e *Evaluator) Aligned(ctx context.Context, mode Alignment, authorDomain, identifier string) (bool, error) {
	a, id := normalizeDomain(authorDomain), normalizeDomain(identifier)
	if a == "" || id == "" {
		return false, nil
	}
	if a == id {
		return true, nil
	}
	if mode == Strict {
		return false, nil
	}
	if e.res == nil {
		return false, errNotMade
	}
	s := newLookupState(e.res)
	oa, err := s.orgDomain(ctx, e.rules, a)
	if err != nil {
		return false, err
	}
	oi, err := s.orgDomain(ctx, e.rules, id)
	if err != nil {
		return false, err
	}
	return oa == oi, nil
}
