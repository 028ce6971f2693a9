package dnsauth

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
	"github.com/smarthost-go/smarthost/spf"
)

// Pushing a plan: Updater (RFC 2136 dynamic update, update.go) and
// LibdnsUpdater (a libdns provider, libdns.go) share what is here: the
// result of a push, and decide, which compares the changes with the data
// read from the zone and says, change by change, what to do.

// ErrConflict is wrapped by the error of a push that found data in the
// zone that its changes would overwrite or that changed while it ran.
// Nothing was changed; the PushResult says which changes conflict and
// what was found.
var ErrConflict = errors.New("dnsauth: the zone holds conflicting data")

// ErrRefused is wrapped by the error of an update the server refused:
// RCODE REFUSED or NOTAUTH, as for a TSIG that does not verify (RFC 8945
// §5.2). Nothing was changed.
var ErrRefused = errors.New("dnsauth: update refused")

// Outcome is what a push did with one change.
type Outcome string

// The outcomes of a change.
const (
	// OutcomeApplied: the zone now holds the record (add, replace) or no
	// longer holds it (delete), by this push.
	OutcomeApplied Outcome = "applied"
	// OutcomeSkipped: nothing to do, the zone already held the record
	// (add, replace) or did not hold it (delete).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeConflict: the zone holds data the change would overwrite, or
	// lacks the record a replace replaces; Found says what is there.
	OutcomeConflict Outcome = "conflict"
	// OutcomeNotApplied: the change was not made, because another change
	// of the push conflicts (a push is all or nothing) or the push failed;
	// Reason says which.
	OutcomeNotApplied Outcome = "not-applied"
	// OutcomeUnknown: the update was sent but no usable answer came back,
	// so whether it was applied is not known; push again to find out.
	OutcomeUnknown Outcome = "unknown"
)

// ChangeResult is the outcome of one change of a push.
type ChangeResult struct {
	Change  Change  `json:"change"`
	Outcome Outcome `json:"outcome"`
	// Found are the records at the change's name that conflict with it
	// (or, for a delete that was skipped, stand in the record's place),
	// as the zone holds them.
	Found []Record `json:"found,omitempty"`
	// Reason says, for a person, why the change conflicts, was skipped
	// beside Found records, or was not applied.
	Reason string `json:"reason,omitempty"`
}

// PushResult is the outcome of a push, one ChangeResult per change, in the
// order of the changes.
type PushResult struct {
	// Zone is the zone changed, absolute; Server the server updated
	// (Updater only).
	Zone    string         `json:"zone"`
	Server  string         `json:"server,omitempty"`
	Changes []ChangeResult `json:"changes"`
}

// Conflicts returns the changes that conflict with the zone's data.
func (r *PushResult) Conflicts() []ChangeResult {
	var out []ChangeResult
	for _, c := range r.Changes {
		if c.Outcome == OutcomeConflict {
			out = append(out, c)
		}
	}
	return out
}

// WriteTable writes the result as a table a person reads in a terminal:
// one line per change, followed by why and what was found, if anything.
func (r *PushResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTCOME\tACTION\tNAME\tTYPE\tVALUE")
	for _, c := range r.Changes {
		v := c.Change.Record.Value
		if c.Change.Record.Type == "TXT" {
			v = `"` + v + `"`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Outcome, c.Change.Action, c.Change.Record.Name, c.Change.Record.Type, v)
		if c.Reason != "" {
			fmt.Fprintf(tw, "\t\t\t\t  %s\n", c.Reason)
		}
		for _, f := range c.Found {
			v := f.Value
			if f.Type == "TXT" {
				v = `"` + v + `"`
			}
			fmt.Fprintf(tw, "\t\t\t\t  found %s %s\n", f.Type, v)
		}
	}
	return tw.Flush()
}

// setKey names an RRset: its owner (lower case presentation form) and type.
type setKey struct {
	name   string
	rrtype uint16
}

// readRR is a record as read from the zone; src is the libdns record it
// came from (nil for a DNS server), which a libdns delete must be given
// back exactly; desc, when set, describes a record that rr cannot hold (a
// provider's own type, such as ALIAS).
type readRR struct {
	rr   dns.RR
	src  libdns.Record
	desc *Record
}

// zoneData is what a push read: the RRsets the changes touch, and the
// CNAME RRset of every name they touch.
type zoneData struct {
	sets map[setKey][]readRR
	// other holds, for a name where a CNAME is to be added, the records of
	// other types found there (RFC 1034 §3.6.2: a CNAME stands alone).
	other map[string][]readRR
}

// pushChange is a change checked against the zone, with its records in
// miekg/dns form.
type pushChange struct {
	Change
	key setKey
	rr  dns.RR // the record added, replacing, or deleted
	old dns.RR // for a replace, the record replaced
}

// checkChanges checks that every change is one a push can make in zone
// (absolute presentation form) and converts its records.
func checkChanges(zone string, changes []Change) ([]pushChange, error) {
	out := make([]pushChange, 0, len(changes))
	for i, c := range changes {
		bad := func(format string, args ...any) ([]pushChange, error) {
			return nil, fmt.Errorf("%w: change %d (%s %s %s): %s", ErrRequest, i, c.Action, c.Record.Name, c.Record.Type, fmt.Sprintf(format, args...))
		}
		pc := pushChange{Change: c}
		var err error
		if pc.rr, err = c.Record.RR(); err != nil {
			return bad("%v", err)
		}
		h := pc.rr.Header()
		switch h.Rrtype {
		case dns.TypeSOA, dns.TypeANY, dns.TypeOPT, dns.TypeTSIG, dns.TypeAXFR, dns.TypeIXFR:
			return bad("a push does not change %s records", c.Record.Type)
		}
		if !dns.IsSubDomain(zone, dnsname.Key(h.Name)) {
			return bad("not in the zone %s", zone)
		}
		pc.key = setKey{dnsname.Key(h.Name), h.Rrtype}
		switch c.Action {
		case Add, Delete:
		case Replace:
			if c.Record.Replaces != "" {
				old := c.Record
				old.Value, old.Replaces = c.Record.Replaces, ""
				if pc.old, err = old.RR(); err != nil {
					return bad("the value replaced: %v", err)
				}
			}
		default:
			return bad("action %q is not add, delete or replace", c.Action)
		}
		out = append(out, pc)
	}
	return out, nil
}

// keysToRead returns the RRsets a push must read for changes: each
// change's RRset and the CNAME RRset of each name, in the order of the
// changes, each once.
func keysToRead(changes []pushChange) []setKey {
	var keys []setKey
	for _, c := range changes {
		for _, k := range []setKey{{c.key.name, dns.TypeCNAME}, c.key} {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// step is what decide found for one change: its outcome, and the records
// to delete (exactly as read) and add.
type step struct {
	outcome Outcome
	found   []Record
	reason  string
	del     []readRR
	add     []dns.RR
}

func (s step) changes() bool { return len(s.del) > 0 || len(s.add) > 0 }

// decision is decide's answer for a whole push.
type decision struct {
	steps []step
	// prereq are the prerequisites (RFC 2136 §2.4) that hold exactly when
	// the zone still holds what was read, for every RRset decided on.
	prereq    []dns.RR
	conflicts int
}

// decide compares the changes with the data read and says what to do.
// Changes are taken in order, each seeing the effect of those before it.
// A change never overwrites what is there:
//
//   - adding a CNAME needs the name unused (RFC 2136 §2.4.5), or holding
//     that same CNAME (skipped);
//   - adding another record needs no CNAME at the name, and no different
//     record of its kind in its RRset: for TXT, another SPF record (RFC
//     7208 §4.5: one per name) for an SPF record, another DMARC record for
//     a DMARC record, any other TXT for a DKIM key or a text of no known
//     kind; for other types, any record the changes do not add;
//   - a replace needs the record it replaces, and no other record of its
//     kind; when the new record is there and the old one is not, it was
//     applied before and is skipped;
//   - a delete removes the record if it is there, else is skipped.
//
// The prerequisites assert every RRset read as it was read: "RRset does not
// exist" (§2.4.3) for an empty one, "RRset exists (value dependent)"
// (§2.4.2) with every record as read otherwise, and "name is not in use"
// (§2.4.5) where a CNAME is added.
func decide(changes []pushChange, data *zoneData) decision {
	work := map[setKey][]readRR{}
	for k, v := range data.sets {
		work[k] = slices.Clone(v)
	}
	planned := map[setKey][]dns.RR{} // what the changes put in each RRset
	for _, c := range changes {
		if c.Action != Delete {
			planned[c.key] = append(planned[c.key], c.rr)
		}
	}
	var d decision
	cnameAdded := map[string]bool{}
	for _, c := range changes {
		s := decideOne(c, work, planned[c.key], data.other[c.key.name])
		if s.outcome == OutcomeConflict {
			d.conflicts++
		}
		for _, r := range s.del {
			work[c.key] = slices.DeleteFunc(work[c.key], func(o readRR) bool { return o.rr == r.rr })
		}
		for _, rr := range s.add {
			work[c.key] = append(work[c.key], readRR{rr: rr})
			if c.key.rrtype == dns.TypeCNAME && len(s.del) == 0 {
				cnameAdded[c.key.name] = true // to a name without one
			}
		}
		d.steps = append(d.steps, s)
	}
	for _, k := range keysToRead(changes) {
		read := data.sets[k]
		switch {
		case k.rrtype == dns.TypeCNAME && cnameAdded[k.name]:
			d.prereq = append(d.prereq, &dns.ANY{Hdr: dns.RR_Header{Name: k.name, Rrtype: dns.TypeANY, Class: dns.ClassNONE}})
		case len(read) == 0:
			d.prereq = append(d.prereq, &dns.ANY{Hdr: dns.RR_Header{Name: k.name, Rrtype: k.rrtype, Class: dns.ClassNONE}})
		default:
			for _, r := range read {
				rr := dns.Copy(r.rr)
				rr.Header().Class, rr.Header().Ttl = dns.ClassINET, 0
				d.prereq = append(d.prereq, rr)
			}
		}
	}
	return d
}

func decideOne(c pushChange, work map[setKey][]readRR, planned []dns.RR, other []readRR) step {
	set := work[c.key]
	cname := work[setKey{c.key.name, dns.TypeCNAME}]
	isCNAME := c.key.rrtype == dns.TypeCNAME
	conflict := func(found []readRR, format string, args ...any) step {
		return step{outcome: OutcomeConflict, found: records(found), reason: fmt.Sprintf(format, args...)}
	}
	if c.Action != Delete && !isCNAME && len(cname) > 0 {
		return conflict(cname, "the name is an alias (CNAME), beside which no other record can stand (RFC 1034 §3.6.2)")
	}
	switch {
	case c.Action == Delete:
		if r, ok := find(set, c.rr); ok {
			return step{outcome: OutcomeApplied, del: []readRR{r}}
		}
		s := step{outcome: OutcomeSkipped}
		if in := sameKind(set, c.Record, nil); len(in) > 0 {
			s.found, s.reason = records(in), "the record is not there; a different one is"
		}
		return s

	case isCNAME && c.old == nil: // add, or a replace of nothing
		if len(cname) > 0 {
			if _, ok := find(cname, c.rr); ok {
				return step{outcome: OutcomeSkipped}
			}
			return conflict(cname, "the name is an alias of another target")
		}
		if len(other) > 0 {
			return conflict(other, "the name holds other records, beside which a CNAME cannot stand (RFC 1034 §3.6.2)")
		}
		return step{outcome: OutcomeApplied, add: []dns.RR{c.rr}}

	case c.old == nil: // add, or a replace of nothing
		if _, ok := find(set, c.rr); ok {
			return step{outcome: OutcomeSkipped}
		}
		if in := sameKind(set, c.Record, planned); len(in) > 0 {
			return conflict(in, "a different record of this kind is there")
		}
		return step{outcome: OutcomeApplied, add: []dns.RR{c.rr}}

	default: // replace
		old, hasOld := find(set, c.old)
		_, hasNew := find(set, c.rr)
		rest := slices.DeleteFunc(slices.Clone(set), func(r readRR) bool { return hasOld && r.rr == old.rr })
		others := sameKind(rest, c.Record, planned)
		switch {
		case !hasOld && hasNew && len(others) == 0:
			return step{outcome: OutcomeSkipped}
		case !hasOld:
			return conflict(sameKind(set, c.Record, nil), "the record to replace is not there: %s", quoteIf(c.Record.Type, c.Record.Replaces))
		case len(others) > 0:
			return conflict(others, "other records of this kind are there beside the one to replace")
		}
		s := step{outcome: OutcomeApplied, del: []readRR{old}}
		if !hasNew {
			s.add = []dns.RR{c.rr}
		}
		return s
	}
}

// quoteIf quotes value with QuoteTXT when typ is TXT, for messages.
func quoteIf(typ, value string) string {
	if strings.EqualFold(typ, "TXT") {
		return QuoteTXT(value)
	}
	return value
}

// find returns the record of set that holds the same data as rr.
func find(set []readRR, rr dns.RR) (readRR, bool) {
	for _, r := range set {
		if sameData(r.rr, rr) {
			return r, true
		}
	}
	return readRR{}, false
}

// sameData reports whether a and b, of one owner, hold the same data: TXT
// records the same text however it is split into strings (RFC 7208 §3.3),
// others the same RDATA, names compared without case (RFC 4343).
func sameData(a, b dns.RR) bool {
	if a.Header().Rrtype != b.Header().Rrtype {
		return false
	}
	if ta, ok := a.(*dns.TXT); ok {
		return txtText(ta) == txtText(b)
	}
	ac, bc := dns.Copy(a), dns.Copy(b)
	for _, h := range []*dns.RR_Header{ac.Header(), bc.Header()} {
		h.Name, h.Class, h.Ttl = ".", dns.ClassINET, 0
	}
	return dns.IsDuplicate(ac, bc)
}

func txtText(rr dns.RR) string {
	if t := dnsrr.TXTs([]dns.RR{rr}); len(t) == 1 {
		return t[0]
	}
	return ""
}

// sameKind returns the records of set that rec stands in for (see
// decide), leaving out those that are planned.
func sameKind(set []readRR, rec Record, planned []dns.RR) []readRR {
	var out []readRR
	for _, r := range set {
		if slices.ContainsFunc(planned, func(p dns.RR) bool { return sameData(p, r.rr) }) {
			continue
		}
		if t, ok := r.rr.(*dns.TXT); ok && !sameTXTKind(rec, txtText(t)) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// sameTXTKind reports whether the TXT text is of the kind of rec, the TXT
// record planned: an SPF record for an SPF record, a DMARC record for a
// DMARC record; every TXT for a DKIM key (the selector's name holds one
// key record, RFC 6376 §3.6.2.2) or a text of no known kind.
func sameTXTKind(rec Record, text string) bool {
	switch {
	case rec.Purpose == PurposeDKIM:
		return true
	case spf.IsSPF(rec.Value):
		return spf.IsSPF(text)
	case dmarc.IsDMARCRecord(rec.Value):
		return dmarc.IsDMARCRecord(text)
	}
	return true
}

// records converts records read into Records: raw names and TXT text,
// other data as a zone file writes it.
func records(rrs []readRR) []Record {
	out := make([]Record, 0, len(rrs))
	for _, r := range rrs {
		if r.desc != nil {
			out = append(out, *r.desc)
			continue
		}
		h := r.rr.Header()
		rec := Record{Name: rawName(h.Name), Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl}
		if t, ok := r.rr.(*dns.TXT); ok {
			rec.Value = txtText(t)
		} else {
			rec.Value = strings.TrimPrefix(r.rr.String(), h.String())
		}
		out = append(out, rec)
	}
	return out
}

// rawName is the name of raw labels of a name in presentation form.
func rawName(name string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return name
	}
	var b strings.Builder
	for i := 0; i < n && buf[i] != 0; i += 1 + int(buf[i]) {
		b.Write(buf[i+1 : i+1+int(buf[i])])
		b.WriteByte('.')
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}
