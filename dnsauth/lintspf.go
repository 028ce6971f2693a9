package dnsauth

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
	"github.com/smarthost-go/smarthost/spf"
)

// The limits of RFC 7208 that Lint checks.
const (
	spfMaxLookups = 10  // DNS-querying terms over an evaluation, §4.6.4
	spfMaxVoids   = 2   // void lookups, §4.6.4
	spfMaxMXNames = 10  // names of one mx mechanism, §4.6.4
	spfMaxAnswer  = 450 // the name and the text of the TXT records, §3.4
	// lintMaxLookups stops the walk of a record whose includes go on and
	// on: beyond it, include and redirect are counted but not followed.
	lintMaxLookups = 100
)

// SPFReport is Lint's analysis of a domain's SPF record. The JSON field
// names are stable.
type SPFReport struct {
	// Record is the record's text and TTL its TTL, in seconds.
	Record string `json:"record"`
	TTL    uint32 `json:"ttl"`
	// Lookups counts the DNS-querying terms (include, a, mx, ptr, exists,
	// redirect) over the whole evaluation, the included records' terms
	// with them (RFC 7208 §4.6.4: at most 10). A record whose walk was
	// cut short (more than 100) has at least this many.
	Lookups int `json:"lookups"`
	// VoidLookups counts the terms whose lookup found nothing, NXDOMAIN
	// or no record of the type asked: an a with no address of either
	// family, an mx without MX records, an include or redirect target
	// without TXT records, an exists without an address (RFC 7208
	// §4.6.4: at most 2).
	VoidLookups int `json:"void_lookups"`
	// Terms are the record's terms with the lookups each costs.
	Terms []SPFTerm `json:"terms"`
	// Flattened is a record that costs fewer lookups, proposed when the
	// record costs more than 10; nil otherwise.
	Flattened *SPFFlattening `json:"flattened,omitempty"`
}

// SPFTerm is one term of an SPF record and the DNS lookups it costs.
type SPFTerm struct {
	// Term is the term as written.
	Term string `json:"term"`
	// Lookups are those of the term (1 for include, a, mx, ptr, exists
	// and redirect; 0 for the others) and, for include and redirect,
	// those of the terms of the record it leads to.
	Lookups int `json:"lookups"`
	// Void is set when the term's lookup found nothing.
	Void bool `json:"void,omitempty"`
	// Note says what else Lint found: not followed, a loop, no record ...
	Note string `json:"note,omitempty"`
	// Target is, for include and redirect, the domain whose record was
	// followed, and Record that record.
	Target string `json:"target,omitempty"`
	Record string `json:"record,omitempty"`
	// Terms are the terms of Record.
	Terms []SPFTerm `json:"terms,omitempty"`
}

// spfRec is an SPF record met on the walk.
type spfRec struct {
	domain string // absolute, lower case
	text   string
	rec    *spf.Record
	ttl    uint32
	nodes  []*spfNode // one per rec.Terms
}

// spfNode is one term of an spfRec, with what its lookups found.
type spfNode struct {
	term *spf.Term
	cost int // the term's lookups and those of rec's terms
	void bool
	note string
	// ignored is set for a redirect beside an all (RFC 7208 §6.1).
	ignored bool
	// rec is the record an include or redirect leads to; nil when there
	// is none, it does not parse, or it was not followed.
	rec *spfRec
	// addrs are the addresses of an a, or of the names of an mx, and ttl
	// the least TTL of the answers that gave them.
	addrs []netip.Addr
	ttl   minTTL
	// fixed says why the term cannot be replaced by the networks it
	// stands for; "" when it can.
	fixed string
}

// spfWalk follows a record through its includes and redirects.
type spfWalk struct {
	l        *linter
	ctx      context.Context
	findings []Finding
	lookups  int
	voids    int
	cut      bool     // lintMaxLookups was reached
	stack    []string // the domains being walked, for loops
}

func (w *spfWalk) add(sev Severity, code string, r *spfRec, problem, fix string) {
	w.findings = append(w.findings, Finding{Severity: sev, Check: LintSPF, Code: code,
		Name: r.domain, Type: "TXT", Text: r.text, Problem: problem, Fix: fix})
}

// spf checks the domain's SPF record.
func (l *linter) spf(ctx context.Context) (*SPFReport, []Finding) {
	top, txts, findings := l.spfRecord(ctx)
	if top == nil {
		return nil, findings
	}
	d := trimDot(l.domain)
	w := &spfWalk{l: l, ctx: ctx, stack: []string{l.domain}}
	w.walk(top)
	rep := &SPFReport{Record: top.text, TTL: top.ttl, Lookups: w.lookups, VoidLookups: w.voids, Terms: breakdown(top)}
	w.checkAll(top)
	if size := answerSize(l.domain, txts); size > spfMaxAnswer {
		w.add(SeverityWarning, "spf-size", top,
			fmt.Sprintf("the name and the TXT records of %s take %d octets, over the %d that RFC 7208 §3.4 advises: the answer may not fit a UDP packet, and receivers that cannot use TCP give temperror", d, size, spfMaxAnswer),
			"shorten the record: remove what no longer sends, replace a list of ip4 terms by the networks that hold them, or move a part to an included record")
	}
	if w.voids > spfMaxVoids {
		w.add(SeverityError, "spf-void-limit", top,
			fmt.Sprintf("the evaluation makes %d void lookups, over the limit of %d: receivers that keep it give permerror (RFC 7208 §4.6.4)", w.voids, spfMaxVoids),
			"remove the terms whose names have no records (each is named in its own finding)")
	}
	if w.lookups > spfMaxLookups {
		at := ""
		if w.cut {
			at = "at least "
		}
		var parts []string
		for _, t := range rep.Terms {
			if t.Lookups > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", t.Term, t.Lookups))
			}
		}
		fix := "remove the includes of services that no longer send for the domain"
		rep.Flattened = w.flatten(top, txts)
		if f := rep.Flattened; f != nil && f.Lookups > spfMaxLookups {
			fix = fmt.Sprintf("the flattened record that the report proposes still makes %d lookups, because of the terms it keeps: remove the includes of services that no longer send for the domain, or replace the kept terms by the networks they stand for", f.Lookups)
		} else if f != nil {
			fix = fmt.Sprintf("publish the flattened record that the report proposes (%s instead of %s%d)", plural(f.Lookups, "lookup", "lookups"), at, w.lookups)
			if f.TTL > 0 {
				fix += fmt.Sprintf(" and make it again at least every %s, the least TTL of the data it copies", secs(f.TTL))
			}
			fix += "; or remove the includes of services that no longer send for the domain"
		}
		w.add(SeverityError, "spf-lookups", top,
			fmt.Sprintf("the evaluation makes %s%d DNS-querying terms, over the limit of %d: receivers give permerror (RFC 7208 §4.6.4); by term: %s", at, w.lookups, spfMaxLookups, strings.Join(parts, ", ")),
			fix)
	}
	return rep, w.findings
}

// spfRecord finds and parses the domain's SPF record; it returns it with
// all the TXT records of the domain, or nil and why.
func (l *linter) spfRecord(ctx context.Context) (*spfRec, []string, []Finding) {
	txts, a, err := l.txt(ctx, l.domain)
	if err != nil {
		return nil, nil, []Finding{dnsFinding(LintSPF, l.domain, "TXT", "the SPF record", err)}
	}
	var spfs []string
	for _, t := range txts {
		if spf.IsSPF(t) {
			spfs = append(spfs, t)
		}
	}
	d := trimDot(l.domain)
	switch len(spfs) {
	case 0:
		return nil, nil, []Finding{{Severity: SeverityError, Check: LintSPF, Code: "spf-none", Name: l.domain, Type: "TXT",
			Problem: fmt.Sprintf("%s publishes no SPF record: receivers get the result none for every message (RFC 7208 §4.5), and many refuse or mark unauthenticated mail", d),
			Fix:     fmt.Sprintf(`publish one TXT record at %s naming every host and service that sends its mail, such as "v=spf1 include:<your provider's SPF domain> -all"`, d)}}
	case 1:
	default:
		return nil, nil, []Finding{{Severity: SeverityError, Check: LintSPF, Code: "spf-multiple", Name: l.domain, Type: "TXT", Text: strings.Join(spfs, "\n"),
			Problem: fmt.Sprintf("%s publishes %d SPF records: every check gives permerror (RFC 7208 §4.5)", d, len(spfs)),
			Fix:     "merge the terms of all of them into one record (one v=spf1, one all at the end) and delete the others"}}
	}
	top := &spfRec{domain: l.domain, text: spfs[0], ttl: answerTTL(a)}
	top.rec, err = spf.Parse(spfs[0])
	if err != nil {
		return nil, nil, []Finding{{Severity: SeverityError, Check: LintSPF, Code: "spf-syntax", Name: l.domain, Type: "TXT", Text: spfs[0],
			Problem: fmt.Sprintf("the SPF record does not parse: %v; every check gives permerror (RFC 7208 §4.6)", err),
			Fix:     "correct the term named, following the grammar of RFC 7208 §12"}}
	}
	return top, txts, nil
}

// walk examines the terms of r, following include and redirect.
func (w *spfWalk) walk(r *spfRec) {
	hasAll := slices.ContainsFunc(r.rec.Terms, func(t spf.Term) bool { return t.Mechanism == spf.MechAll })
	for i := range r.rec.Terms {
		t := &r.rec.Terms[i]
		n := &spfNode{term: t}
		r.nodes = append(r.nodes, n)
		if t.Modifier == spf.ModRedirect && hasAll {
			n.ignored, n.note, n.fixed = true, "ignored: the record has an all mechanism (RFC 7208 §6.1)", "ignored"
			w.add(SeverityWarning, "spf-redirect-ignored", r,
				fmt.Sprintf("%s is never used, because the record has an all mechanism (RFC 7208 §6.1)", t),
				fmt.Sprintf("remove %s, or remove the all mechanism if the redirect is meant", t))
			continue
		}
		if !t.LooksUpDNS() {
			continue
		}
		n.cost = 1
		w.lookups++
		target := r.domain
		if t.Domain != "" {
			target = strings.ToLower(dns.Fqdn(t.Domain))
		}
		switch {
		case t.Mechanism == spf.MechPTR:
			n.note = "looks up the PTR records of each client"
			n.fixed = "ptr depends on each client address"
			w.add(SeverityWarning, "spf-ptr", r,
				fmt.Sprintf("%s is slow and unreliable and RFC 7208 §5.5 says it SHOULD NOT be used; some receivers skip it", t),
				"replace it by ip4 and ip6 terms naming the networks of the hosts it was meant to allow")
		case strings.Contains(t.Domain, "%"):
			n.note = "holds a macro: its lookups depend on each message and were not made"
			n.fixed = "it holds a macro, which each message expands differently"
		case t.Mechanism == spf.MechExists:
			n.fixed = "exists can only be evaluated for each message"
			_, err := w.addrs(n, target, dns.TypeA)
			w.lookupDone(r, n, err)
		case t.Mechanism == spf.MechA:
			w.lookupDone(r, n, w.lookupA(n, target))
		case t.Mechanism == spf.MechMX:
			w.lookupDone(r, n, w.lookupMX(r, n, target))
		default: // include, redirect
			w.follow(r, n, target)
		}
	}
}

// lookupDone records the outcome of a term's own lookup: void, or a
// temporary failure.
func (w *spfWalk) lookupDone(r *spfRec, n *spfNode, err error) {
	switch {
	case err == nil:
	case dnsname.IsNotFound(err):
		n.void, n.note = true, "void lookup: nothing found"
		w.voids++
		what := "no address"
		switch {
		case n.term.Mechanism == spf.MechMX:
			what = "no MX record"
		case n.term.Mechanism == spf.MechInclude || n.term.Modifier == spf.ModRedirect:
			what = "no TXT record"
		}
		w.add(SeverityWarning, "spf-void", r,
			fmt.Sprintf("%s finds %s: a void lookup; receivers stop at the third (RFC 7208 §4.6.4)", n.term, what),
			fmt.Sprintf("remove %s, or publish the records it looks for", n.term))
	default:
		n.note = "the lookup failed: " + err.Error()
		if n.fixed == "" {
			n.fixed = "its lookup failed"
		}
		w.findings = append(w.findings, dnsFinding(LintSPF, r.domain, "TXT", n.term.String()+" in the SPF record of "+trimDot(r.domain), err))
	}
}

// addrs looks up the addresses of type qtype (A or AAAA) of name for n.
func (w *spfWalk) addrs(n *spfNode, name string, qtype uint16) ([]netip.Addr, error) {
	a, err := w.l.r.Lookup(w.ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	addrs := dnsrr.Addrs(a.Records)
	slices.SortFunc(addrs, netip.Addr.Compare)
	n.ttl.see(answerTTL(a))
	return addrs, nil
}

// lookupA finds the addresses of an a mechanism: void when neither family
// has any.
func (w *spfWalk) lookupA(n *spfNode, name string) error {
	var found bool
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		addrs, err := w.addrs(n, name, qt)
		if err != nil && !dnsname.IsNotFound(err) {
			return err
		}
		found = found || err == nil
		n.addrs = append(n.addrs, addrs...)
	}
	if !found {
		return dnsname.NotFound(name, "")
	}
	return nil
}

// lookupMX finds the MX names of an mx mechanism and their addresses.
func (w *spfWalk) lookupMX(r *spfRec, n *spfNode, name string) error {
	a, err := w.l.r.Lookup(w.ctx, name, dns.TypeMX)
	if err != nil {
		return err
	}
	n.ttl.see(answerTTL(a))
	mxs := dnsrr.MXs(a.Records)
	slices.SortStableFunc(mxs, func(x, y *net.MX) int {
		return cmp.Or(cmp.Compare(x.Pref, y.Pref), strings.Compare(strings.ToLower(x.Host), strings.ToLower(y.Host)))
	})
	var hosts []string
	for _, mx := range mxs {
		if mx.Host != "." && mx.Host != "" && !slices.Contains(hosts, strings.ToLower(mx.Host)) {
			hosts = append(hosts, strings.ToLower(mx.Host)) // "." is a null MX (RFC 7505)
		}
	}
	if len(hosts) > spfMaxMXNames {
		n.note = fmt.Sprintf("%d MX names, over %d", len(hosts), spfMaxMXNames)
		n.fixed = "it has more MX names than receivers accept"
		w.add(SeverityError, "spf-mx-names", r,
			fmt.Sprintf("%s finds %d MX names, over the limit of %d: receivers give permerror (RFC 7208 §4.6.4)", n.term, len(hosts), spfMaxMXNames),
			fmt.Sprintf("replace %s by ip4 and ip6 terms naming the networks of the hosts that send", n.term))
		return nil
	}
	for _, h := range hosts {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			addrs, err := w.addrs(n, h, qt)
			if err != nil && !dnsname.IsNotFound(err) {
				return err
			}
			n.addrs = append(n.addrs, addrs...)
		}
	}
	return nil
}

// follow walks the record that an include or redirect leads to.
func (w *spfWalk) follow(r *spfRec, n *spfNode, target string) {
	t := n.term
	if w.lookups > lintMaxLookups {
		w.cut = true
		n.note = fmt.Sprintf("not followed: the count passed %d", lintMaxLookups)
		n.fixed = "it was not followed"
		return
	}
	for _, d := range w.stack {
		if d == target {
			n.note, n.fixed = "a loop back to "+trimDot(target), "it loops"
			w.add(SeverityError, "spf-loop", r,
				fmt.Sprintf("%s leads back to %s, which is being evaluated: a loop that receivers end with permerror (RFC 7208 §4.6.4)", t, trimDot(target)),
				fmt.Sprintf("remove %s", t))
			return
		}
	}
	txts, a, err := w.l.txt(w.ctx, target)
	if err != nil {
		w.lookupDone(r, n, err)
		return
	}
	var spfs []string
	for _, x := range txts {
		if spf.IsSPF(x) {
			spfs = append(spfs, x)
		}
	}
	what := "include"
	rfc := "RFC 7208 §5.2"
	if t.IsModifier() {
		what, rfc = "redirect", "RFC 7208 §6.1"
	}
	switch len(spfs) {
	case 0:
		if a == nil {
			w.lookupDone(r, n, dnsname.NotFound(target, ""))
		}
		n.note, n.fixed = strings.TrimPrefix(n.note+"; ", "; ")+"no SPF record: permerror", "its target has no SPF record"
		w.add(SeverityError, "spf-target-none", r,
			fmt.Sprintf("%s leads to %s, which publishes no SPF record: receivers give permerror (%s)", t, trimDot(target), rfc),
			fmt.Sprintf("remove %s, or correct the domain it names", t))
		return
	case 1:
	default:
		n.note, n.fixed = "several SPF records: permerror", "its target has several SPF records"
		w.findings = append(w.findings, Finding{Severity: SeverityError, Check: LintSPF, Code: "spf-multiple", Name: target, Type: "TXT", Text: strings.Join(spfs, "\n"),
			Problem: fmt.Sprintf("%s, which the %s %s leads to, publishes %d SPF records: receivers give permerror (RFC 7208 §4.5, %s)", trimDot(target), what, t, len(spfs), rfc),
			Fix:     fmt.Sprintf("the owner of %s must merge them into one; until then remove %s", trimDot(target), t)})
		return
	}
	child := &spfRec{domain: target, text: spfs[0], ttl: answerTTL(a)}
	n.rec = child
	child.rec, err = spf.Parse(spfs[0])
	if err != nil {
		n.rec, n.note, n.fixed = nil, "does not parse: permerror", "its target's record does not parse"
		w.findings = append(w.findings, Finding{Severity: SeverityError, Check: LintSPF, Code: "spf-syntax", Name: target, Type: "TXT", Text: spfs[0],
			Problem: fmt.Sprintf("the SPF record of %s, which the %s %s leads to, does not parse: %v; receivers give permerror (RFC 7208 §4.6)", trimDot(target), what, t, err),
			Fix:     fmt.Sprintf("the owner of %s must correct it; until then remove %s", trimDot(target), t)})
		return
	}
	w.stack = append(w.stack, target)
	w.walk(child)
	w.stack = w.stack[:len(w.stack)-1]
	for _, c := range child.nodes {
		n.cost += c.cost
	}
	if !t.IsModifier() {
		for _, c := range child.rec.Terms {
			if c.Mechanism == spf.MechAll && c.Qualifier.Status() == spf.Pass {
				w.add(SeverityError, "spf-all-pass", child,
					fmt.Sprintf("the record of %s ends in %s, so %s in the record of %s passes every host of the Internet (RFC 7208 §5.1, §5.2)", trimDot(target), c.String(), t, trimDot(r.domain)),
					fmt.Sprintf("remove %s until its owner replaces %s by -all or ~all", t, c.String()))
			}
		}
	}
}

// checkAll checks the all mechanism that ends the evaluation of top: its
// own, or that of the record its redirect leads to.
func (w *spfWalk) checkAll(top *spfRec) {
	r := top
	for {
		for _, n := range r.nodes {
			if n.term.Mechanism != spf.MechAll {
				continue
			}
			switch n.term.Qualifier {
			case spf.QualifierNone, spf.QualifierPass:
				w.add(SeverityError, "spf-all-pass", r,
					fmt.Sprintf("%s passes every host of the Internet: anyone may send as %s (RFC 7208 §5.1)", n.term, trimDot(top.domain)),
					"end the record with -all (or ~all while it is being tested)")
			case spf.QualifierNeutral:
				w.add(SeverityWarning, "spf-all-neutral", r,
					fmt.Sprintf("%s gives neutral to every other host, which receivers treat as no policy at all (RFC 7208 §8.2)", n.term),
					"end the record with -all (or ~all while it is being tested)")
			}
			return
		}
		var next *spfRec
		for _, n := range r.nodes {
			if n.term.Modifier == spf.ModRedirect && !n.ignored {
				next = n.rec
				if next == nil {
					return // not followed: its own finding says why
				}
			}
		}
		if next == nil {
			w.add(SeverityWarning, "spf-no-all", r,
				fmt.Sprintf("the record of %s has no all mechanism and no redirect: every other host gets neutral, which receivers treat as no policy at all (RFC 7208 §4.7)", trimDot(r.domain)),
				"end the record with -all (or ~all while it is being tested)")
			return
		}
		r = next
	}
}

// breakdown gives the terms of r with the lookups of each.
func breakdown(r *spfRec) []SPFTerm {
	out := make([]SPFTerm, 0, len(r.nodes))
	for _, n := range r.nodes {
		t := SPFTerm{Term: n.term.String(), Lookups: n.cost, Void: n.void, Note: n.note}
		if n.rec != nil {
			t.Target, t.Record, t.Terms = n.rec.domain, n.rec.text, breakdown(n.rec)
		}
		out = append(out, t)
	}
	return out
}

// answerSize is the measure of RFC 7208 §3.4: the length of the name and
// of the text of every TXT record at it.
func answerSize(name string, txts []string) int {
	n := len(name)
	for _, t := range txts {
		n += len(t)
	}
	return n
}
