package dmarc

import (
	"context"
	"fmt"
	"strings"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// ExternalAuthorized performs the check of RFC 7489 §7.1 (RFC 9990 §3): a
// report destination host outside the policy domain's organizational
// domain must agree to receive its reports by publishing a TXT record
// starting with v=DMARC1 at <policyDomain>._report._dmarc.<destHost>. It
// returns whether such a record exists and the first one, parsed, whose
// rua= or ruf= may replace the policy record's (§7.1 step 8). A temporary
// DNS failure gives an error wrapping ErrDNS: the receiver may try again
// later (§7.1 step 4).
func (e *Evaluator) ExternalAuthorized(ctx context.Context, policyDomain, destHost string) (bool, *Record, error) {
	if e.res == nil {
		return false, nil, errNotMade
	}
	name := normalizeDomain(policyDomain) + "._report._dmarc." + normalizeDomain(destHost)
	txts, err := e.res.LookupTXT(ctx, name)
	if err != nil {
		if dnsname.IsNotFound(err) {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("%w: TXT %s: %w", ErrDNS, name, err)
	}
	for _, t := range txts {
		if IsDMARCRecord(t) {
			rec, _ := Parse(t)
			return true, rec, nil
		}
	}
	return false, nil, nil
}

// ReportDestinations returns the URIs of uris (a record's rua= or ruf=) to
// which reports about policyDomain may be sent (RFC 7489 §7.1): those whose
// host has the same organizational domain as the policy domain, and
// external ones whose host authorizes them, replaced by the URIs of the
// authorizing record when it has them for the same host. Only mailto: URIs
// are kept; other schemes are ignored (RFC 9989 §4.7). A temporary DNS
// failure stops with an error wrapping ErrDNS.
func (e *Evaluator) ReportDestinations(ctx context.Context, policyDomain string, uris []URI, aggregate bool) ([]URI, error) {
	if e.res == nil {
		return nil, errNotMade
	}
	s := newLookupState(e.res)
	org, err := s.orgDomain(ctx, e.rules, policyDomain)
	if err != nil {
		return nil, err
	}
	var out []URI
	for _, u := range uris {
		if u.Address() == "" {
			continue
		}
		host := u.Host()
		if host == "" {
			continue
		}
		destOrg, err := s.orgDomain(ctx, e.rules, host)
		if err != nil {
			return out, err
		}
		if destOrg == org {
			out = append(out, u)
			continue
		}
		ok, rec, err := e.ExternalAuthorized(ctx, policyDomain, host)
		if err != nil {
			return out, err
		}
		if !ok {
			continue
		}
		override := rec.FailureURIs
		if aggregate {
			override = rec.AggregateURIs
		}
		var same []URI
		for _, o := range override {
			if o.Address() != "" && strings.EqualFold(o.Host(), host) {
				same = append(same, o)
			}
		}
		if len(same) > 0 {
			out = append(out, same...)
		} else {
			out = append(out, u)
		}
	}
	return out, nil
}
