package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// UpdaterOptions configures an Updater. The zero value, like a nil
// *UpdaterOptions, gives the defaults.
type UpdaterOptions struct {
	// Timeout is the time one exchange with the server (a query, or the
	// update) may take. Default 5s.
	Timeout time.Duration
	// Fudge is the number of seconds the server's clock may differ from
	// Now for a TSIG signature to verify (RFC 8945 §4.2, §10, which
	// recommends 300). Default 300.
	Fudge uint16
	// Now is the clock of the TSIG Time Signed field (RFC 8945 §4.2).
	// Default time.Now.
	Now func() time.Time
	// Logger receives one debug record per Apply. Default: discard.
	Logger *slog.Logger
}

// Updater applies changes to a zone on its primary server by DNS UPDATE
// (RFC 2136), signed with a TSIG key (RFC 8945). It is safe for concurrent
// use; two pushes to one zone at once are kept apart by the prerequisites
// of each, as with any other writer of the zone.
type Updater struct {
	server  string
	zone    string // absolute presentation form, lower case
	key     *TSIGKey
	timeout time.Duration
	fudge   uint16
	now     func() time.Time
	log     *slog.Logger

	// beforeSend, for tests, runs between reading the zone and sending
	// the update.
	beforeSend func()
}

// NewUpdater returns an Updater for zone (its apex, such as
// "example.com") on server ("host:port"; a host without a port gets 53),
// which must be the zone's primary, as named in its SOA MNAME (RFC 2136
// §4), or a server that forwards updates to it. Updates are signed with
// key; a nil key sends them unsigned, which a server accepts only when it
// allows updates by the client's address.
func NewUpdater(server, zone string, key *TSIGKey, opts *UpdaterOptions) (*Updater, error) {
	var o UpdaterOptions
	if opts != nil {
		o = *opts
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	if host, _, _ := net.SplitHostPort(server); host == "" {
		return nil, fmt.Errorf("dnsauth: updater: no server")
	}
	abs, err := dnsname.Absolute(zone)
	if err != nil || abs == "." {
		return nil, fmt.Errorf("dnsauth: updater: zone %q is not a domain name", zone)
	}
	if o.Timeout < 0 {
		return nil, errors.New("dnsauth: updater: negative Timeout")
	}
	u := &Updater{server: server, zone: dnsname.Key(dnsname.Escape(abs)), key: key,
		timeout: 5 * time.Second, fudge: 300, now: time.Now, log: o.Logger}
	if o.Timeout > 0 {
		u.timeout = o.Timeout
	}
	if o.Fudge > 0 {
		u.fudge = o.Fudge
	}
	if o.Now != nil {
		u.now = o.Now
	}
	if u.log == nil {
		u.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return u, nil
}

// Apply makes the changes in the zone, or none of them. It reads what the
// zone holds at the names of the changes, by queries over TCP to the
// server, and decides change by change: a record already there is skipped
// (whatever its TTL), a record
// whose place holds different data is a conflict (see below), and the
// rest is sent as one UPDATE message, which the server applies whole or
// not at all (RFC 2136 §3.4). The message's prerequisites (§2.4) assert
// that every RRset read is still as it was read, so that data changed
// between reading and updating makes the server refuse the whole update
// (YXDOMAIN, YXRRSET, NXRRSET or NXDOMAIN, §3.2) instead of being
// overwritten. Apply then reads the zone again and decides again: a
// conflict is reported; without one (a record was added beside those
// read, say another TXT record at the apex) it sends again, up to three
// times in all. When every change is skipped, the prerequisites are still
// sent, alone, so that the server confirms in a signed answer what was
// read.
//
// What conflicts: a CNAME to add where the name holds other data or
// another CNAME; a TXT, MX or NS record where the name is an alias, or
// where a different record of its kind is there (another SPF record beside
// the domain's, which may hold other TXT records such as a site
// verification; another DMARC record; any other key at a DKIM selector;
// another MX or NS); a replace (the SPF record with the provider's include)
// whose old value is gone. A delete of a record that is not there is
// skipped.
//
// On a conflict, nothing is changed, and Apply returns the result, which
// says per change what was found, with an error wrapping ErrConflict. A
// server that refuses the update (REFUSED, NOTAUTH, a TSIG that does not
// verify) gives an error wrapping ErrRefused. An update sent that gets no
// usable answer leaves its changes OutcomeUnknown. The result is nil only
// when the changes themselves are bad (ErrRequest: a record outside the
// zone, an unknown action).
func (u *Updater) Apply(ctx context.Context, changes []Change) (*PushResult, error) {
	start := u.now()
	res, rcode, err := u.apply(ctx, changes)
	attrs := []any{"zone", u.zone, "server", u.server, "changes", len(changes), "rcode", rcode, "elapsed", u.now().Sub(start)}
	if res != nil {
		n := map[Outcome]int{}
		for _, c := range res.Changes {
			n[c.Outcome]++
		}
		attrs = append(attrs, "applied", n[OutcomeApplied], "skipped", n[OutcomeSkipped], "conflicts", n[OutcomeConflict])
	}
	if u.key != nil {
		attrs = append(attrs, "key", u.key.Name())
	}
	u.log.DebugContext(ctx, "dns update", append(attrs, "err", err)...)
	return res, err
}

// maxAttempts is how many times Apply reads and sends when the server
// finds that the zone changed in between, but reading it again shows no
// conflict (a record added beside those read, such as another TXT record
// at the apex).
const maxAttempts = 3

func (u *Updater) apply(ctx context.Context, changes []Change) (*PushResult, string, error) {
	pcs, err := checkChanges(u.zone, changes)
	if err != nil {
		return nil, "", err
	}
	res := newResult(rawName(u.zone), changes)
	res.Server = u.server
	if len(pcs) == 0 {
		return res, "", nil
	}
	for attempt := 1; ; attempt++ {
		data, err := u.read(ctx, pcs)
		if err != nil {
			setReason(res, "the zone could not be read")
			return res, "", fmt.Errorf("dnsauth: update of %s: reading the zone: %w", u.zone, err)
		}
		d := decide(pcs, data)
		fill(res, d)
		if d.conflicts > 0 {
			return res, "", conflictError(res, u.zone)
		}
		if u.beforeSend != nil {
			u.beforeSend()
		}
		reply, unknown, err := u.send(ctx, d)
		rcode := ""
		if reply != nil {
			rcode = dns.RcodeToString[reply.Rcode]
		}
		if err != nil {
			outcome := OutcomeNotApplied
			if unknown {
				outcome = OutcomeUnknown
			}
			for i, s := range d.steps {
				if s.changes() {
					res.Changes[i].Outcome, res.Changes[i].Reason = outcome, "the update failed"
				}
			}
			return res, rcode, err
		}
		if reply.Rcode == dns.RcodeSuccess {
			for i, s := range d.steps {
				if s.changes() {
					res.Changes[i].Outcome = OutcomeApplied
				}
			}
			return res, rcode, nil
		}
		// §3.2: a prerequisite failed and nothing was changed: the zone
		// changed since it was read. Read it again, to find the conflict
		// or, if there is none, to try again.
		if attempt == maxAttempts {
			why := fmt.Sprintf("the zone kept changing while the update was sent: the server answered %s to the prerequisites (RFC 2136 §3.2) %d times; nothing was changed", rcode, attempt)
			for i, s := range d.steps {
				if s.changes() {
					res.Changes[i].Outcome, res.Changes[i].Reason = OutcomeConflict, why
				}
			}
			return res, rcode, conflictError(res, u.zone)
		}
	}
}

// newResult is the result of a push that has changed nothing yet.
func newResult(zone string, changes []Change) *PushResult {
	res := &PushResult{Zone: zone, Changes: make([]ChangeResult, len(changes))}
	for i, c := range changes {
		res.Changes[i] = ChangeResult{Change: c, Outcome: OutcomeNotApplied}
	}
	return res
}

// fill sets the outcomes that decide found in res; the changes to make
// are OutcomeNotApplied until they are made.
func fill(res *PushResult, d decision) {
	for i, s := range d.steps {
		c := &res.Changes[i]
		c.Outcome, c.Found, c.Reason = s.outcome, s.found, s.reason
		if s.outcome == OutcomeApplied {
			c.Outcome = OutcomeNotApplied
			if d.conflicts > 0 {
				c.Reason = "not applied: another change conflicts, and a push is all or nothing"
			}
		}
	}
}

func setReason(res *PushResult, reason string) {
	for i := range res.Changes {
		res.Changes[i].Reason = reason
	}
}

// conflictError summarizes the conflicts of res.
func conflictError(res *PushResult, zone string) error {
	cs := res.Conflicts()
	if len(cs) == 0 {
		return fmt.Errorf("%w: %s: nothing was changed", ErrConflict, zone)
	}
	first := cs[0]
	msg := fmt.Sprintf("%s %s: %s", first.Change.Record.Name, first.Change.Record.Type, first.Reason)
	if len(first.Found) > 0 {
		msg += " (found " + first.Found[0].Type + " " + quoteIf(first.Found[0].Type, first.Found[0].Value) + ")"
	}
	return fmt.Errorf("%w: %s: %d of %d changes conflict, nothing was changed; %s", ErrConflict, zone, len(cs), len(res.Changes), msg)
}

// send sends the update of d, signed, over TCP, and checks the answer.
// An answer other than NOERROR or a failed prerequisite is an error;
// unknown says whether the update may have been applied all the same (no
// answer came, or one that cannot be trusted).
func (u *Updater) send(ctx context.Context, d decision) (reply *dns.Msg, unknown bool, err error) {
	m := new(dns.Msg)
	m.SetUpdate(u.zone)
	m.Answer = d.prereq // §2.4: the prerequisite section
	for _, s := range d.steps {
		for _, r := range s.del { // §2.5.4: delete an RR from an RRset
			rr := dns.Copy(r.rr)
			rr.Header().Class, rr.Header().Ttl = dns.ClassNONE, 0
			m.Ns = append(m.Ns, rr)
		}
		for _, r := range s.add { // §2.5.1: add to an RRset
			rr := dns.Copy(r)
			rr.Header().Class = dns.ClassINET
			m.Ns = append(m.Ns, rr)
		}
	}
	c := &dns.Client{Net: "tcp", Timeout: u.timeout}
	if u.key != nil {
		m.SetTsig(u.key.Name(), u.key.wireAlgorithm(), u.fudge, u.now().Unix())
		c.TsigProvider = tsigProvider{u.key}
	}
	reply, _, err = c.ExchangeContext(ctx, m, u.server)
	fail := func(unknown bool, format string, args ...any) (*dns.Msg, bool, error) {
		return reply, unknown, fmt.Errorf("dnsauth: update of %s at %s: %s", u.zone, u.server, fmt.Sprintf(format, args...))
	}
	if reply == nil {
		var oe *net.OpError
		unknown = !(errors.As(err, &oe) && oe.Op == "dial")
		return nil, unknown, fmt.Errorf("dnsauth: update of %s at %s: %w", u.zone, u.server, err)
	}
	if !reply.Response || reply.Opcode != dns.OpcodeUpdate {
		return fail(true, "the answer is not a response to an update")
	}
	t := reply.IsTsig()
	switch {
	case reply.Rcode == dns.RcodeNotAuth || reply.Rcode == dns.RcodeRefused:
		// §3.3, RFC 8945 §5.2: refused; the TSIG of such an answer may be
		// unsigned (§5.3.2), so it is not needed to believe a refusal.
		why := dns.RcodeToString[reply.Rcode]
		if t != nil && t.Error != 0 {
			why += " (TSIG " + dns.RcodeToString[int(t.Error)] + ")"
		}
		if u.key == nil && reply.Rcode == dns.RcodeNotAuth {
			why += "; the update was not signed"
		}
		return reply, false, fmt.Errorf("%w: %s at %s answered %s; nothing was changed", ErrRefused, u.zone, u.server, why)
	case err != nil:
		return fail(true, "the answer's TSIG does not verify: %v", err)
	case u.key != nil && t == nil && reply.Rcode == dns.RcodeSuccess:
		return fail(true, "the answer is not signed (RFC 8945 §5.3): its outcome cannot be trusted")
	}
	switch reply.Rcode {
	case dns.RcodeSuccess, dns.RcodeYXDomain, dns.RcodeYXRrset, dns.RcodeNXRrset, dns.RcodeNameError:
		return reply, false, nil
	case dns.RcodeNotZone:
		return fail(false, "NOTZONE: a record is outside the zone, or the zone is not %s (RFC 2136 §3.1.1)", u.zone)
	}
	return fail(false, "the server answered %s; nothing was changed", dns.RcodeToString[reply.Rcode])
}

// read queries the server for every RRset the changes touch, and for the
// other data at names where a CNAME is to be added.
func (u *Updater) read(ctx context.Context, pcs []pushChange) (*zoneData, error) {
	data := &zoneData{sets: map[setKey][]readRR{}, other: map[string][]readRR{}}
	nx := map[string]bool{}
	for _, k := range keysToRead(pcs) { // a name's CNAME first
		if nx[k.name] {
			continue
		}
		rrs, rcode, err := u.query(ctx, k.name, k.rrtype)
		if err != nil {
			return nil, err
		}
		if rcode == dns.RcodeNameError {
			nx[k.name] = true
			continue
		}
		data.sets[k] = rrs
	}
	for _, c := range pcs {
		n := c.key.name
		if c.key.rrtype != dns.TypeCNAME || c.Action == Delete || nx[n] || len(data.sets[c.key]) > 0 || data.other[n] != nil {
			continue
		}
		other, err := u.otherData(ctx, n)
		if err != nil {
			return nil, err
		}
		data.other[n] = other
	}
	return data, nil
}

// probeTypes are asked for one by one when a server gives nothing for
// type ANY (RFC 8482 lets it answer little; dnstest answers none).
var probeTypes = []uint16{dns.TypeTXT, dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeNS, dns.TypeSRV, dns.TypeCAA}

// otherData returns the records at name, which holds no CNAME but exists:
// those of an ANY query, or else those of common types. Nothing found
// means an empty non-terminal, which a CNAME may take; the prerequisite
// "name is not in use" checks that on the server.
func (u *Updater) otherData(ctx context.Context, name string) ([]readRR, error) {
	rrs, _, err := u.query(ctx, name, dns.TypeANY)
	if err == nil && len(rrs) > 0 {
		return rrs, nil
	}
	out := []readRR{}
	for _, t := range probeTypes {
		rrs, _, err := u.query(ctx, name, t)
		if err != nil {
			return nil, err
		}
		out = append(out, rrs...)
	}
	return out, nil
}

// query asks the server for the RRset of name and qtype (all RRsets for
// ANY), without recursion, over TCP. It returns the records owned by name
// and the RCODE, NOERROR or NXDOMAIN; the answer must be authoritative,
// or, for a name where the zone delegates a subdomain, a referral, whose
// NS records are the zone's own at that name (RFC 1034 §4.2.1).
func (u *Updater) query(ctx context.Context, name string, qtype uint16) ([]readRR, int, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = false
	c := &dns.Client{Net: "tcp", Timeout: u.timeout}
	msg, _, err := c.ExchangeContext(ctx, q, u.server)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, dnsname.Context(name, ctx.Err())
		}
		return nil, 0, dnsname.Temporary(name, u.server, "query: "+err.Error())
	}
	if s := checkReply(msg, name, qtype); s != "" {
		return nil, 0, dnsname.Temporary(name, u.server, s)
	}
	switch msg.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeRefused:
		return nil, 0, dnsname.Refused(name, u.server)
	default:
		return nil, 0, dnsname.Temporary(name, u.server, "server answered "+dns.RcodeToString[msg.Rcode])
	}
	section := msg.Answer
	if !msg.Authoritative {
		cut := len(msg.Answer) == 0
		for _, rr := range msg.Ns {
			cut = cut && rr.Header().Rrtype == dns.TypeNS && dnsname.Equal(rr.Header().Name, name)
		}
		if !cut || len(msg.Ns) == 0 {
			return nil, 0, dnsname.Temporary(name, u.server, "the server is not authoritative for the name: is the zone "+u.zone+" served there, and not delegated below?")
		}
		switch qtype {
		case dns.TypeNS, dns.TypeANY:
			section = msg.Ns
		case dns.TypeCNAME:
			section = nil
		default:
			return nil, 0, dnsname.Temporary(name, u.server, "the zone "+u.zone+" delegates the name")
		}
	}
	var out []readRR
	for _, rr := range section {
		h := rr.Header()
		if !dnsname.Equal(h.Name, name) || h.Class != dns.ClassINET {
			continue
		}
		switch h.Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeOPT:
			continue
		}
		if qtype == dns.TypeANY || h.Rrtype == qtype {
			out = append(out, readRR{rr: rr})
		}
	}
	return out, msg.Rcode, nil
}
