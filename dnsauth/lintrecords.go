package dnsauth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
)

// dmarc checks the DMARC record of the domain (RFC 9989 §4.7, RFC 7489
// §6.3).
func (l *linter) dmarc(ctx context.Context) []Finding {
	name := "_dmarc." + l.domain
	txts, _, err := l.txt(ctx, name)
	if err != nil {
		return []Finding{dnsFinding(LintDMARC, name, "TXT", "the DMARC record", err)}
	}
	var recs []string
	for _, t := range txts {
		if dmarc.IsDMARCRecord(t) {
			recs = append(recs, t)
		}
	}
	d := trimDot(l.domain)
	switch len(recs) {
	case 0:
		return l.dmarcInherited(ctx, name)
	case 1:
	default:
		return []Finding{{Severity: SeverityError, Check: LintDMARC, Code: "dmarc-multiple", Name: name, Type: "TXT", Text: strings.Join(recs, "\n"),
			Problem: fmt.Sprintf("%s publishes %d DMARC records: receivers discard them all and apply no policy (RFC 9989 §4.10 step 2, RFC 7489 §6.6.3)", trimDot(name), len(recs)),
			Fix:     "keep one record and delete the others"}}
	}
	text := recs[0]
	var out []Finding
	add := func(sev Severity, code, problem, fix string) {
		out = append(out, Finding{Severity: sev, Check: LintDMARC, Code: code, Name: name, Type: "TXT", Text: text, Problem: problem, Fix: fix})
	}
	for _, p := range dmarc.Check(text) {
		sev, fix := SeverityWarning, "rewrite the record as the problem says"
		if p.Severity == dmarc.Error {
			sev = SeverityError
		}
		if p.Tag != "" {
			fix = fmt.Sprintf("correct or remove the %s= tag as the problem says", p.Tag)
		}
		problem := p.Message
		if p.Tag != "" {
			problem = p.Tag + ": " + problem
		}
		add(sev, "dmarc-check", problem, fix)
	}
	rec, err := dmarc.Parse(text)
	if err != nil {
		return out // Check has said why
	}
	if rec.Policy == dmarc.PolicyNone {
		add(SeverityWarning, "dmarc-p-none",
			fmt.Sprintf("p=none asks receivers to take no action on mail from %s that fails DMARC: the record only gathers reports (RFC 9989 §4.7)", d),
			"once the aggregate reports show that every legitimate source passes, set p=quarantine, then p=reject")
	}
	if rec.Percent != nil && *rec.Percent < 100 {
		add(SeverityWarning, "dmarc-pct",
			fmt.Sprintf("pct=%d: receivers that follow RFC 7489 apply the policy to %d%% of the failing mail only and the next weaker policy to the rest (RFC 7489 §6.3, §6.6.4); RFC 9989 has no pct=", *rec.Percent, *rec.Percent),
			"remove pct= so that every receiver applies the policy to all failing mail (t=y is RFC 9989's way to test)")
	}
	if len(rec.AggregateURIs) == 0 {
		add(SeverityWarning, "dmarc-no-rua",
			"there is no usable rua=: no receiver sends aggregate reports, so nobody sees which hosts send as the domain and whether they pass (RFC 9989 §4.7)",
			fmt.Sprintf("add rua=mailto:dmarc-reports@%s (a mailbox that reads the reports, or a report-processing service)", d))
	}
	if rank, sub := policyRank(rec.Policy), policyRank(rec.SubdomainPolicy); rec.SubdomainPolicy != "" && sub < rank {
		add(SeverityWarning, "dmarc-sp-weak",
			fmt.Sprintf("sp=%s is weaker than p=%s: mail that fails DMARC from any subdomain of %s, including names that do not exist, gets the weaker policy (RFC 9989 §4.7)", rec.SubdomainPolicy, rec.Policy, d),
			fmt.Sprintf("remove sp= (p= then applies to subdomains too) or set sp=%s", rec.Policy))
	}
	if rec.Testing {
		add(SeverityWarning, "dmarc-testing",
			"t=y asks receivers to apply the next weaker policy (quarantine instead of reject, none instead of quarantine): the domain is testing its policy (RFC 9989 §4.7)",
			"remove t=y once the aggregate reports show that every legitimate source passes")
	}
	return out
}

// dmarcInherited finds the policy that applies to the domain without a
// record of its own, from its organizational domain (RFC 9989 §4.10).
func (l *linter) dmarcInherited(ctx context.Context, name string) []Finding {
	d := trimDot(l.domain)
	none := Finding{Severity: SeverityError, Check: LintDMARC, Code: "dmarc-none", Name: name, Type: "TXT",
		Problem: fmt.Sprintf("%s publishes no DMARC record, and no organizational domain's record applies to it: receivers apply no policy to mail that fails SPF and DKIM alignment, and send no reports (RFC 9989 §4.10)", d),
		Fix:     fmt.Sprintf(`publish a TXT record at %s such as "v=DMARC1; p=none; rua=mailto:dmarc-reports@%s", then raise p= as the reports allow`, trimDot(name), d)}
	ev, err := dmarc.NewEvaluator(l.r, nil)
	if err != nil {
		return []Finding{none}
	}
	disc, err := ev.Lookup(ctx, d)
	switch {
	case errors.Is(err, dmarc.ErrDNS):
		return []Finding{dnsFinding(LintDMARC, name, "TXT", "the DMARC record of the organizational domain", err)}
	case err != nil || disc.Record == nil || strings.EqualFold(trimDot(disc.Domain), d):
		return []Finding{none}
	}
	p := disc.Record.SubdomainPolicy
	if p == "" {
		p = disc.Record.Policy
	}
	org := "_dmarc." + strings.ToLower(trimDot(disc.Domain)) + "."
	text := disc.Record.String()
	if txts, _, err := l.txt(ctx, org); err == nil { // the answer is in the cache
		if i := slices.IndexFunc(txts, dmarc.IsDMARCRecord); i >= 0 {
			text = txts[i]
		}
	}
	f := Finding{Severity: SeverityInfo, Check: LintDMARC, Code: "dmarc-inherited", Name: org, Type: "TXT", Text: text,
		Problem: fmt.Sprintf("%s publishes no DMARC record: the record of its organizational domain %s applies, with policy %s (RFC 9989 §4.10)", d, trimDot(disc.Domain), p),
		Fix:     fmt.Sprintf("nothing, if that policy suits %s; otherwise publish a record at %s", d, trimDot(name))}
	if policyRank(p) <= policyRank(dmarc.PolicyNone) {
		f.Severity = SeverityWarning
		f.Fix = fmt.Sprintf("raise sp= at %s, or publish a record with a stronger p= at %s", trimDot(org), trimDot(name))
	}
	return []Finding{f}
}

// policyRank orders policies by strength; an absent one ranks lowest.
func policyRank(p dmarc.Policy) int {
	return slices.Index([]dmarc.Policy{dmarc.PolicyNone, dmarc.PolicyQuarantine, dmarc.PolicyReject}, p)
}

// rsaGoodBits is the size of RSA key that RFC 8301 §3.2 says signers
// SHOULD use at least.
const rsaGoodBits = 2048

// dkim checks the key record of a selector (RFC 6376 §3.6.1, §3.6.2).
func (l *linter) dkim(ctx context.Context, sel string) []Finding {
	name := dkimName(sel, l.domain)
	a, err := l.r.Lookup(ctx, name, dns.TypeTXT)
	if dnsname.IsNotFound(err) {
		return []Finding{{Severity: SeverityError, Check: LintDKIM, Code: "dkim-none", Name: name, Type: "TXT",
			Problem: fmt.Sprintf("selector %s has no key record at %s: every signature made with it fails (RFC 6376 §6.1.2)", sel, trimDot(name)),
			Fix:     fmt.Sprintf("publish the public key of the selector at %s (or the CNAME to the provider's key), or stop signing with %s", trimDot(name), sel)}}
	}
	if err != nil {
		return []Finding{dnsFinding(LintDKIM, name, "TXT", "the key record of selector "+sel, err)}
	}
	where := fmt.Sprintf("the key record of selector %s", sel)
	var out []Finding
	txts := dnsrr.TXTs(a.Records)
	add := func(sev Severity, code, text, problem, fix string) {
		out = append(out, Finding{Severity: sev, Check: LintDKIM, Code: code, Name: a.Canonical, Type: "TXT", Text: text, Problem: problem, Fix: fix})
	}
	if !dnsname.Equal(a.Name, a.Canonical) {
		where += fmt.Sprintf(" (at %s, through the CNAME at %s)", trimDot(a.Canonical), trimDot(name))
		add(SeverityInfo, "dkim-cname", strings.Join(txts, "\n"),
			fmt.Sprintf("%s is served through a CNAME: whoever serves %s controls the key", where, trimDot(a.Canonical)),
			"nothing, if that is the provider that signs for the domain")
	}
	if len(txts) > 1 {
		add(SeverityError, "dkim-multiple", strings.Join(txts, "\n"),
			fmt.Sprintf("%s is %d TXT records: the outcome of verification is undefined (RFC 6376 §3.6.2.2)", where, len(txts)),
			"keep the one record of the key and delete the others")
	}
	for _, txt := range txts {
		for _, f := range checkKey(where, sel, txt) {
			add(f.Severity, f.Code, txt, f.Problem, f.Fix)
		}
	}
	return out
}

// checkKey gives the findings about the text of one key record: Severity,
// Code, Problem and Fix set.
func checkKey(where, sel, txt string) []Finding {
	var out []Finding
	add := func(sev Severity, code, problem, fix string) {
		out = append(out, Finding{Severity: sev, Code: code, Problem: problem, Fix: fix})
	}
	k, err := dkim.ParseKeyRecord(txt)
	if err != nil {
		if kt := tagValue(txt, "k"); kt != "" && kt != "rsa" && kt != "ed25519" {
			add(SeverityError, "dkim-key-type",
				fmt.Sprintf("%s has the unknown key type k=%s: verifiers cannot use it and every signature fails (RFC 6376 §3.6.1, RFC 8463)", where, kt),
				"publish the key with k=rsa or k=ed25519, as the signer's key is")
			return out
		}
		add(SeverityError, "dkim-syntax",
			fmt.Sprintf("%s does not parse: %v; every signature made with selector %s fails (RFC 6376 §3.6.1)", where, err, sel),
			`publish the record again as the signer's configuration gives it: "v=DKIM1; k=rsa; p=<the public key in base64>"`)
		return out
	}
	if k.Revoked {
		add(SeverityError, "dkim-revoked",
			fmt.Sprintf("%s has an empty p=: the key is revoked and every signature made with it fails (RFC 6376 §3.6.1)", where),
			fmt.Sprintf("publish the current public key of selector %s, or, if it is retired on purpose, stop signing with it", sel))
		return out
	}
	if k.Testing() {
		add(SeverityWarning, "dkim-testing",
			fmt.Sprintf("%s has t=y: the domain says it is testing DKIM, and verifiers must not treat its mail differently from unsigned mail (RFC 6376 §3.6.1)", where),
			"remove t=y once signatures verify")
	}
	if k.HashAlgorithms != nil && !slices.Contains(k.HashAlgorithms, "sha256") {
		add(SeverityError, "dkim-hash",
			fmt.Sprintf("%s allows only h=%s: sha1 must not be used to sign or verify (RFC 8301 §3.1), and sha256 is excluded", where, strings.Join(k.HashAlgorithms, ":")),
			"remove h= (or set h=sha256)")
	}
	if pub, ok := k.PublicKey.(*rsa.PublicKey); ok {
		switch bits := pub.N.BitLen(); {
		case bits < dkim.MinRSABits:
			add(SeverityError, "dkim-rsa-weak",
				fmt.Sprintf("%s holds an RSA key of %d bits: verifiers must not accept keys under %d bits, so every signature fails (RFC 8301 §3.2)", where, bits, dkim.MinRSABits),
				fmt.Sprintf("make a key of %d bits, publish it under a new selector and sign with it", rsaGoodBits))
		case bits < rsaGoodBits:
			add(SeverityWarning, "dkim-rsa-short",
				fmt.Sprintf("%s holds an RSA key of %d bits: signers should use keys of at least %d bits (RFC 8301 §3.2)", where, bits, rsaGoodBits),
				fmt.Sprintf("make a key of %d bits, publish it under a new selector, sign with it, then revoke this one", rsaGoodBits))
		}
	}
	return out
}

// tagValue returns the value of a tag of a tag-value list (RFC 6376 §3.2)
// in lower case, "" when absent.
func tagValue(list, tag string) string {
	for _, spec := range strings.Split(list, ";") {
		name, value, ok := strings.Cut(spec, "=")
		if ok && strings.TrimSpace(name) == tag {
			return strings.ToLower(strings.TrimSpace(value))
		}
	}
	return ""
}

// iprevMaxNames is the most PTR names of an address that are checked.
const iprevMaxNames = 10

// iprev checks that the reverse DNS of ip is forward-confirmed (RFC 8601
// §3, RFC 1912 §2.1): a PTR name whose A or AAAA records hold ip.
func (l *linter) iprev(ctx context.Context, ip netip.Addr) (*IPRevReport, []Finding) {
	ip = ip.Unmap()
	rev, _ := dns.ReverseAddr(ip.String())
	rep := &IPRevReport{IP: ip, Names: []string{}, Confirmed: []string{}}
	a, err := l.r.Lookup(ctx, rev, dns.TypePTR)
	if dnsname.IsNotFound(err) {
		return rep, []Finding{{Severity: SeverityError, Check: LintIPRev, Code: "iprev-no-ptr", Name: rev, Type: "PTR",
			Problem: fmt.Sprintf("%s has no PTR record: the iprev check fails (RFC 8601 §3), and many receivers refuse mail from addresses without reverse DNS (RFC 1912 §2.1)", ip),
			Fix:     fmt.Sprintf("have the owner of %s (usually the hosting provider) publish a PTR record naming a host whose address is %s, such as the name the host gives in HELO", ip, ip)}}
	}
	if err != nil {
		return nil, []Finding{dnsFinding(LintIPRev, rev, "PTR", "the reverse DNS of "+ip.String(), err)}
	}
	qtype, typ := dns.TypeA, "A"
	if ip.Is6() {
		qtype, typ = dns.TypeAAAA, "AAAA"
	}
	rep.Names = dnsrr.PTRs(a.Records)
	var out, mismatches []Finding
	for i, name := range rep.Names {
		if i == iprevMaxNames {
			out = append(out, Finding{Severity: SeverityWarning, Check: LintIPRev, Code: "iprev-names", Name: rev, Type: "PTR", Text: strings.Join(rep.Names, "\n"),
				Problem: fmt.Sprintf("%s has %d PTR names; only the first %d were checked, as receivers do", ip, len(rep.Names), iprevMaxNames),
				Fix:     "keep one PTR record, naming the host's HELO name"})
			break
		}
		fa, err := l.r.Lookup(ctx, name, qtype)
		if err != nil && !dnsname.IsNotFound(err) {
			out = append(out, dnsFinding(LintIPRev, name, typ, "the PTR name "+trimDot(name)+" of "+ip.String(), err))
			continue
		}
		var addrs []netip.Addr
		if err == nil {
			addrs = dnsrr.Addrs(fa.Records)
		}
		if slices.ContainsFunc(addrs, func(x netip.Addr) bool { return x.Unmap() == ip }) {
			rep.Confirmed = append(rep.Confirmed, name)
			continue
		}
		text := make([]string, len(addrs))
		for j, x := range addrs {
			text[j] = x.String()
		}
		has := fmt.Sprintf("whose %s records are %s, none of them %s", typ, strings.Join(text, " "), ip)
		if len(addrs) == 0 {
			has = "which has no " + typ + " record"
		}
		mismatches = append(mismatches, Finding{Severity: SeverityError, Check: LintIPRev, Code: "iprev-mismatch", Name: name, Type: typ, Text: strings.Join(text, "\n"),
			Problem: fmt.Sprintf("the PTR record of %s names %s, %s: that name does not confirm the address (RFC 8601 §3, RFC 1912 §2.1)", ip, trimDot(name), has),
			Fix:     fmt.Sprintf("add the %s record %s at %s, or have the owner of the address point its PTR record at a name that has it", typ, ip, trimDot(name))})
	}
	if len(rep.Confirmed) > 0 {
		for i := range mismatches {
			mismatches[i].Severity = SeverityWarning
		}
		out = append(out, Finding{Severity: SeverityInfo, Check: LintIPRev, Code: "iprev-pass", Name: rev, Type: "PTR", Text: strings.Join(rep.Names, "\n"),
			Problem: fmt.Sprintf("%s has the PTR name %s, which has it back among its %s records: iprev passes (RFC 8601 §3)", ip, trimDot(rep.Confirmed[0]), typ),
			Fix:     "nothing"})
	}
	return rep, append(mismatches, out...)
}
