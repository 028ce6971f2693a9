package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// writeJSON prints rep as one JSON object.
func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// writeText prints rep for people: the Authentication-Results field, then
// a section per check, then the Received chain.
func writeText(w io.Writer, rep *report) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("Authentication-Results: %s", rep.AuthenticationResults)
	c := rep.Client
	p("\nclient: ip=%s helo=%s mail-from=%s", c.IP, orDash(c.HELO), orNull(c.MailFrom))
	p("  (from %s)", c.Source)

	s := rep.SPF
	p("\n== spf: %s", s.Result)
	p("identity: %s, domain %s", s.Identity, orDash(s.Domain))
	if s.Mechanism != "" {
		p("matched: %s in %s", s.Mechanism, s.MatchedDomain)
	}
	if s.Reason != "" {
		p("reason: %s", s.Reason)
	}
	if s.Explanation != "" {
		p("explanation: %s", s.Explanation)
	}
	p("Received-SPF: %s", s.ReceivedSPF)
	section(w, "trace", s.Trace)
	lookups(w, s.Lookups)

	if len(rep.DKIM) == 0 {
		p("\n== dkim: none (no DKIM-Signature field)")
	}
	for i, d := range rep.DKIM {
		p("\n== dkim %d of %d: %s d=%s s=%s a=%s c=%s", i+1, len(rep.DKIM), d.Result, d.Domain, d.Selector, d.Algorithm, d.Canon)
		if d.Reason != "" {
			p("reason: %s", d.Reason)
		}
		p("identifier: %s", d.Identifier)
		p("signed headers: %s", strings.Join(d.Headers, " "))
		if !d.Time.IsZero() {
			p("signed at: %s", d.Time.UTC().Format(time.RFC3339))
		}
		if !d.Expiration.IsZero() {
			p("expires at: %s", d.Expiration.UTC().Format(time.RFC3339))
		}
		switch {
		case d.ComputedBodyHash == "":
			p("body hash: bh=%s (not recomputed)", orDash(d.BodyHash))
		case d.BodyLength >= 0:
			p("body hash: bh=%s; whole body as received %s (l=%d signs only part of it)", d.BodyHash, d.ComputedBodyHash, d.BodyLength)
		case d.ComputedBodyHash == d.BodyHash:
			p("body hash: bh=%s, the body as received matches", d.BodyHash)
		default:
			p("body hash: bh=%s, the body as received hashes to %s: it was changed", d.BodyHash, d.ComputedBodyHash)
		}
		if d.KeyCNAME != "" {
			p("key: %s, a CNAME to %s", d.KeyName, d.KeyCNAME)
		} else {
			p("key: %s", d.KeyName)
		}
		lookups(w, d.KeyLookups)
	}

	m := rep.DMARC
	p("\n== dmarc: %s", m.Result)
	if m.Reason != "" {
		p("reason: %s", m.Reason)
	}
	p("author domain (From): %s", orDash(m.AuthorDomain))
	if m.Record != "" {
		p("record: %s", m.Record)
		p("found at: _dmarc.%s", m.PolicyDomain)
		p("organizational domain: %s", m.OrgDomain)
		p("policy: %s=%s, disposition %s", m.PolicyTag, m.Policy, m.Disposition)
	}
	p("spf alignment: %s%s", m.SPF, paren(m.SPFDomain))
	p("dkim alignment: %s%s", m.DKIM, paren(strings.Join(m.DKIMDomains, " ")))
	lookups(w, m.Lookups)

	p("\n== received chain: %d hops, first to last", len(rep.Received))
	if rep.ReceivedOmitted > 0 {
		p("(%d earlier Received fields not shown: the message has looped, or its header is forged)", rep.ReceivedOmitted)
	}
	for i, h := range rep.Received {
		delay := "-"
		switch {
		case h.DelayKnown:
			delay = "+" + h.Delay.String()
			if h.Delay < 0 {
				delay = h.Delay.String() + " (clock skew)"
			}
		case i > 0:
			delay = "?"
		}
		date := h.DateErr
		if !h.Date.IsZero() {
			date = h.Date.Format(time.RFC1123Z)
		}
		p("%d. %s  %s", i+1, date, delay)
		p("   from %s%s%s by %s%s", orDash(h.HELO), paren(h.RDNS), bracket(h.IP.String(), h.IP.IsValid()), orDash(h.By), withClause(h.With))
	}
}

func section(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

func lookups(w io.Writer, ls []lookup) {
	if len(ls) == 0 {
		fmt.Fprintln(w, "dns: no lookups")
		return
	}
	fmt.Fprintln(w, "dns:")
	for _, l := range ls {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNull(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func bracket(s string, ok bool) string {
	if !ok {
		return ""
	}
	return " [" + s + "]"
}

func withClause(s string) string {
	if s == "" {
		return ""
	}
	return " with " + s
}
