package dmarc

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/msgauth"
)

// spfEntry is one SPF entry of an Authentication-Results field (RFC 8601
// §2.7.2).
type spfEntry struct {
	result, mailfrom, helo string
}

// readInputs collects the SPF and DKIM results among the entries of
// results, as Evaluate documents: *authres.SPFResult, *authres.DKIMResult
// and *authres.GenericResult with the method "spf" or "dkim"; every other
// entry is ignored.
func readInputs(results []msgauth.Result) AuthResults {
	var in AuthResults
	var spfs []spfEntry
	for _, r := range results {
		if r == nil {
			continue
		}
		for _, e := range r.AuthResults() {
			switch e := e.(type) {
			case *authres.SPFResult:
				if e != nil {
					spfs = append(spfs, spfEntry{string(e.Value), e.From, e.Helo})
				}
			case *authres.DKIMResult:
				if e != nil {
					in.DKIM = appendDKIM(in.DKIM, string(e.Value), e.Domain, "")
				}
			case *authres.GenericResult:
				if e == nil {
					continue
				}
				switch strings.ToLower(e.Method) {
				case "spf":
					spfs = append(spfs, spfEntry{string(e.Value), e.Params["smtp.mailfrom"], e.Params["smtp.helo"]})
				case "dkim":
					in.DKIM = appendDKIM(in.DKIM, string(e.Value), e.Params["header.d"], e.Params["header.s"])
				}
			}
		}
	}
	if s, ok := chooseSPF(spfs); ok {
		in.SPF = []SPFAuthResult{s}
	}
	return in
}

// appendDKIM adds a DKIM result that names a signing domain (d=, RFC 6376
// §3.5); one without (dkim=none: no signature) has nothing to align.
func appendDKIM(out []DKIMAuthResult, result, domain, selector string) []DKIMAuthResult {
	d := normalizeDomain(domain)
	if d == "" {
		return out
	}
	return append(out, DKIMAuthResult{Domain: d, Selector: strings.TrimSpace(selector), Result: strings.ToLower(strings.TrimSpace(result))})
}

// chooseSPF picks the SPF result DMARC uses (RFC 7489 §4.1, RFC 9989
// §4.4): the first whose smtp.mailfrom has a domain, the RFC5321.MailFrom
// domain; without one (a null reverse-path, "<>"), the first with smtp.helo, the HELO
// identity checked for a null reverse-path (RFC 7208 §2.4); without
// either, the first, with no domain.
func chooseSPF(spfs []spfEntry) (SPFAuthResult, bool) {
	if len(spfs) == 0 {
		return SPFAuthResult{}, false
	}
	result := func(s spfEntry) string { return strings.ToLower(strings.TrimSpace(s.result)) }
	for _, s := range spfs {
		if d := mailFromDomain(s.mailfrom); d != "" {
			return SPFAuthResult{Domain: d, Scope: "mfrom", Result: result(s)}, true
		}
	}
	for _, s := range spfs {
		if d := normalizeDomain(s.helo); d != "" {
			return SPFAuthResult{Domain: d, Scope: "helo", Result: result(s)}, true
		}
	}
	return SPFAuthResult{Scope: "mfrom", Result: result(spfs[0])}, true
}

// mailFromDomain returns the domain of an smtp.mailfrom value (RFC 8601
// §2.7.2): what follows the last '@' of an address or of "@domain", or
// the whole value when it has no '@'.
func mailFromDomain(v string) string {
	v = strings.Trim(strings.TrimSpace(v), "<>")
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		v = v[i+1:]
	}
	return normalizeDomain(v)
}
