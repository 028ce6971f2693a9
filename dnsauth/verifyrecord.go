package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
	"github.com/smarthost-go/smarthost/spf"
)

// record checks one record on the recursive servers and on each
// authoritative server of its zone.
func (v *verifier) record(ctx context.Context, rec Record, group []Record) RecordResult {
	answers := []ServerAnswer{{Server: Recursive}}
	start := rec.Name
	if rec.Type == "NS" {
		start = parentName(rec.Name)
	}
	hosts, err := v.zoneServers(ctx, start)
	if err != nil {
		answers = append(answers, ServerAnswer{Server: "authoritative servers", Status: RecordError, Err: err})
	}
	for _, h := range hosts {
		answers = append(answers, ServerAnswer{Server: h})
	}
	var wg sync.WaitGroup
	for i := range answers {
		a := &answers[i]
		if a.Err != nil {
			continue
		}
		wg.Go(func() {
			var addrs []string // nil: the recursive servers
			if a.Server != Recursive {
				var err error
				if addrs, err = v.addrsOf(ctx, a.Server); err != nil {
					a.Status, a.Err = RecordError, fmt.Errorf("dnsauth: the address of %s: %w", a.Server, err)
					return
				}
			}
			pub, addr, err := v.observe(ctx, addrs, rec)
			a.Addr = addr
			if err != nil {
				a.Status, a.Err = RecordError, err
				return
			}
			var found []dns.RR
			a.Status, found, a.Detail = judgeAnswer(rec, group, pub)
			a.Found = showRRs(found)
		})
	}
	wg.Wait()
	return combineAnswers(rec, answers)
}

// parentName is the name one label up; "." for a top-level name.
func parentName(abs string) string {
	_, rest, _ := strings.Cut(abs, ".")
	if rest == "" {
		return "."
	}
	return rest
}

// zoneServers returns the host names of the authoritative servers of the
// zone holding name, sorted: the NS records of the closest enclosing name
// that has NS records of its own (RFC 1034 §4.3.2), asked through the
// recursive servers. A name that is a CNAME is no zone cut.
func (v *verifier) zoneServers(ctx context.Context, name string) ([]string, error) {
	for n := name; ; n = parentName(n) {
		a, err := v.r.Lookup(ctx, n, dns.TypeNS)
		if err == nil && dnsname.Equal(a.Canonical, dnsname.Escape(n)) {
			var hosts []string
			for _, ns := range dnsrr.NSs(a.Records) {
				if h := dnsname.Key(ns.Host); !slices.Contains(hosts, h) {
					hosts = append(hosts, h)
				}
			}
			slices.Sort(hosts)
			return hosts, nil
		}
		if err != nil && !dnsname.IsNotFound(err) {
			return nil, fmt.Errorf("dnsauth: finding the zone of %s: %w", name, err)
		}
		if n == "." {
			return nil, fmt.Errorf("dnsauth: finding the zone of %s: no NS records at or above it", name)
		}
	}
}

// addrsOf returns the addresses (host:port) to ask for the name server
// host: the one of VerifyOptions.Nameservers, else its addresses on port
// 53, IPv4 first.
func (v *verifier) addrsOf(ctx context.Context, host string) ([]string, error) {
	if a, ok := v.ns[dnsname.Key(host)]; ok {
		return []string{a}, nil
	}
	ips, err := v.r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.Unmap().String(), "53"))
	}
	return out, nil
}

// published is what one server holds at a record's name.
type published struct {
	cnames []dns.RR // CNAME records owned by the name
	own    []dns.RR // records of the record's type owned by the name
	other  []dns.RR // for a CNAME record: TXT and MX records owned by the name
}

// observe asks one server (addrs, tried in turn; nil: the recursive
// servers with failover) what it holds at rec's name. It returns the
// address that answered.
func (v *verifier) observe(ctx context.Context, addrs []string, rec Record) (published, string, error) {
	qtype := dns.StringToType[rec.Type]
	types := []uint16{qtype, dns.TypeCNAME}
	if qtype == dns.TypeCNAME {
		types = []uint16{dns.TypeCNAME, dns.TypeTXT, dns.TypeMX}
	}
	name := dnsname.Escape(rec.Name)
	var pub published
	var from string
	for _, t := range types {
		msg, addr, err := v.ask(ctx, addrs, name, t)
		from = addr
		if err != nil {
			return published{}, from, err
		}
		rrs := msg.Answer
		if t == dns.TypeNS {
			rrs = append(slices.Clip(rrs), msg.Ns...) // a referral from the parent
		}
		for _, rr := range rrs {
			h := rr.Header()
			if !dnsname.Equal(h.Name, name) {
				continue
			}
			var to *[]dns.RR
			switch {
			case h.Rrtype == dns.TypeCNAME:
				to = &pub.cnames
			case h.Rrtype == qtype:
				to = &pub.own
			case qtype == dns.TypeCNAME && (h.Rrtype == dns.TypeTXT || h.Rrtype == dns.TypeMX):
				to = &pub.other
			default:
				continue
			}
			if !slices.ContainsFunc(*to, func(o dns.RR) bool { return dns.IsDuplicate(o, rr) }) {
				*to = append(*to, rr)
			}
		}
	}
	return pub, from, nil
}

// ask sends one question, without following CNAMEs: to the recursive
// servers (addrs nil), or to one authoritative server at any of addrs,
// each tried as many times as the resolver's Attempts.
func (v *verifier) ask(ctx context.Context, addrs []string, name string, qtype uint16) (*dns.Msg, string, error) {
	if addrs == nil {
		return v.r.exchange(ctx, name, qtype)
	}
	var last error
	var from string
	for range v.r.attempts {
		for _, a := range addrs {
			msg, _, err := v.r.exchangeOne(ctx, a, name, qtype, true)
			from = a
			if err == nil && !msg.Authoritative && !(qtype == dns.TypeNS && len(msg.Answer) == 0) {
				// RFC 1035 §4.1.1: the server does not hold the zone (a
				// lame delegation), or answered from a cache.
				return nil, from, dnsname.Temporary(name, a, "answer without the AA bit: the server is not authoritative for the zone")
			}
			if err == nil {
				return msg, from, nil
			}
			if ctx.Err() != nil {
				return nil, from, err
			}
			last = err
		}
	}
	return nil, from, last
}

// judgeAnswer compares what one server holds at the name with the planned
// record; group is every planned record of that name and type, which MX
// and NS records compare with as a set.
func judgeAnswer(rec Record, group []Record, pub published) (RecordStatus, []dns.RR, string) {
	if rec.Type == "CNAME" {
		switch {
		case len(pub.cnames) == 0 && len(pub.other) == 0:
			return RecordMissing, nil, "no CNAME at the name"
		case len(pub.cnames) == 0:
			return RecordWrong, pub.other, "other records and no CNAME at the name"
		case len(pub.cnames) > 1:
			return RecordConflict, pub.cnames, "several CNAME records at one name (RFC 2181 §10.1)"
		case len(pub.other) > 0:
			return RecordConflict, append(slices.Clip(pub.cnames), pub.other...),
				"a CNAME beside other data at the name (RFC 1034 §3.6.2): resolvers may answer with either"
		case !matchesPlanned(rec, pub.cnames[0]):
			return RecordWrong, pub.cnames, "the CNAME points elsewhere"
		}
		return RecordOK, nil, ""
	}
	if len(pub.cnames) > 0 {
		if len(pub.own) > 0 {
			return RecordConflict, append(slices.Clip(pub.cnames), pub.own...),
				fmt.Sprintf("a CNAME beside %s records at the name (RFC 1034 §3.6.2): resolvers may answer with either", rec.Type)
		}
		return RecordWrong, pub.cnames, fmt.Sprintf("a CNAME stands at the name, so no %s record can (RFC 1034 §3.6.2)", rec.Type)
	}
	own := pub.own
	kind := ""
	if rec.Type == "TXT" {
		switch {
		case spf.IsSPF(rec.Value):
			kind = "SPF"
			own = slices.DeleteFunc(slices.Clone(own), func(rr dns.RR) bool { return !spf.IsSPF(txtOf(rr)) })
		case dmarc.IsDMARCRecord(rec.Value):
			kind = "DMARC"
			own = slices.DeleteFunc(slices.Clone(own), func(rr dns.RR) bool { return !dmarc.IsDMARCRecord(txtOf(rr)) })
		}
	}
	if len(own) == 0 {
		if kind != "" {
			return RecordMissing, nil, "no " + kind + " record at the name"
		}
		return RecordMissing, nil, "no " + rec.Type + " record at the name"
	}
	has := func(value string) bool {
		r := rec
		r.Value = value
		return slices.ContainsFunc(own, func(rr dns.RR) bool { return matchesPlanned(r, rr) })
	}
	if rec.Type == "TXT" {
		switch {
		case kind != "" && len(own) > 1 && rec.Replaces != "" && has(rec.Value) && has(rec.Replaces):
			return RecordConflict, own, "the record it replaces is still published beside it: two " + kind + " records " + multipleEffect(kind)
		case kind != "" && len(own) > 1:
			return RecordConflict, own, fmt.Sprintf("%d %s records at the name %s", len(own), kind, multipleEffect(kind))
		case has(rec.Value):
			return RecordOK, nil, ""
		case rec.Replaces != "" && len(own) == 1 && has(rec.Replaces):
			return RecordWrong, own, "the record it replaces is still published, unchanged"
		}
		return RecordWrong, own, "the text differs"
	}
	if !has(rec.Value) {
		return RecordWrong, own, "the " + rec.Type + " records differ"
	}
	var extra []dns.RR
	for _, rr := range own {
		if !slices.ContainsFunc(group, func(g Record) bool { return matchesPlanned(g, rr) }) {
			extra = append(extra, rr)
		}
	}
	if len(extra) > 0 {
		return RecordWrong, own, fmt.Sprintf("%s records not in the plan stand beside it", rec.Type)
	}
	return RecordOK, nil, ""
}

func multipleEffect(kind string) string {
	if kind == "SPF" {
		return "make every SPF check a permerror (RFC 7208 §4.5)"
	}
	return "make receivers apply no policy (RFC 7489 §6.6.3)"
}

// matchesPlanned reports whether rr is the planned record rec: CNAME and NS
// targets as names, TXT as text, MX as preference and host.
func matchesPlanned(rec Record, rr dns.RR) bool {
	name := func(s string) string { return dnsname.Escape(s) }
	switch rr := rr.(type) {
	case *dns.CNAME:
		return rec.Type == "CNAME" && dnsname.Equal(rr.Target, name(rec.Value))
	case *dns.NS:
		return rec.Type == "NS" && dnsname.Equal(rr.Ns, name(rec.Value))
	case *dns.MX:
		pref, host, ok := parseMX(rec.Value)
		return rec.Type == "MX" && ok && rr.Preference == pref && dnsname.Equal(rr.Mx, name(host))
	case *dns.TXT:
		return rec.Type == "TXT" && txtOf(rr) == rec.Value
	}
	return false
}

func txtOf(rr dns.RR) string { return strings.Join(dnsrr.TXTs([]dns.RR{rr}), "") }

// showRR writes a record found as "TYPE data", TXT data quoted as a zone
// file holds it.
func showRR(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.CNAME:
		return "CNAME " + rr.Target
	case *dns.NS:
		return "NS " + rr.Ns
	case *dns.MX:
		return fmt.Sprintf("MX %d %s", rr.Preference, rr.Mx)
	case *dns.TXT:
		return "TXT " + QuoteTXT(txtOf(rr))
	}
	h := rr.Header()
	return dns.TypeToString[h.Rrtype] + " " + strings.TrimPrefix(rr.String(), h.String())
}

func showRRs(rrs []dns.RR) []string {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = showRR(rr)
	}
	return out
}

// findingSeverity orders the findings of servers none of which has the record:
// the worst is reported.
var findingSeverity = map[RecordStatus]int{RecordMissing: 1, RecordWrong: 2, RecordConflict: 3}

// combineAnswers makes the finding for a record from the answers of its servers.
func combineAnswers(rec Record, answers []ServerAnswer) RecordResult {
	res := RecordResult{Record: rec, Servers: answers}
	var ok, notOK []ServerAnswer
	var errs []error
	for _, a := range answers {
		switch a.Status {
		case RecordError:
			errs = append(errs, fmt.Errorf("%s: %w", a.Server, a.Err))
		case RecordOK:
			ok = append(ok, a)
		default:
			notOK = append(notOK, a)
		}
	}
	res.Err = errors.Join(errs...)
	switch {
	case len(ok) == 0 && len(notOK) == 0:
		res.Status, res.Detail = RecordError, "no server could be asked"
	case len(notOK) == 0 && len(errs) > 0:
		res.Status = RecordError
		res.Detail = fmt.Sprintf("published on %s; %d server(s) could not be asked", serverNames(ok), len(errs))
	case len(notOK) == 0:
		res.Status = RecordOK
	case len(ok) > 0:
		res.Status = RecordNotPropagated
		var lag []string
		for _, a := range notOK {
			res.Lagging = append(res.Lagging, a.Server)
			lag = append(lag, fmt.Sprintf("%s (%s: %s)", a.Server, a.Status, a.Detail))
		}
		res.Detail = fmt.Sprintf("published on %s; not on %s", serverNames(ok), strings.Join(lag, ", "))
	default:
		// No server has it: the worst finding of the authoritative
		// servers, or the recursive one's when none answered.
		cands := slices.DeleteFunc(slices.Clone(notOK), func(a ServerAnswer) bool { return a.Server == Recursive })
		if len(cands) == 0 {
			cands = notOK
		}
		w := cands[0]
		for _, a := range cands[1:] {
			if findingSeverity[a.Status] > findingSeverity[w.Status] {
				w = a
			}
		}
		res.Status, res.Found, res.Detail = w.Status, w.Found, w.Detail
		if len(w.Found) > 0 {
			res.Detail += ": " + strings.Join(w.Found, ", ")
		}
	}
	return res
}

func serverNames(as []ServerAnswer) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Server
	}
	return strings.Join(out, ", ")
}
