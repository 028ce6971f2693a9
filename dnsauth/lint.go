package dnsauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
)

// Severity grades a Finding.
type Severity string

// The severities of a Finding, gravest first.
const (
	// SeverityError: receivers fail or ignore the record, or a check that
	// mail depends on (SPF, DKIM, DMARC, reverse DNS) cannot pass.
	SeverityError Severity = "error"
	// SeverityWarning: the record works, but is weaker or riskier than it
	// should be, or a check could not be made.
	SeverityWarning Severity = "warning"
	// SeverityInfo: worth knowing; nothing to fix.
	SeverityInfo Severity = "info"
)

// rank orders severities: a greater rank is graver.
func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 3
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// The checks a Finding may come from.
const (
	LintSPF   = "spf"   // RFC 7208
	LintDMARC = "dmarc" // RFC 9989, RFC 7489
	LintDKIM  = "dkim"  // RFC 6376, RFC 8301, RFC 8463
	LintIPRev = "iprev" // forward-confirmed reverse DNS, RFC 8601 §3
)

// Finding is one thing Lint found about a record. The JSON field names are
// stable.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check is LintSPF, LintDMARC, LintDKIM or LintIPRev.
	Check string `json:"check"`
	// Code names the kind of finding, stable for programs: "spf-lookups",
	// "dmarc-p-none", "dkim-revoked" and so on.
	Code string `json:"code"`
	// Name, Type and Text are the record concerned: its owner name
	// (absolute), its type ("TXT", "PTR", "A" ...) and its data as a lookup
	// returns it (TXT strings joined); Text is "" for a record that is
	// missing, and holds every record, one per line, when the finding is
	// about several.
	Name string `json:"name"`
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
	// Problem says what is wrong, with the RFC section.
	Problem string `json:"problem"`
	// Fix is a change a person can make.
	Fix string `json:"fix"`
}

// LintOptions selects what Lint checks beyond the domain's SPF and DMARC
// records. A nil *LintOptions checks those two only.
type LintOptions struct {
	// Selectors are the DKIM selectors whose key records are checked, at
	// <selector>._domainkey.<domain> (RFC 6376 §3.6.2.1). Default none:
	// selectors cannot be discovered from the DNS.
	Selectors []string
	// IP is an address the domain's mail is sent from, whose reverse DNS
	// is checked to be forward-confirmed (RFC 8601 §3 iprev, RFC 1912
	// §2.1). Default: the zero Addr, no check.
	IP netip.Addr
}

// LintReport is what Lint found about a domain. The JSON field names are
// stable.
type LintReport struct {
	// Domain is the domain checked, absolute and in lower case.
	Domain string `json:"domain"`
	// Findings are in the order of the checks (SPF, DMARC, DKIM by
	// selector, iprev), each check's in the order found.
	Findings []Finding `json:"findings"`
	// SPF is the analysis of the domain's SPF record; nil when the domain
	// has not exactly one, it does not parse, or the lookup failed.
	SPF *SPFReport `json:"spf,omitempty"`
	// IPRev is the reverse DNS of LintOptions.IP; nil when not asked or
	// when the PTR lookup failed temporarily.
	IPRev *IPRevReport `json:"iprev,omitempty"`
}

// IPRevReport is the forward-confirmed reverse DNS of an address (RFC 8601
// §3): the names of its PTR records, and those among them that have the
// address among their own (A for IPv4, AAAA for IPv6).
type IPRevReport struct {
	IP        netip.Addr `json:"ip"`
	Names     []string   `json:"names"`
	Confirmed []string   `json:"confirmed"`
}

// Pass reports whether at least one PTR name is confirmed.
func (r *IPRevReport) Pass() bool { return len(r.Confirmed) > 0 }

// Worst returns the gravest severity among the findings, "" when there are
// none.
func (r *LintReport) Worst() Severity {
	var w Severity
	for _, f := range r.Findings {
		if f.Severity.rank() > w.rank() {
			w = f.Severity
		}
	}
	return w
}

// Count returns the number of findings of severity s.
func (r *LintReport) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Lint checks the domain authentication records of domain and says what
// is wrong with each, and how to fix it:
//
//   - SPF (RFC 7208): the record is there and alone (§4.5) and parses; the
//     DNS-querying terms over the whole evaluation, following include and
//     redirect, against the limit of 10, with the cost of each term
//     (§4.6.4); void lookups against the limit of 2 (§4.6.4); ptr (§5.5);
//     +all and ?all; include loops; the size of the answer (§3.4). Over 10
//     lookups, SPFReport.Flattened proposes the record rewritten without
//     them (see SPFFlattening).
//   - DMARC (RFC 9989, RFC 7489): the record at _dmarc.<domain>, or the one
//     that applies to it from its organizational domain; every problem of
//     dmarc.Check; p=none, pct= under 100, no rua=, sp= weaker than p=,
//     t=y.
//   - DKIM, for each of opts.Selectors: the key record (through CNAMEs) is
//     there, alone and parses (RFC 6376 §3.6.1, §3.6.2.2); revoked,
//     testing, unknown key type; RSA keys under 1024 bits (an error, RFC
//     8301 §3.2) or 2048 (a warning); h= without sha256 (RFC 8301 §3.1).
//   - iprev, for opts.IP: its PTR names, and whether each has the address
//     back among its A or AAAA records (RFC 8601 §3, RFC 1912 §2.1).
//
// The SPF lookup count is that of an evaluation in which no mechanism
// matches, the most a receiver can make. A lookup that fails temporarily
// becomes a warning that the check could not be made, not an error of
// Lint; Lint fails only for a domain that is not a valid name, a selector
// that is not one, or the end of ctx. The checks run concurrently through
// r's cache.
func (r *Resolver) Lint(ctx context.Context, domain string, opts *LintOptions) (*LintReport, error) {
	var o LintOptions
	if opts != nil {
		o = *opts
	}
	abs, err := dnsname.Absolute(domain)
	if err != nil || strings.Trim(abs, ".") == "" {
		if err == nil {
			err = fmt.Errorf("the root is not a mail domain")
		}
		return nil, fmt.Errorf("dnsauth: lint: %w", dnsname.Invalid(domain, err))
	}
	abs = strings.ToLower(abs)
	for _, s := range o.Selectors {
		if err := checkLabels(s); err != nil {
			return nil, fmt.Errorf("dnsauth: lint: selector %q: %v", s, err)
		}
		if _, err := dnsname.Absolute(dkimName(s, abs)); err != nil {
			return nil, fmt.Errorf("dnsauth: lint: selector %q: %w", s, dnsname.Invalid(dkimName(s, abs), err))
		}
	}
	l := &linter{r: r, domain: abs}
	rep := &LintReport{Domain: abs}
	parts := make([][]Finding, 3+len(o.Selectors))
	var wg sync.WaitGroup
	wg.Go(func() { rep.SPF, parts[0] = l.spf(ctx) })
	wg.Go(func() { parts[1] = l.dmarc(ctx) })
	for i, s := range o.Selectors {
		wg.Go(func() { parts[2+i] = l.dkim(ctx, s) })
	}
	if o.IP.IsValid() {
		wg.Go(func() { rep.IPRev, parts[len(parts)-1] = l.iprev(ctx, o.IP) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dnsauth: lint %s: %w", trimDot(abs), err)
	}
	rep.Findings = []Finding{}
	for _, p := range parts {
		rep.Findings = append(rep.Findings, p...)
	}
	r.log.DebugContext(ctx, "lint", "domain", abs, "findings", len(rep.Findings),
		"errors", rep.Count(SeverityError), "warnings", rep.Count(SeverityWarning))
	return rep, nil
}

// linter holds what the checks of one Lint share.
type linter struct {
	r      *Resolver
	domain string // absolute, lower case
}

// txt looks up the TXT records of name: their texts, the answer (nil when
// there is none) and the error, nil also for not found.
func (l *linter) txt(ctx context.Context, name string) ([]string, *Answer, error) {
	a, err := l.r.Lookup(ctx, name, dns.TypeTXT)
	if dnsname.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return dnsrr.TXTs(a.Records), a, nil
}

// answerTTL is the TTL of an answer as published: the least TTL of its
// records and of the CNAMEs on the way to them. Answer.TTL, capped by the
// resolver's MaxTTL, serves only when a CNAME was followed.
func answerTTL(a *Answer) uint32 {
	ttl := uint32(0)
	for i, rr := range a.Records {
		if t := rr.Header().Ttl; i == 0 || t < ttl {
			ttl = t
		}
	}
	if !dnsname.Equal(a.Name, a.Canonical) {
		ttl = min(ttl, uint32(a.TTL/time.Second))
	}
	return ttl
}

// dnsFinding is the warning for a check that a temporary DNS failure
// prevented.
func dnsFinding(check, name, typ, what string, err error) Finding {
	return Finding{Severity: SeverityWarning, Check: check, Code: check + "-dns", Name: name, Type: typ,
		Problem: fmt.Sprintf("%s could not be checked: the %s lookup failed: %v", what, typ, err),
		Fix:     "check that every authoritative server of the zone answers, then run the check again"}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// JSON returns the report as indented JSON with the field names of its
// tags.
func (r *LintReport) JSON() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}

// WriteTable writes the report for a person to read in a terminal: the
// findings, each with its record, problem and fix; the SPF lookups by
// term and the flattened record proposed; the reverse DNS of the address.
func (r *LintReport) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("lint of %s: %s, %s, %s\n", trimDot(r.Domain), plural(r.Count(SeverityError), "error", "errors"),
		plural(r.Count(SeverityWarning), "warning", "warnings"), strconv.Itoa(r.Count(SeverityInfo))+" info")
	for _, f := range r.Findings {
		ew.printf("\n%-8s %-6s %s %s\n", f.Severity, f.Check, f.Name, f.Type)
		for t := range strings.SplitSeq(f.Text, "\n") {
			if t != "" {
				ew.printf("         record:  %s\n", strconv.Quote(t))
			}
		}
		ew.printf("         problem: %s\n         fix:     %s\n", f.Problem, f.Fix)
	}
	if s := r.SPF; s != nil {
		ew.printf("\nSPF lookups of %s: %d of %d, void lookups %d of %d\n", trimDot(r.Domain), s.Lookups, spfMaxLookups, s.VoidLookups, spfMaxVoids)
		tw := tabwriter.NewWriter(ew, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TERM\tLOOKUPS\tNOTE")
		writeTerms(tw, s.Terms, "")
		tw.Flush()
		if fl := s.Flattened; fl != nil {
			ew.printf("\nflattened SPF record proposed (%s", plural(fl.Lookups, "lookup", "lookups"))
			if fl.TTL > 0 {
				ew.printf("; make it again at least every %s", secs(fl.TTL))
			}
			ew.printf("):\n")
			for _, rec := range fl.Records {
				ew.printf("%s\n", rec)
			}
			for _, k := range fl.Kept {
				ew.printf("kept: %s\n", k)
			}
		}
	}
	if ip := r.IPRev; ip != nil {
		ew.printf("\nreverse DNS of %s:", ip.IP)
		if len(ip.Names) == 0 {
			ew.printf(" no PTR record")
		}
		for _, n := range ip.Names {
			state := "not confirmed"
			if slices.Contains(ip.Confirmed, n) {
				state = "confirmed"
			}
			ew.printf(" %s (%s)", n, state)
		}
		ew.printf("\n")
	}
	return ew.err
}

func writeTerms(tw io.Writer, terms []SPFTerm, indent string) {
	for _, t := range terms {
		fmt.Fprintf(tw, "%s%s\t%d\t%s\n", indent, t.Term, t.Lookups, t.Note)
		writeTerms(tw, t.Terms, indent+"  ")
	}
}

// errWriter keeps the first error of its writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
