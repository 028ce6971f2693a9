package dnsauth

import (
	"fmt"
	"strings"

	"github.com/smarthost-go/smarthost/spf"
)

// planSPF returns the domain's SPF record with the provider's include
// merged in (nil when it is there already), its own DNS-querying terms
// after the change, and warnings.
func planSPF(r Request) (*Record, int, []string, error) {
	include := trimDot(r.SPFInclude)
	var spfs []string
	for _, t := range r.ExistingSPF {
		if !spf.IsSPF(t) {
			return nil, 0, nil, requestErr("ExistingSPF", "%.60q is not an SPF record (it does not start with v=spf1)", t)
		}
		spfs = append(spfs, t)
	}
	if len(spfs) > 1 {
		return nil, 0, nil, requestErr("ExistingSPF", "the domain publishes %d SPF records, which makes every check a permerror (RFC 7208 §4.5); merge them into one by hand first", len(spfs))
	}
	rec := Record{Name: r.Domain, Type: "TXT", TTL: r.TTL, Purpose: PurposeSPF}
	var warn []string
	if len(spfs) == 0 {
		rec.Value = "v=spf1 include:" + include + " ~all"
		warn = append(warn, fmt.Sprintf("%s publishes no SPF record: the plan creates one that ends in ~all; list the domain's other senders before making it -all", trimDot(r.Domain)))
		return &rec, 1, warn, nil
	}
	merged, changed, err := MergeSPF(spfs[0], include)
	if err != nil {
		return nil, 0, nil, requestErr("ExistingSPF", "%w", err)
	}
	parsed, _ := spf.Parse(merged)
	n := parsed.DNSTerms()
	if n > 10 {
		warn = append(warn, fmt.Sprintf("the SPF record of %s has %d DNS-querying terms of its own, more than the 10 RFC 7208 §4.6.4 allows in all: receivers will answer permerror; flatten it (Lint proposes how)", trimDot(r.Domain), n))
	}
	if !changed {
		return nil, n, warn, nil
	}
	rec.Value, rec.Replaces = merged, spfs[0]
	return &rec, n, warn, nil
}

// MergeSPF returns the SPF record text with include:domain added before its
// "all" mechanism (or, without one, after its last mechanism), every other
// term kept as written, in order, with its qualifier, and every modifier
// kept. changed is false when the record already includes domain. A text
// that does not parse as an SPF record (RFC 7208 §4.5, §12) is an error:
// it is reported, not merged.
func MergeSPF(record, domain string) (merged string, changed bool, err error) {
	rec, err := spf.Parse(record)
	if err != nil {
		return "", false, err
	}
	for _, t := range rec.Terms {
		if t.Mechanism == spf.MechInclude && strings.EqualFold(trimDot(t.Domain), trimDot(domain)) {
			return record, false, nil
		}
	}
	add := "include:" + trimDot(domain)
	// The record's own words, in order: Parse splits terms at spaces
	// (RFC 7208 §4.6.1), so word i+1 is Terms[i].
	words := strings.Fields(record)
	if len(words) != len(rec.Terms)+1 {
		return "", false, fmt.Errorf("spf: the terms of %.60q cannot be told apart", record)
	}
	at := len(words)
	lastMech := 0
	for i, t := range rec.Terms {
		if t.IsModifier() {
			continue
		}
		lastMech = i + 1
		if t.Mechanism == spf.MechAll {
			at = i + 1
			break
		}
	}
	if at == len(words) {
		at = lastMech + 1
	}
	out := make([]string, 0, len(words)+1)
	out = append(out, words[:at]...)
	out = append(out, add)
	out = append(out, words[at:]...)
	merged = strings.Join(out, " ")
	if _, err := spf.Parse(merged); err != nil {
		return "", false, fmt.Errorf("spf: the merged record does not parse: %w", err)
	}
	return merged, true, nil
}
