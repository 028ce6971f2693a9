package dmarc

import (
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/internal/authtext"
	"github.com/smarthost-go/smarthost/msgauth"
)

// Status is the DMARC result, an RFC 8601 result keyword as registered for
// the "dmarc" method (RFC 7489 §11.2). Evaluate gives Pass, Fail, None,
// TempError or PermError, never the "policy" keyword.
type Status = msgauth.Status

// The statuses Evaluate gives; the same names as in every package of this
// module.
const (
	// Pass: an authenticated identifier aligned with the author domain.
	Pass = msgauth.Pass
	// Fail: a policy record applies and no identifier aligned.
	Fail = msgauth.Fail
	// None: no policy record applies (none published, several, or a
	// record without a usable p= and rua=); DMARC does not apply.
	None = msgauth.None
	// TempError: a DNS lookup failed temporarily.
	TempError = msgauth.TempError
	// PermError: the message has no usable RFC5322.From.
	PermError = msgauth.PermError
)

// Result is the outcome of Evaluate. Status is always set.
type Result struct {
	Status Status
	// Err is nil exactly when Status is Pass, and says why otherwise: on
	// fail, which identifiers were tried and why none aligned; on none,
	// why no policy applies (wrapping ErrNoRecord or ErrMultipleRecords);
	// on temperror the DNS failure (wrapping ErrDNS; or that the
	// Evaluator was not made by NewEvaluator); on permerror what is wrong
	// with the From field (wrapping ErrFrom).
	Err error
	// AuthorDomain is the RFC5322.From domain evaluated; AuthorDomains all
	// of them when the From field held several.
	AuthorDomain  string
	AuthorDomains []string
	// Record is the policy record applied, PolicyDomain where it was
	// found (without "_dmarc."), and OrgDomain the author domain's
	// organizational domain.
	Record       *Record
	PolicyDomain string
	OrgDomain    string
	// SPF and DKIM say whether each mechanism gave an aligned pass (Pass),
	// a pass that did not align (Fail), or no pass at all (None).
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
	// Inputs are the SPF and DKIM results Evaluate read from its
	// arguments, as the auth_results of an aggregate report (RFC 7489
	// Appendix C) show them: the one SPF result it used, with the scope
	// "mfrom" or "helo", and every DKIM result that names a d= domain;
	// domains and results lower-cased. A Reporter reports them.
	Inputs AuthResults
	// Queries counts the DNS queries made.
	Queries int
}

// AuthResult returns the result as an Authentication-Results entry (RFC
// 8601, RFC 7489 §11.2), an *authres.DMARCResult: header.from is the
// author domain (left out when it cannot be written as a property value);
// the reason is, on fail, the applicable policy and the disposition
// ("p=reject dis=quarantine: ...") followed by why nothing aligned, and on
// none, temperror and permerror the text of Err.
func (r *Result) AuthResult() authres.Result {
	ar := &authres.DMARCResult{Value: authres.ResultValue(r.Status), From: authtext.Domain(r.AuthorDomain)}
	switch {
	case r.Status == Fail:
		why := ""
		if r.Err != nil {
			why = ": " + strings.TrimPrefix(r.Err.Error(), "dmarc: ")
		}
		ar.Reason = authtext.Text(fmt.Sprintf("p=%s dis=%s%s", r.Policy, r.Disposition, why))
	case r.Err != nil:
		ar.Reason = authtext.Reason(r.Err)
	}
	return ar
}

// A *Result is one of the results msgauth.Format and msgauth.Header take.
var _ msgauth.Result = (*Result)(nil)

// AuthResults returns the one entry of AuthResult, so that a *Result is a
// msgauth.Result for msgauth.Format and msgauth.Header.
func (r *Result) AuthResults() []authres.Result {
	return []authres.Result{r.AuthResult()}
}

// maxListed is how many DKIM results the error of a fail describes.
const maxListed = 4

// notAligned is the error of a fail: what each identifier gave and, for a
// pass, that it did not align with domain (RFC 7489 §3.1, RFC 9989 §4.4).
func notAligned(domain string, rec *Record, in *AuthResults) error {
	var parts []string
	switch {
	case len(in.SPF) == 0:
		parts = append(parts, "no spf pass")
	case in.SPF[0].Result == "pass":
		parts = append(parts, "spf pass"+forDomain(in.SPF[0].Domain)+" not aligned"+strictNote("aspf", rec.SPFAlignment()))
	default:
		parts = append(parts, "spf "+orNone(in.SPF[0].Result)+forDomain(in.SPF[0].Domain))
	}
	if len(in.DKIM) == 0 {
		parts = append(parts, "no dkim pass")
	}
	for i, k := range in.DKIM {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("%d more dkim results", len(in.DKIM)-maxListed))
			break
		}
		if k.Result == "pass" {
			parts = append(parts, "dkim pass"+forDomain(k.Domain)+" not aligned"+strictNote("adkim", rec.DKIMAlignment()))
		} else {
			parts = append(parts, "dkim "+orNone(k.Result)+forDomain(k.Domain))
		}
	}
	return fmt.Errorf("dmarc: no aligned pass for %s: %s", domain, strings.Join(parts, ", "))
}

func forDomain(d string) string {
	if d == "" {
		return ""
	}
	return " for " + d
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func strictNote(tag string, a Alignment) string {
	if a == Strict {
		return " (" + tag + "=s)"
	}
	return ""
}
