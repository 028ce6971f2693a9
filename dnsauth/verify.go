package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smarthost-go/smarthost/internal/dnsname"
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
// *VerifyOptions, checks the owner's records once.
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
}

// OK reports whether every record checked is published as planned on
// every server.
func (rep *Report) OK() bool {
	for _, r := range rep.Records {
		if r.Status != RecordOK {
			return false
		}
	}
	return true
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
// that matters.
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
// Verify never reads or fills r's cache: each round asks through a
// resolver of r's configuration with a cache of its own, so that what it
// sees is what the servers serve now, and r's other users are not
// disturbed. A recursive server's own cache keeps an old answer for its
// TTL; Verify reports that as RecordNotPropagated.
//
// A DNS failure while checking is a finding of the record it belongs to, never an error of Verify, which fails only for a plan or
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
		rep := v.round(ctx, p, recs)
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
	return &Resolver{
		servers: r.servers, attempts: r.attempts, udpSize: r.udpSize, maxTTL: r.maxTTL,
		now: r.now, log: r.log, udp: r.udp, tcp: r.tcp,
		cache: map[cacheKey]*entry{}, capacity: r.capacity, inflight: map[cacheKey]*call{},
	}
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

func (v *verifier) round(ctx context.Context, p *Plan, recs []Record) *Report {
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
	wg.Wait()
	return rep
}
