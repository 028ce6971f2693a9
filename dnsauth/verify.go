package dnsauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/spf"
)

// RecordStatus is what Verify found for one record of a plan.
type RecordStatus string

// The findings of Verify for a record.
const (
	// RecordOK: every server asked publishes the record as planned.
	RecordOK RecordStatus = "ok"
	// RecordMissing: nothing of the record's kind stands at its name.
	RecordMissing RecordStatus = "missing"
	// RecordWrong: a record of its kind stands at the name with another
	// value (Found), or a CNAME stands where the record should.
	RecordWrong RecordStatus = "wrong"
	// RecordConflict: the record cannot work as published: a CNAME beside
	// other data at the name (RFC 1034 §3.6.2, RFC 2181 §10.1), two SPF
	// records (RFC 7208 §4.5) or two DMARC records (RFC 7489 §6.6.3) at
	// the name, or the value a record replaces still published beside it.
	RecordConflict RecordStatus = "conflict"
	// RecordNotPropagated: some servers publish the record as planned and
	// others (Lagging) do not yet: an authoritative server that has not
	// loaded the change, or the recursive resolver's cache, which keeps
	// the old answer for its TTL.
	RecordNotPropagated RecordStatus = "not-propagated"
	// RecordError: a server could not be asked (a timeout, SERVFAIL,
	// REFUSED, an answer without the AA bit), and those that answered
	// publish the record as planned, or none answered. Err says which.
	RecordError RecordStatus = "error"
)

// Recursive is the Server of a ServerAnswer from the resolver's own
// (recursive) servers.
const Recursive = "recursive"

// VerifyOptions configures Verify. The zero value, like a nil
// *VerifyOptions, checks the owner's records once, without the SPF check.
type VerifyOptions struct {
	// Provider also checks the plan's ProviderRecords (the targets of the
	// CNAMEs, the delegated subdomain's zone), asking the provider's
	// authoritative servers. Default false: the owner's Records only.
	Provider bool
	// Nameservers maps the host name of an authoritative server (such as
	// "ns1.example.com", final dot optional) to the address to ask
	// ("192.0.2.53:53", "[2001:db8::53]:5353"), instead of its own
	// addresses on port 53: for private networks, and for tests whose
	// servers listen on other ports. Default: none.
	Nameservers map[string]string
	// SendingIP is an address the provider sends from. With it, Verify
	// checks that SPF for the return-path domain passes (RFC 7208 §4);
	// when it is not valid (the zero netip.Addr) that check is skipped
	// and the report says so.
	SendingIP netip.Addr
	// Poll, when positive, makes Verify check again every Poll until the
	// report is OK or ctx ends. Default 0: check once.
	Poll time.Duration
	// Progress, when set, is called on Verify's goroutine with the report
	// of each round, the last one included, before Verify waits for the
	// next round or returns. Default: none.
	Progress func(*Report)
}

// Report is the outcome of Verify.
type Report struct {
	// Domain is the plan's domain (the RFC5322.From domain), absolute.
	Domain string `json:"domain"`
	// Round is the number of rounds made, 1 for a single check.
	Round int `json:"round"`
	// Records are the findings for the records checked, in the plan's
	// order (the owner's, then the provider's).
	Records []RecordResult `json:"records"`
	// SPF, DKIM and DMARC are the end-to-end checks, made through the
	// recursive resolver as a receiver would.
	SPF   SPFCheck   `json:"spf"`
	DKIM  []KeyCheck `json:"dkim"`
	DMARC DMARCCheck `json:"dmarc"`
}

// OK reports whether every record checked is published as planned on
// every server, the SPF check passes (or was skipped, without a
// SendingIP), every key checked is usable, and DMARC passes.
func (rep *Report) OK() bool {
	for _, r := range rep.Records {
		if r.Status != RecordOK {
			return false
		}
	}
	if !rep.SPF.Skipped && rep.SPF.Status != spf.Pass {
		return false
	}
	if len(rep.DKIM) == 0 {
		return false
	}
	for _, k := range rep.DKIM {
		if k.Status != dmarc.Pass {
			return false
		}
	}
	return rep.DMARC.Status == dmarc.Pass
}

// RecordResult is the finding for one record of the plan.
type RecordResult struct {
	Record Record       `json:"record"`
	Status RecordStatus `json:"status"`
	// Found is what stands at the name when it is not the record
	// planned (RecordWrong, RecordConflict), one "TYPE data" string per
	// record, TXT data quoted as a zone file writes it: what the server
	// whose finding is reported holds (an authoritative one when any
	// answered; each server's own is in Servers).
	Found []string `json:"found,omitempty"`
	// Detail says why, for a person, with the RFC that makes it matter.
	Detail string `json:"detail,omitempty"`
	// Lagging names the servers that do not publish the record as
	// planned, when others do (RecordNotPropagated): authoritative
	// servers by host name, the recursive resolver as Recursive.
	Lagging []string `json:"lagging,omitempty"`
	// Servers is what each server answered: the recursive resolver
	// first, then each authoritative server of the record's zone.
	Servers []ServerAnswer `json:"servers"`
	// Err says which servers could not be asked, and why; nil when every
	// server answered.
	Err error `json:"-"`
}

// ServerAnswer is what one server publishes for a record.
type ServerAnswer struct {
	// Server is Recursive, the host name of an authoritative server
	// (absolute, lower case), or "authoritative servers" when they could
	// not be found; Addr is the address that answered, or the last tried.
	Server string       `json:"server"`
	Addr   string       `json:"addr,omitempty"`
	Status RecordStatus `json:"status"`
	Found  []string     `json:"found,omitempty"`
	Detail string       `json:"detail,omitempty"`
	// Err is why the server could not be asked (Status RecordError).
	Err error `json:"-"`
}

// Verify checks that the records of p are published, on every server
// that matters, and that they do what they are for.
//
// For each record (and each provider record with opts.Provider), it asks
// the resolver's own servers, as a receiver's recursive resolver would
// see the record, and, directly, every authoritative server of the
// record's zone. The zone is found by walking up from the record's name
// with NS queries through the recursive servers: the closest enclosing
// name with NS records of its own is the zone cut (RFC 1034 §4.3.2); an
// NS record of the plan, which hands a subdomain over, is published in
// the parent zone, so its walk starts at the parent (RFC 1034 §4.2.2).
// Each name server's addresses come from LookupNetIP (IPv4 first), port
// 53, or from opts.Nameservers. Each server is asked the record's own
// type and CNAME (for a CNAME record: TXT and MX, to find other data
// beside it), one question at a time, without following CNAMEs out of
// the zone, so that what the zone holds at the name is what is compared.
// CNAME targets and NS hosts compare as names (case-insensitive, final
// dot optional), TXT as text (the character-strings joined), MX by
// preference and host; the MX and NS records of a name compare as a set.
// An authoritative answer must carry the AA bit (RFC 1035 §4.1.1), except
// the referral that answers for an NS record in the parent zone.
//
// Then it checks the outcome end to end, through the recursive servers:
// SPF for the return-path domain from opts.SendingIP (RFC 7208 §4), each
// DKIM key through its CNAME (RFC 6376 §3.6.2.1, a selector kept for a
// later rotation without a key in the plan's Request is not checked when
// others have one), and DMARC for a message From postmaster@<domain> with
// that SPF result for bounces@<return-path domain> and a DKIM result for
// each key checked, pass when it is usable (RFC 7489 §3.1 alignment, §6.6
// evaluation).
//
// Verify never reads or fills r's cache: each round asks through a
// resolver of r's configuration with a cache of its own, so that what it
// sees is what the servers serve now, and r's other users are not
// disturbed. A recursive server's own cache keeps an old answer for its
// TTL; Verify reports that as RecordNotPropagated.
//
// A DNS failure while checking is a finding of the record or check it
// belongs to, never an error of Verify, which fails only for a plan or
// options it cannot use. With opts.Poll, Verify checks again until the
// report is OK or ctx ends; it returns the last report, and ctx's error
// when ctx ended first (in a single round too, whose findings are then
// incomplete).
func (r *Resolver) Verify(ctx context.Context, p *Plan, opts *VerifyOptions) (*Report, error) {
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	recs, err := verifyRecords(p, o.Provider)
	if err != nil {
		return nil, err
	}
	ns, err := nameserverAddrs(o.Nameservers)
	if err != nil {
		return nil, err
	}
	if o.Poll < 0 {
		return nil, fmt.Errorf("dnsauth: verify: negative Poll %v", o.Poll)
	}
	for round := 1; ; round++ {
		start := r.now()
		v := &verifier{r: r.fresh(), ns: ns}
		rep := v.round(ctx, p, recs, o.SendingIP)
		rep.Round = round
		r.log.DebugContext(ctx, "dnsauth verify", "domain", rep.Domain, "round", round, "ok", rep.OK(), "elapsed", r.now().Sub(start))
		if o.Progress != nil {
			o.Progress(rep)
		}
		if rep.OK() {
			return rep, nil
		}
		if err := ctx.Err(); err != nil || o.Poll == 0 {
			return rep, err
		}
		t := time.NewTimer(o.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return rep, ctx.Err()
		case <-t.C:
		}
	}
}

// fresh returns a resolver of r's configuration with an empty cache of
// its own.
func (r *Resolver) fresh() *Resolver {
	return &Resolver{config: r.config, cache: map[cacheKey]*entry{}, inflight: map[cacheKey]*call{}}
}

// verifyRecords checks the plan and returns the records to check, names
// absolute and types in upper case.
func verifyRecords(p *Plan, provider bool) ([]Record, error) {
	if p == nil {
		return nil, errors.New("dnsauth: verify: no plan")
	}
	for _, f := range []struct{ field, name string }{
		{"Request.Domain", p.Request.Domain}, {"ReturnPathDomain", p.ReturnPathDomain}, {"DKIMDomain", p.DKIMDomain},
	} {
		if _, err := dnsname.Absolute(f.name); err != nil || f.name == "." {
			return nil, fmt.Errorf("dnsauth: verify: plan %s %q is not a domain", f.field, f.name)
		}
	}
	if len(p.Request.Selectors) == 0 {
		return nil, errors.New("dnsauth: verify: plan without DKIM selectors")
	}
	recs := slices.Clone(p.Records)
	if provider {
		recs = append(recs, p.ProviderRecords...)
	}
	if len(recs) == 0 {
		return nil, errors.New("dnsauth: verify: plan without records")
	}
	for i := range recs {
		rec := &recs[i]
		bad := func(why string) error {
			return fmt.Errorf("dnsauth: verify: plan record %s %s %q: %s", rec.Name, rec.Type, rec.Value, why)
		}
		abs, err := dnsname.Absolute(rec.Name)
		if err != nil {
			return nil, bad(err.Error())
		}
		rec.Name, rec.Type = abs, strings.ToUpper(rec.Type)
		switch rec.Type {
		case "CNAME", "NS":
			if _, err := dnsname.Absolute(rec.Value); err != nil || strings.ContainsAny(rec.Value, " \t") {
				return nil, bad("the value is not a host name")
			}
		case "MX":
			if _, _, ok := parseMX(rec.Value); !ok {
				return nil, bad(`the value is not "preference host"`)
			}
		case "TXT":
			if rec.Value == "" {
				return nil, bad("empty text")
			}
		default:
			return nil, bad("Verify checks CNAME, TXT, MX and NS records")
		}
	}
	return recs, nil
}

// nameserverAddrs checks VerifyOptions.Nameservers and returns it keyed by
// lower-case absolute host names.
func nameserverAddrs(m map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for host, addr := range m {
		abs, err := dnsname.Absolute(host)
		if err != nil {
			return nil, fmt.Errorf("dnsauth: verify: Nameservers: %q: %w", host, err)
		}
		if h, port, err := net.SplitHostPort(addr); err != nil || h == "" || port == "" {
			return nil, fmt.Errorf("dnsauth: verify: Nameservers: the address of %s, %q, is not host:port", host, addr)
		}
		out[dnsname.Key(abs)] = addr
	}
	return out, nil
}

func parseMX(v string) (uint16, string, bool) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return 0, "", false
	}
	pref, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return 0, "", false
	}
	if _, err := dnsname.Absolute(f[1]); err != nil {
		return 0, "", false
	}
	return uint16(pref), f[1], true
}

// verifier is one round of Verify.
type verifier struct {
	r  *Resolver         // r.fresh(): a cache for this round only
	ns map[string]string // VerifyOptions.Nameservers, by Key
}

func (v *verifier) round(ctx context.Context, p *Plan, recs []Record, ip netip.Addr) *Report {
	rep := &Report{Domain: p.Request.Domain, Records: make([]RecordResult, len(recs))}
	var wg sync.WaitGroup
	for i, rec := range recs {
		var group []Record // the planned records of the same name and type
		for _, o := range recs {
			if o.Type == rec.Type && dnsname.Equal(dnsname.Escape(o.Name), dnsname.Escape(rec.Name)) {
				group = append(group, o)
			}
		}
		wg.Go(func() { rep.Records[i] = v.record(ctx, rec, group) })
	}
	wg.Go(func() { v.endToEnd(ctx, p, ip, rep) })
	wg.Wait()
	return rep
}

// SPFCheck is the end-to-end SPF check: check_host() for the return-path
// domain from the provider's sending address (RFC 7208 §4).
type SPFCheck struct {
	// Domain is the return-path domain, Sender the MAIL FROM checked
	// (bounces@<Domain>) and IP the sending address (invalid when the
	// check was skipped).
	Domain string     `json:"domain"`
	Sender string     `json:"sender"`
	IP     netip.Addr `json:"ip"`
	// Skipped: VerifyOptions.SendingIP was not valid, so SPF was not
	// checked; Status is empty and Err says so.
	Skipped bool `json:"skipped,omitempty"`
	// Status and Err are those of Result: Err is nil exactly on pass.
	Status msgauth.Status `json:"status,omitempty"`
	Err    error          `json:"-"`
	// Result is the whole outcome of package spf, with its Trace.
	Result *spf.Result `json:"-"`
}

// KeyCheck is the end-to-end check of one DKIM key: its record at
// <selector>._domainkey.<DKIM domain> (RFC 6376 §3.6.2.1), through the
// CNAME of the delegated mode, is a key record that parses and is not
// revoked (RFC 6376 §3.6.1).
type KeyCheck struct {
	Selector string `json:"selector"`
	// Name is where the key is looked up; Canonical the end of its
	// CNAME chain, where the record was found ("" when none was).
	Name      string `json:"name"`
	Canonical string `json:"canonical,omitempty"`
	// Status is pass for a usable key; permerror when there is no key
	// (Err wraps dkim.ErrNoRecord), when it does not parse (Err wraps the
	// error of dkim.ParseKeyRecord: dkim.ErrSyntax, or dkim.ErrKey for a
	// key type it does not know) or when it is revoked (Revoked; Err wraps
	// dkim.ErrKey); temperror on a DNS failure (dkim.ErrDNS).
	Status  msgauth.Status `json:"status"`
	Revoked bool           `json:"revoked,omitempty"`
	Err     error          `json:"-"`
	// Key is the parsed record, when one parsed.
	Key *dkim.KeyRecord `json:"-"`
}

// DMARCCheck is the end-to-end DMARC check: a message From
// postmaster@<domain>, with the SPF check's result for the return path
// (pass when the SPF check was skipped) and, for each key checked, a
// DKIM result with d= the plan's DKIM domain, pass when the key is usable
// and the key check's status otherwise, evaluated as a receiver would
// (RFC 7489 §6.6, RFC 9989 §5.3).
type DMARCCheck struct {
	// Domain is the author domain evaluated, absolute.
	Domain string `json:"domain"`
	// Status is the DMARC result; none means that no DMARC record applies,
	// which is not a pass: Err says that DMARC is not published.
	Status msgauth.Status `json:"status"`
	// Policy is the policy that applies (p=, sp= or np=) and Record the
	// record applied, "" when none does.
	Policy dmarc.Policy `json:"policy,omitempty"`
	Record string       `json:"record,omitempty"`
	// SPF and DKIM say whether each gave an aligned pass (pass), a pass
	// that did not align (fail), or no pass (none) (RFC 7489 §3.1).
	SPF  msgauth.Status `json:"spf_aligned,omitempty"`
	DKIM msgauth.Status `json:"dkim_aligned,omitempty"`
	Err  error          `json:"-"`
	// Result is the whole outcome of package dmarc.
	Result *dmarc.Result `json:"-"`
}

// endToEnd makes the SPF, DKIM and DMARC checks of rep.
func (v *verifier) endToEnd(ctx context.Context, p *Plan, ip netip.Addr, rep *Report) {
	rp := p.ReturnPathDomain
	rep.SPF = SPFCheck{Domain: rp, Sender: "bounces@" + trimDot(rp), IP: ip}
	if !ip.IsValid() {
		rep.SPF.Skipped = true
		rep.SPF.Err = errors.New("dnsauth: SPF not checked: no sending IP (VerifyOptions.SendingIP)")
	} else if c, err := spf.NewChecker(v.r, nil); err != nil {
		rep.SPF.Status, rep.SPF.Err = spf.TempError, err
	} else {
		res := c.CheckHost(ctx, ip, trimDot(rp), rep.SPF.Sender)
		rep.SPF.Status, rep.SPF.Err, rep.SPF.Result = res.Status, res.Err, res
	}

	sels := p.Request.Selectors
	if len(p.Request.Keys) > 0 {
		sels = slices.DeleteFunc(slices.Clone(sels), func(s string) bool { return p.Request.Keys[s] == nil })
		if len(sels) == 0 {
			sels = p.Request.Selectors
		}
	}
	for _, sel := range sels {
		rep.DKIM = append(rep.DKIM, v.key(ctx, sel, p.DKIMDomain))
	}

	var results []msgauth.Result
	if rep.SPF.Result != nil {
		results = append(results, rep.SPF.Result)
	} else {
		results = append(results, msgauth.Entries{&authres.SPFResult{Value: authres.ResultPass, From: rep.SPF.Sender}})
	}
	for _, k := range rep.DKIM {
		results = append(results, msgauth.Entries{&authres.GenericResult{Method: "dkim", Value: authres.ResultValue(k.Status),
			Params: map[string]string{"header.d": trimDot(p.DKIMDomain), "header.s": k.Selector}}})
	}
	rep.DMARC = DMARCCheck{Domain: p.Request.Domain}
	ev, err := dmarc.NewEvaluator(v.r, nil)
	if err != nil {
		rep.DMARC.Status, rep.DMARC.Err = dmarc.TempError, err
		return
	}
	header := mail.Header{"From": {"postmaster@" + trimDot(p.Request.Domain)}}
	res := ev.Evaluate(ctx, header, results...)
	d := &rep.DMARC
	d.Status, d.Err, d.Result, d.Policy, d.SPF, d.DKIM = res.Status, res.Err, res, res.Policy, res.SPF, res.DKIM
	if res.Record != nil {
		d.Record = res.Record.String()
	}
	if res.Status == dmarc.None {
		d.Err = fmt.Errorf("dnsauth: DMARC is not published for %s, and none is not a pass: %w", trimDot(p.Request.Domain), res.Err)
	}
}

// key checks the DKIM key of one selector.
func (v *verifier) key(ctx context.Context, sel, domain string) KeyCheck {
	k := KeyCheck{Selector: sel, Name: dkimName(sel, domain)}
	a, err := v.r.Lookup(ctx, k.Name, dns.TypeTXT)
	switch {
	case dnsname.IsNotFound(err):
		k.Status, k.Err = dkim.PermError, fmt.Errorf("%w at %s", dkim.ErrNoRecord, k.Name)
		return k
	case err != nil:
		k.Status, k.Err = dkim.TempError, fmt.Errorf("%w: key %s: %w", dkim.ErrDNS, k.Name, err)
		return k
	}
	k.Canonical = a.Canonical
	var first error
	for _, t := range dnsrr.TXTs(a.Records) {
		kr, err := dkim.ParseKeyRecord(t)
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		if k.Key == nil || k.Key.Revoked {
			k.Key = kr
		}
	}
	switch {
	case k.Key == nil:
		k.Status, k.Err = dkim.PermError, fmt.Errorf("dnsauth: the key record at %s does not parse: %w", k.Name, first)
	case k.Key.Revoked:
		k.Status, k.Revoked = dkim.PermError, true
		k.Err = fmt.Errorf("%w: the key at %s is revoked (an empty p=, RFC 6376 §3.6.1)", dkim.ErrKey, k.Name)
	default:
		k.Status = dkim.Pass
	}
	return k
}
