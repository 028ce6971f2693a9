package dnsauth

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/spf"
)

// SPFFlattening is an SPF record rewritten so that its evaluation makes
// fewer DNS lookups (RFC 7208 §4.6.4): each include, a and mx is replaced
// by the ip4 and ip6 networks it stands for today, in its place and with
// its qualifier, and each redirect by the terms of its record; the all
// mechanism, exp= and the other modifiers stay. What cannot be replaced is
// kept as written, and Kept says why: ptr and exists, which depend on each
// message; terms holding macros; an include whose record holds such a term
// (its macros name that record's domain) or a term that is not a pass
// before one that is; a lookup that failed. Networks already covered by an
// earlier one are left out, as no evaluation reaches them.
//
// The networks are copies: when the included records, the MX hosts or the
// addresses change, the flattened record is wrong until it is made again.
// TTL says how often that must be done at least. The JSON field names are
// stable.
type SPFFlattening struct {
	// Records are the records to publish: the domain's SPF record first,
	// Replaces holding the current one; then, when the networks do not fit
	// in one answer of 450 octets (RFC 7208 §3.4), the records that hold
	// them, _spf1.<domain>, _spf2.<domain> and so on, which the first
	// includes (names that must be free). Each record's TTL is the least
	// of TTL and that of the current record.
	Records []Record `json:"records"`
	// Lookups counts the DNS-querying terms that evaluating Records makes
	// at most.
	Lookups int `json:"lookups"`
	// TTL is the least TTL, in seconds, of the answers the networks were
	// copied from (TXT records of the included records, MX records and
	// addresses): the flattened records must be made again at least that
	// often. 0 when no network was copied from the DNS.
	TTL uint32 `json:"ttl"`
	// Kept are the terms kept as written, each with why.
	Kept []string `json:"kept,omitempty"`
}

// minTTL is the least of the TTLs it has seen.
type minTTL struct {
	v   uint32
	set bool
}

func (m *minTTL) see(ttl uint32) {
	if !m.set || ttl < m.v {
		m.v, m.set = ttl, true
	}
}

func (m *minTTL) merge(o minTTL) {
	if o.set {
		m.see(o.v)
	}
}

// flatTerm is one directive of a flattened record.
type flatTerm struct {
	qual   spf.Qualifier
	prefix netip.Prefix // an ip4 or ip6 network, when valid
	text   string       // otherwise the directive, qualifier included
}

// flattener builds a flattened record.
type flattener struct {
	terms   []flatTerm
	mods    []string // modifiers kept
	kept    []string
	lookups int
	ttl     minTTL
	done    bool // an all was written: no later term is ever reached
}

// flatten proposes the flattened form of top, the domain's record; txts
// are all the TXT records at the domain.
func (w *spfWalk) flatten(top *spfRec, txts []string) *SPFFlattening {
	f := &flattener{}
	f.expand(top, nil, true)
	var others []string
	for _, t := range txts {
		if !spf.IsSPF(t) {
			others = append(others, t)
		}
	}
	fl := &SPFFlattening{Kept: f.kept, TTL: f.ttl.v}
	ttl := top.ttl
	if f.ttl.set {
		ttl = min(ttl, f.ttl.v)
	}
	rec := func(name, text string) Record {
		return Record{Name: name, Type: "TXT", Value: text, TTL: ttl, Purpose: PurposeSPF}
	}
	words := make([]string, 0, len(f.terms)+len(f.mods))
	for _, t := range f.terms {
		words = append(words, t.String())
	}
	main := spfText(append(words, f.mods...))
	var subs []Record
	if answerSize(top.domain, append(others, main)) > spfMaxAnswer {
		words = words[:0]
		for i := 0; i < len(f.terms); {
			t := f.terms[i]
			if !t.prefix.IsValid() {
				words = append(words, t.text)
				i++
				continue
			}
			// A run of networks of one qualifier goes to records of
			// its own, each as full as one answer allows, which the
			// domain's record includes with that qualifier.
			end := i
			for end < len(f.terms) && f.terms[end].prefix.IsValid() && f.terms[end].qual == t.qual {
				end++
			}
			for i < end {
				name := fmt.Sprintf("_spf%d.%s", len(subs)+1, top.domain)
				nets := []string{"v=spf1"}
				size := len(name) + len("v=spf1 -all")
				for ; i < end; i++ {
					n := flatTerm{prefix: f.terms[i].prefix}.String()
					if len(nets) > 1 && size+1+len(n) > spfMaxAnswer {
						break
					}
					nets = append(nets, n)
					size += 1 + len(n)
				}
				subs = append(subs, rec(name, strings.Join(append(nets, "-all"), " ")))
				words = append(words, qualText(t.qual)+"include:"+trimDot(name))
			}
		}
		main = spfText(append(words, f.mods...))
	}
	if _, err := spf.Parse(main); err != nil {
		return nil // cannot happen: every term is one Parse has read
	}
	m := rec(top.domain, main)
	m.Replaces = top.text
	fl.Records = append([]Record{m}, subs...)
	fl.Lookups = f.lookups + len(subs)
	if size := answerSize(top.domain, append(others, main)); size > spfMaxAnswer {
		w.add(SeverityWarning, "spf-flattened-size", top,
			fmt.Sprintf("the flattened record proposed still makes an answer of %d octets with the name and the other TXT records of %s, over the %d that RFC 7208 §3.4 advises", size, trimDot(top.domain), spfMaxAnswer),
			"remove terms that no longer send, or move the kept terms to an included record")
	}
	return fl
}

// expand appends the terms of r. inc is nil for the domain's record and
// the records its redirects lead to, whose directives keep their
// qualifiers; for an included record it is the qualifier of the include,
// which the record's pass directives take, its other directives being
// dropped (inlinable has checked that none comes before a pass). top is
// set for the domain's own record, whose exp= and unknown modifiers stay.
func (f *flattener) expand(r *spfRec, inc *spf.Qualifier, top bool) {
	var redirect *spfNode
	for _, n := range r.nodes {
		t := n.term
		if f.done && !t.IsModifier() {
			continue // never reached
		}
		if t.IsModifier() {
			switch {
			case n.ignored:
			case t.Modifier == spf.ModRedirect:
				redirect = n
			case top:
				f.mods = append(f.mods, t.String())
			}
			continue
		}
		q := t.Qualifier
		if inc != nil {
			if q.Status() != spf.Pass {
				continue
			}
			q = *inc
		}
		switch {
		case t.Mechanism == spf.MechIP4 || t.Mechanism == spf.MechIP6:
			f.addNet(q, t.Prefix())
		case t.Mechanism == spf.MechAll:
			f.terms = append(f.terms, flatTerm{qual: q, text: qualText(q) + spf.MechAll})
			f.done = true
		case (t.Mechanism == spf.MechA || t.Mechanism == spf.MechMX) && n.fixed == "":
			for _, a := range n.addrs {
				a = a.Unmap()
				bits := t.CIDR4
				if a.Is6() {
					bits = t.CIDR6
				}
				if bits < 0 {
					bits = a.BitLen()
				}
				p, _ := a.Prefix(bits)
				f.addNet(q, p)
			}
			f.ttl.merge(n.ttl)
		case t.Mechanism == spf.MechInclude && n.fixed == "":
			if why := inlinable(n.rec, true, false); why != "" {
				f.keep(n, q, "its record "+why)
				break
			}
			f.ttl.see(n.rec.ttl)
			f.expand(n.rec, &q, false)
		default:
			f.keep(n, q, n.fixed)
		}
	}
	if redirect == nil || f.done {
		return
	}
	why := redirect.fixed
	if why == "" {
		why = inlinable(redirect.rec, inc != nil, false)
	}
	if why == "" && inc == nil && redirect.rec.rec.Exp != nil {
		why = "its record has exp=, which only it can give"
	}
	if why == "" {
		f.ttl.see(redirect.rec.ttl)
		f.expand(redirect.rec, inc, false)
		return
	}
	// Only in the domain's record or its redirects' (inlinable refuses an
	// included record whose redirect cannot be replaced).
	f.mods = append(f.mods, redirect.term.String())
	f.lookups += redirect.cost
	f.kept = append(f.kept, redirect.term.String()+": "+why)
}

// inlinable says why the terms of r cannot stand in the place of the
// include or redirect that leads to it, "" when they can. For an include
// (include set), only its pass directives count, and none may follow a
// directive that is not a pass (after: one came before r's terms, in the
// record whose redirect leads to r): otherwise the networks that pass
// cannot be listed apart. Every directive must stand for networks, or be
// an include without a macro (kept as written, its evaluation is the same
// wherever it is); a ptr, an exists or a macro would name another domain
// once moved.
func inlinable(r *spfRec, include, after bool) string {
	for _, n := range r.nodes {
		t := n.term
		if t.IsModifier() {
			if t.Modifier != spf.ModRedirect || n.ignored {
				continue
			}
			if n.fixed != "" {
				return fmt.Sprintf("holds %s: %s", t, n.fixed)
			}
			if !include && n.rec.rec.Exp != nil {
				return fmt.Sprintf("holds %s, whose record has exp=", t)
			}
			if why := inlinable(n.rec, include, after); why != "" {
				return fmt.Sprintf("holds %s, whose record %s", t, why)
			}
			continue
		}
		if include && t.Qualifier.Status() != spf.Pass {
			if t.Mechanism == spf.MechAll {
				return ""
			}
			after = true
			continue
		}
		if include && after {
			return fmt.Sprintf("holds %s after a term that is not a pass, so the networks that pass cannot be listed apart", t)
		}
		switch t.Mechanism {
		case spf.MechAll:
			return ""
		case spf.MechIP4, spf.MechIP6:
		case spf.MechInclude:
			if strings.Contains(t.Domain, "%") {
				return fmt.Sprintf("holds %s: %s", t, n.fixed)
			}
		case spf.MechA, spf.MechMX:
			if n.fixed != "" {
				return fmt.Sprintf("holds %s: %s", t, n.fixed)
			}
		default:
			return fmt.Sprintf("holds %s: %s", t, n.fixed)
		}
	}
	return ""
}

// addNet appends a network, unless an earlier one holds it.
func (f *flattener) addNet(q spf.Qualifier, p netip.Prefix) {
	p = p.Masked()
	for _, t := range f.terms {
		if t.prefix.IsValid() && t.prefix.Bits() <= p.Bits() && t.prefix.Contains(p.Addr()) {
			return
		}
	}
	f.terms = append(f.terms, flatTerm{qual: q, prefix: p})
}

// keep appends the directive of n as written, with qualifier q.
func (f *flattener) keep(n *spfNode, q spf.Qualifier, why string) {
	t := *n.term
	t.Qualifier = q
	f.terms = append(f.terms, flatTerm{qual: q, text: t.String()})
	f.lookups += n.cost
	f.kept = append(f.kept, t.String()+": "+why)
}

func (t flatTerm) String() string {
	if !t.prefix.IsValid() {
		return t.text
	}
	s := qualText(t.qual) + spf.MechIP4 + ":"
	if t.prefix.Addr().Is6() {
		s = qualText(t.qual) + spf.MechIP6 + ":"
	}
	s += t.prefix.Addr().String()
	if t.prefix.Bits() != t.prefix.Addr().BitLen() {
		s += "/" + strconv.Itoa(t.prefix.Bits())
	}
	return s
}

func qualText(q spf.Qualifier) string {
	if q == spf.QualifierNone {
		return ""
	}
	return string(rune(q))
}

func spfText(terms []string) string {
	return strings.Join(append([]string{"v=spf1"}, terms...), " ")
}

// secs writes a TTL as a duration.
func secs(ttl uint32) string { return (time.Duration(ttl) * time.Second).String() }
