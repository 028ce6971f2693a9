package dnsauth

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Zone returns the owner's records as zone-file text that BIND's
// named-checkzone and miekg/dns read: a comment line naming the plan, then
// one line per record, a record that replaces another preceded by a
// comment with the old value.
func (p *Plan) Zone() string {
	return zoneText(fmt.Sprintf("records for %s (%s)", trimDot(p.Request.Domain), p.Request.Mode), p.Records)
}

// ProviderZone returns the provider's records as zone-file text.
func (p *Plan) ProviderZone() string {
	return zoneText(fmt.Sprintf("records the provider serves for %s", trimDot(p.Request.Domain)), p.ProviderRecords)
}

func zoneText(title string, recs []Record) string {
	var b strings.Builder
	b.WriteString("; " + title + "\n")
	for _, r := range recs {
		if r.Replaces != "" {
			b.WriteString("; replaces " + QuoteTXT(r.Replaces) + "\n")
		}
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// JSON returns the plan as indented JSON with the field names of its tags.
func (p *Plan) JSON() ([]byte, error) {
	return json.MarshalIndent(p, "", "  ")
}

// WriteTable writes the plan as a table a person reads in a terminal: the
// owner's records, then the provider's, then the warnings.
func (p *Plan) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "%s (%s): publish these records\n", trimDot(p.Request.Domain), p.Request.Mode)
	writeRecords(tw, p.Records)
	if len(p.ProviderRecords) > 0 {
		fmt.Fprintf(tw, "\nthe provider serves\n")
		writeRecords(tw, p.ProviderRecords)
	}
	fmt.Fprintf(tw, "\nSPF DNS-querying terms of %s after the change: %d of 10\n", trimDot(p.Request.Domain), p.SPFLookups)
	for _, x := range p.Warnings {
		fmt.Fprintf(tw, "warning: %s\n", x)
	}
	return tw.Flush()
}

func writeRecords(tw *tabwriter.Writer, recs []Record) {
	fmt.Fprintln(tw, "NAME\tTYPE\tVALUE\tPURPOSE")
	for _, r := range recs {
		v := r.Value
		if r.Type == "TXT" {
			v = `"` + v + `"`
		}
		purpose := string(r.Purpose)
		if r.Selector != "" {
			purpose += " (" + r.Selector + ")"
		}
		if r.Replaces != "" {
			purpose += ", replaces the current record"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Type, v, purpose)
	}
}

// Revoke returns the changes that withdraw the provider's right to sign and
// bounce for the domain, most urgent first: delete the DKIM records (the
// emergency step, which stops new signatures from verifying), then the
// return path or the delegation, then take the provider's include out of
// the SPF record (a record with Replaces set). Each record to delete is
// returned as planned; Action says which.
func (p *Plan) Revoke() []Change {
	var dkimRecs, rest []Change
	for _, r := range p.Records {
		switch r.Purpose {
		case PurposeDKIM:
			dkimRecs = append(dkimRecs, Change{Action: Delete, Record: r})
		case PurposeReturnPath, PurposeDelegation:
			rest = append(rest, Change{Action: Delete, Record: r})
		case PurposeSPF:
			if withoutInclude, ok := removeInclude(r.Value, p.Request.SPFInclude); ok {
				nr := r
				nr.Value, nr.Replaces = withoutInclude, r.Value
				rest = append(rest, Change{Action: Replace, Record: nr})
			}
		}
	}
	return append(dkimRecs, rest...)
}

// Action is what a Change does to a record.
type Action string

// The actions of a Change.
const (
	Add     Action = "add"
	Delete  Action = "delete"
	Replace Action = "replace" // Record.Replaces is the value replaced
)

// Change is one step of applying or withdrawing a plan.
type Change struct {
	Action Action `json:"action"`
	Record Record `json:"record"`
}

// Changes returns the changes that apply the plan: every record added, the
// SPF record replacing the current one when the plan changes it.
func (p *Plan) Changes() []Change {
	out := make([]Change, 0, len(p.Records))
	for _, r := range p.Records {
		a := Add
		if r.Replaces != "" {
			a = Replace
		}
		out = append(out, Change{Action: a, Record: r})
	}
	return out
}

// removeInclude returns record without its include: of domain.
func removeInclude(record, domain string) (string, bool) {
	words := strings.Fields(record)
	out := words[:0:0]
	found := false
	for _, w := range words {
		if strings.EqualFold(w, "include:"+trimDot(domain)) || strings.EqualFold(w, "+include:"+trimDot(domain)) {
			found = true
			continue
		}
		out = append(out, w)
	}
	return strings.Join(out, " "), found
}

// Step is one step of a key rotation.
type Step struct {
	// What the step does, for a person.
	What string `json:"what"`
	// Changes are the DNS changes of the step; none when the step is a
	// change of the signer's configuration or a wait.
	Changes []Change `json:"changes,omitempty"`
	// Wait is how long to wait before the next step.
	Wait time.Duration `json:"wait,omitempty"`
}

// Rotation returns the steps that move signing from selector from to
// selector to, two selectors of the plan (RFC 6376 §3.1: selectors exist so
// that keys can change): publish the new key and wait a TTL for resolvers'
// caches; sign with the new selector and wait a day for the messages signed
// with the old one to be delivered; then retire the old key with an empty
// p=, which says it is revoked (RFC 6376 §3.6.1). In the delegated and
// subdomain modes the provider publishes the keys, so the changes are to
// its records. The plan must hold the new selector's key (Request.Keys).
func (p *Plan) Rotation(from, to string) ([]Step, error) {
	if from == to || !slices.Contains(p.Request.Selectors, from) || !slices.Contains(p.Request.Selectors, to) {
		return nil, requestErr("Selectors", "rotation from %q to %q: two different selectors of the plan are needed", from, to)
	}
	recs := p.Records
	where := "the domain"
	if p.Request.Mode != SelfHosted {
		recs, where = p.ProviderRecords, "the provider"
	}
	var newKey, oldKey *Record
	for i := range recs {
		if recs[i].Purpose == PurposeDKIM && recs[i].Type == "TXT" {
			switch recs[i].Selector {
			case to:
				newKey = &recs[i]
			case from:
				oldKey = &recs[i]
			}
		}
	}
	if newKey == nil {
		return nil, requestErr("Keys", "rotation: no key for selector %q", to)
	}
	retired := Record{Name: p.keyName(from), Type: "TXT", Value: "v=DKIM1; p=", TTL: newKey.TTL, Purpose: PurposeDKIM, Selector: from}
	if oldKey != nil {
		retired.Replaces = oldKey.Value
	}
	ttl := time.Duration(p.Request.TTL) * time.Second
	return []Step{
		{What: fmt.Sprintf("%s publishes the key of selector %s", where, to), Changes: []Change{{Action: Add, Record: *newKey}}, Wait: ttl},
		{What: fmt.Sprintf("sign with selector %s instead of %s", to, from), Wait: 24 * time.Hour},
		{What: fmt.Sprintf("%s revokes the key of selector %s (an empty p=)", where, from), Changes: []Change{{Action: Replace, Record: retired}}},
	}, nil
}

// keyName is the name of the key record of a selector: under the domain
// (self-hosted), under the provider's target (delegated), or under the
// delegated subdomain.
func (p *Plan) keyName(sel string) string {
	switch p.Request.Mode {
	case Delegated:
		return sel + ".domainkey." + p.Request.Target
	case Subdomain:
		return dkimName(sel, p.DKIMDomain)
	}
	return dkimName(sel, p.Request.Domain)
}
