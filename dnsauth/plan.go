package dnsauth

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// Mode is how a domain hands a smart host the right to send for it.
type Mode string

// The three modes of domain authentication.
const (
	// Delegated ("automated security"): the return-path subdomain and each
	// DKIM selector are CNAMEs into the provider's zone, so the provider
	// publishes, and rotates, the keys and the return path's MX and SPF.
	Delegated Mode = "delegated"
	// SelfHosted: the domain publishes the DKIM keys (TXT) and the return
	// path's MX and SPF itself.
	SelfHosted Mode = "self-hosted"
	// Subdomain: NS records hand one subdomain to the provider, which then
	// serves everything under it; only that subdomain is exposed.
	Subdomain Mode = "subdomain"
)

// ErrRequest is wrapped by the errors of a Request that cannot be planned,
// and of changes that cannot be applied.
var ErrRequest = errors.New("dnsauth: bad request")

// RequestError is the error of a Request that cannot be planned: Field
// names the field of Request at fault. errors.Is(err, ErrRequest) holds, and
// so does errors.Is for the cause, such as spf.ErrSyntax for an existing
// SPF record that does not parse.
type RequestError struct {
	Field string
	Err   error
}

func (e *RequestError) Error() string {
	return ErrRequest.Error() + ": " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns ErrRequest and the cause.
func (e *RequestError) Unwrap() []error { return []error{ErrRequest, e.Err} }

// requestErr makes a RequestError from a formatted message; %w in format
// wraps a cause.
func requestErr(field, format string, args ...any) error {
	return &RequestError{Field: field, Err: fmt.Errorf(format, args...)}
}

// DefaultTTL is the TTL of planned records when the Request gives none.
const DefaultTTL = 3600

// Request describes the domain and the provider to plan records for.
// Names are given without or with the final dot.
type Request struct {
	// Domain is the sending domain, the RFC5322.From domain. Required.
	Domain string `json:"domain"`
	// Mode is the way of authentication. Default Delegated.
	Mode Mode `json:"mode"`
	// ReturnPath is the label (or labels) of the return-path subdomain
	// under Domain, such as "em1234": the envelope sender becomes
	// bounces+<id>@em1234.<Domain>. Required in the delegated and
	// self-hosted modes.
	ReturnPath string `json:"return_path,omitempty"`
	// Selectors are the DKIM selectors, such as "s1" and "s2" (two allow
	// rotation). At least one.
	Selectors []string `json:"selectors"`
	// Target is the provider's host for this domain, such as
	// u1234.wl.provider.net: the return-path CNAME points at it and the
	// DKIM CNAMEs at <selector>.domainkey.<Target>. Required in the
	// delegated mode.
	Target string `json:"target,omitempty"`
	// SPFInclude is the provider's SPF record to include, such as
	// _spf.provider.net (RFC 7208 §5.2). Required.
	SPFInclude string `json:"spf_include"`
	// MX is the provider's host that receives bounces for the return path,
	// the MX of the return-path domain. Required in the self-hosted mode,
	// and for the provider's records of the delegated and subdomain modes.
	MX string `json:"mx,omitempty"`
	// Subdomain is the label (or labels) of the subdomain handed to the
	// provider, such as "mail". Required in the subdomain mode.
	Subdomain string `json:"subdomain,omitempty"`
	// Nameservers are the provider's name servers for the subdomain mode.
	Nameservers []string `json:"nameservers,omitempty"`
	// Keys are the DKIM public keys by selector (an *rsa.PublicKey, an
	// ed25519.PublicKey, or a crypto.Signer). Required for every selector
	// in the self-hosted mode; in the other modes they make the provider's
	// key records.
	Keys map[string]crypto.PublicKey `json:"-"`
	// ExistingSPF are the SPF records the domain publishes today, as TXT
	// lookups return them; nil when there are none or they are not known.
	ExistingSPF []string `json:"existing_spf,omitempty"`
	// ExistingDMARC is the DMARC record published today at _dmarc.<Domain>,
	// "" when there is none.
	ExistingDMARC string `json:"existing_dmarc,omitempty"`
	// ReportURI is the rua= of a new DMARC record. Default
	// mailto:dmarc-reports@<Domain>.
	ReportURI string `json:"report_uri,omitempty"`
	// TTL of the planned records, in seconds. Default DefaultTTL.
	TTL uint32 `json:"ttl,omitempty"`
}

// Plan is the set of DNS records that authenticate a domain for a smart
// host: Records for the domain owner to publish, ProviderRecords for the
// provider (the targets of the CNAMEs, or the delegated subdomain's zone),
// and what the plan found about the domain's SPF and DMARC records.
type Plan struct {
	Request Request `json:"request"`
	// ReturnPathDomain is the envelope sender's domain and DKIMDomain the
	// d= of the customer's signatures.
	ReturnPathDomain string   `json:"return_path_domain"`
	DKIMDomain       string   `json:"dkim_domain"`
	Records          []Record `json:"records"`
	ProviderRecords  []Record `json:"provider_records,omitempty"`
	// SPFLookups is the number of DNS-querying terms of the domain's SPF
	// record after the change, its own terms only (RFC 7208 §4.6.4 allows
	// 10 over the whole evaluation; Lint follows the includes).
	SPFLookups int `json:"spf_lookups"`
	// Warnings are what the owner should know before publishing.
	Warnings []string `json:"warnings,omitempty"`
}

// Plan checks the request and plans its records.
func (req *Request) Plan() (*Plan, error) {
	r, err := req.normalize()
	if err != nil {
		return nil, err
	}
	p := &Plan{Request: r, DKIMDomain: r.Domain}
	rec := func(name, typ, value string, purpose Purpose, sel string) Record {
		return Record{Name: name, Type: typ, Value: value, TTL: r.TTL, Purpose: purpose, Selector: sel}
	}
	switch r.Mode {
	case Delegated:
		p.ReturnPathDomain = r.ReturnPath + "." + r.Domain
		p.Records = append(p.Records, rec(p.ReturnPathDomain, "CNAME", r.Target, PurposeReturnPath, ""))
		for _, s := range r.Selectors {
			p.Records = append(p.Records, rec(dkimName(s, r.Domain), "CNAME", s+".domainkey."+r.Target, PurposeDKIM, s))
		}
		p.ProviderRecords, err = providerRecords(r, r.Target, func(s string) string { return s + ".domainkey." + r.Target })
	case SelfHosted:
		p.ReturnPathDomain = r.ReturnPath + "." + r.Domain
		for _, s := range r.Selectors {
			txt, err := keyText(r, s)
			if err != nil {
				return nil, err
			}
			p.Records = append(p.Records, rec(dkimName(s, r.Domain), "TXT", txt, PurposeDKIM, s))
		}
		p.Records = append(p.Records,
			rec(p.ReturnPathDomain, "MX", "10 "+r.MX, PurposeReturnPath, ""),
			rec(p.ReturnPathDomain, "TXT", "v=spf1 include:"+trimDot(r.SPFInclude)+" -all", PurposeReturnPath, ""))
	case Subdomain:
		sub := r.Subdomain + "." + r.Domain
		p.ReturnPathDomain, p.DKIMDomain = sub, sub
		for _, ns := range r.Nameservers {
			p.Records = append(p.Records, rec(sub, "NS", ns, PurposeDelegation, ""))
		}
		p.ProviderRecords, err = providerRecords(r, sub, func(s string) string { return dkimName(s, sub) })
	}
	if err != nil {
		return nil, err
	}
	spfRec, lookups, warn, err := planSPF(r)
	if err != nil {
		return nil, err
	}
	p.SPFLookups = lookups
	p.Warnings = append(p.Warnings, warn...)
	if spfRec != nil {
		p.Records = append(p.Records, *spfRec)
	}
	dmarcRec, warn, err := planDMARC(r, p.ReturnPathDomain, p.DKIMDomain)
	if err != nil {
		return nil, err
	}
	p.Warnings = append(p.Warnings, warn...)
	if dmarcRec != nil {
		p.Records = append(p.Records, *dmarcRec)
	}
	return p, nil
}

// providerRecords are what the provider serves at host (the return path's
// MX and SPF) and at each selector's key name.
func providerRecords(r Request, host string, keyName func(sel string) string) ([]Record, error) {
	var out []Record
	if r.MX != "" {
		out = append(out, Record{Name: host, Type: "MX", Value: "10 " + r.MX, TTL: r.TTL, Purpose: PurposeReturnPath})
	}
	out = append(out, Record{Name: host, Type: "TXT", Value: "v=spf1 include:" + trimDot(r.SPFInclude) + " -all", TTL: r.TTL, Purpose: PurposeReturnPath})
	for _, s := range r.Selectors {
		if r.Keys[s] == nil {
			continue
		}
		txt, err := keyText(r, s)
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Name: keyName(s), Type: "TXT", Value: txt, TTL: r.TTL, Purpose: PurposeDKIM, Selector: s})
	}
	return out, nil
}

func keyText(r Request, sel string) (string, error) {
	k := r.Keys[sel]
	if k == nil {
		return "", requestErr("Keys", "no key for selector %q", sel)
	}
	txt, err := dkim.KeyRecordText(k, nil)
	if err != nil {
		return "", requestErr("Keys", "key of selector %q: %w", sel, err)
	}
	return txt, nil
}

// dkimName is <selector>._domainkey.<domain> (RFC 6376 §3.6.2.1),
// absolute.
func dkimName(sel, domain string) string { return sel + "._domainkey." + domain }

func trimDot(s string) string { return strings.TrimSuffix(s, ".") }

// normalize checks the request and returns it with every name absolute,
// lower case, and the defaults filled in. Each error names the field.
func (req *Request) normalize() (Request, error) {
	r := *req
	r.Selectors = slices.Clone(req.Selectors)
	r.Nameservers = slices.Clone(req.Nameservers)
	bad := func(field, format string, args ...any) (Request, error) {
		return Request{}, requestErr(field, format, args...)
	}
	if r.Mode == "" {
		r.Mode = Delegated
	}
	if r.TTL == 0 {
		r.TTL = DefaultTTL
	}
	var err error
	if r.Domain, err = hostName(r.Domain, 2); err != nil {
		return bad("Domain", "%v", err)
	}
	if len(r.Selectors) == 0 {
		return bad("Selectors", "at least one DKIM selector is needed")
	}
	for i, s := range r.Selectors {
		if err := checkLabels(s); err != nil {
			return bad("Selectors", "%q: %v", s, err)
		}
		if slices.Contains(r.Selectors[:i], s) {
			return bad("Selectors", "%q given twice", s)
		}
	}
	if r.SPFInclude, err = hostName(r.SPFInclude, 2); err != nil {
		return bad("SPFInclude", "%v", err)
	}
	if r.MX != "" {
		if r.MX, err = hostName(r.MX, 2); err != nil {
			return bad("MX", "%v", err)
		}
	}
	switch r.Mode {
	case Delegated, SelfHosted:
		if err := checkLabels(r.ReturnPath); err != nil {
			return bad("ReturnPath", "%q: %v", r.ReturnPath, err)
		}
		r.ReturnPath = strings.ToLower(r.ReturnPath)
	case Subdomain:
		if err := checkLabels(r.Subdomain); err != nil {
			return bad("Subdomain", "%q: %v", r.Subdomain, err)
		}
		r.Subdomain = strings.ToLower(r.Subdomain)
		if len(r.Nameservers) == 0 {
			return bad("Nameservers", "the subdomain mode needs the provider's name servers")
		}
		for i, ns := range r.Nameservers {
			if r.Nameservers[i], err = hostName(ns, 2); err != nil {
				return bad("Nameservers", "%v", err)
			}
		}
	default:
		return bad("Mode", "%q is not delegated, self-hosted or subdomain", r.Mode)
	}
	switch r.Mode {
	case Delegated:
		if r.Target, err = hostName(r.Target, 2); err != nil {
			return bad("Target", "%v", err)
		}
	case SelfHosted:
		if r.MX == "" {
			return bad("MX", "the self-hosted mode needs the host that receives bounces")
		}
	}
	if r.ReportURI == "" {
		r.ReportURI = "mailto:dmarc-reports@" + trimDot(r.Domain)
	}
	if strings.ContainsAny(r.ReportURI, "; \t\r\n") {
		return bad("ReportURI", "%q holds a separator", r.ReportURI)
	}
	return r, nil
}

// hostName checks a host name (RFC 1123 §2.1 letter-digit-hyphen labels,
// and '_' as service names use) of at least minLabels labels and returns it
// absolute and in lower case.
func hostName(name string, minLabels int) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	if n == "" {
		return "", errors.New("empty name")
	}
	if err := checkLabels(n); err != nil {
		return "", fmt.Errorf("%q: %v", name, err)
	}
	if strings.Count(n, ".")+1 < minLabels {
		return "", fmt.Errorf("%q is not a domain of %d labels or more", name, minLabels)
	}
	return n + ".", nil
}

// checkLabels checks a relative name of one or more labels: the RFC 1035
// §2.3.4 lengths (dnsname.Check), and only letters, digits, '-' and '_' in
// each label, '-' not at the ends.
func checkLabels(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if err := dnsname.Check(s); err != nil {
		return fmt.Errorf("not a valid name: %v", err)
	}
	for _, l := range strings.Split(s, ".") {
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q begins or ends with '-'", l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("label %q holds %q", l, c)
			}
		}
	}
	return nil
}

// planDMARC returns the DMARC record to publish (nil when the existing one
// stays) and the warnings about alignment (RFC 9989 §4.4): a strict aspf=
// fails for a return path on a subdomain, a strict adkim= for signatures of
// a subdomain.
func planDMARC(r Request, returnPath, dkimDomain string) (*Record, []string, error) {
	name := "_dmarc." + r.Domain
	if r.ExistingDMARC == "" {
		v := "v=DMARC1; p=none; rua=" + r.ReportURI
		return &Record{Name: name, Type: "TXT", Value: v, TTL: r.TTL, Purpose: PurposeDMARC}, nil, nil
	}
	rec, err := dmarc.Parse(r.ExistingDMARC)
	if err != nil {
		return nil, nil, requestErr("ExistingDMARC", "%w", err)
	}
	var warn []string
	if rec.SPFAlignment() == dmarc.Strict && returnPath != r.Domain {
		warn = append(warn, fmt.Sprintf("the DMARC record of %s has aspf=s: SPF for the return path %s will not align, so DMARC rests on DKIM alone; remove aspf=s (relaxed is the default)",
			trimDot(r.Domain), trimDot(returnPath)))
	}
	if rec.DKIMAlignment() == dmarc.Strict && dkimDomain != r.Domain {
		warn = append(warn, fmt.Sprintf("the DMARC record of %s has adkim=s: signatures with d=%s will not align; remove adkim=s (relaxed is the default)",
			trimDot(r.Domain), trimDot(dkimDomain)))
	}
	return nil, warn, nil
}
