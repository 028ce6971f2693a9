package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// LibdnsProvider is what a LibdnsUpdater needs of a DNS provider: the
// interfaces of github.com/libdns/libdns that read a zone, add records and
// delete them, which every libdns provider module implements.
type LibdnsProvider interface {
	libdns.RecordGetter
	libdns.RecordAppender
	libdns.RecordDeleter
}

// LibdnsOptions configures a LibdnsUpdater. The zero value, like a nil
// *LibdnsOptions, gives the defaults.
type LibdnsOptions struct {
	// Logger receives one debug record per Apply. Default: discard.
	Logger *slog.Logger
}

// LibdnsUpdater applies changes to a zone through a libdns provider (the
// API of a DNS hosting service), with the rules of Updater.Apply: read
// first, skip what is there, report conflicts and then change nothing.
//
// Unlike DNS UPDATE, libdns has no prerequisites and no atomic change of
// several records, so the checks can only be made before writing: data
// changed by someone else between GetRecords and the writes is not seen,
// and a provider that fails halfway leaves the changes made until then
// (the result says which). The zone is read right before the writes, and
// only the plan's own records are touched: a delete
// passes the record exactly as GetRecords returned it (RecordDeleter
// deletes exact matches only), and a replace is a delete of the old record
// followed by an append of the new one, never RecordSetter.SetRecords,
// which would rewrite every other record of the RRset (the domain's other
// TXT records). Between that delete and that append the name has no SPF
// record for a moment; if the delete finds the old record gone, the new
// one is not appended, and if the append fails, the old record is put
// back. Records of types the provider has and DNS does not (ALIAS) count
// as data where a CNAME would go.
type LibdnsUpdater struct {
	p    LibdnsProvider
	zone string // absolute, as libdns zone names are
	log  *slog.Logger
}

// NewLibdnsUpdater returns an updater of zone (its apex, such as
// "example.com") at provider p.
func NewLibdnsUpdater(p LibdnsProvider, zone string, opts *LibdnsOptions) (*LibdnsUpdater, error) {
	if p == nil {
		return nil, errors.New("dnsauth: libdns updater: no provider")
	}
	abs, err := dnsname.Absolute(zone)
	if err != nil || abs == "." {
		return nil, fmt.Errorf("dnsauth: libdns updater: zone %q is not a domain name", zone)
	}
	u := &LibdnsUpdater{p: p, zone: strings.ToLower(abs)}
	if opts != nil {
		u.log = opts.Logger
	}
	if u.log == nil {
		u.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return u, nil
}

// Apply makes the changes in the zone: it reads the zone with GetRecords,
// decides as Updater.Apply does, and, when nothing conflicts, deletes and
// appends records change by change, in order. On a conflict nothing is
// written, and the result comes with an error wrapping ErrConflict. An
// error of the provider while writing stops the push: the result says
// which changes were applied before it.
func (u *LibdnsUpdater) Apply(ctx context.Context, changes []Change) (*PushResult, error) {
	start := time.Now()
	res, err := u.apply(ctx, changes)
	attrs := []any{"zone", u.zone, "changes", len(changes), "elapsed", time.Since(start)}
	if res != nil {
		n := map[Outcome]int{}
		for _, c := range res.Changes {
			n[c.Outcome]++
		}
		attrs = append(attrs, "applied", n[OutcomeApplied], "skipped", n[OutcomeSkipped], "conflicts", n[OutcomeConflict])
	}
	u.log.DebugContext(ctx, "libdns update", append(attrs, "err", err)...)
	return res, err
}

func (u *LibdnsUpdater) apply(ctx context.Context, changes []Change) (*PushResult, error) {
	pcs, err := checkChanges(dnsname.Escape(u.zone), changes)
	if err != nil {
		return nil, err
	}
	res := newResult(u.zone, changes)
	if len(pcs) == 0 {
		return res, nil
	}
	data, err := u.read(ctx, pcs)
	if err != nil {
		setReason(res, "the zone could not be read")
		return res, err
	}
	d := decide(pcs, data)
	fill(res, d)
	if d.conflicts > 0 {
		return res, conflictError(res, u.zone)
	}
	for i, s := range d.steps {
		if !s.changes() {
			continue
		}
		c := &res.Changes[i]
		if err := u.write(ctx, s); err != nil {
			c.Reason = err.Error()
			if errors.Is(err, ErrConflict) {
				c.Outcome = OutcomeConflict
			}
			for j := i + 1; j < len(d.steps); j++ {
				if d.steps[j].changes() {
					res.Changes[j].Reason = "not applied: an earlier change failed"
				}
			}
			return res, fmt.Errorf("dnsauth: libdns update of %s: %s %s %s: %w", u.zone, c.Change.Action, c.Change.Record.Name, c.Change.Record.Type, err)
		}
		c.Outcome = OutcomeApplied
	}
	return res, nil
}

// write makes one change: its deletes, then its appends.
func (u *LibdnsUpdater) write(ctx context.Context, s step) error {
	var deleted []libdns.Record
	if len(s.del) > 0 {
		recs := make([]libdns.Record, len(s.del))
		for i, r := range s.del {
			recs[i] = r.src
		}
		var err error
		deleted, err = u.p.DeleteRecords(ctx, u.zone, recs)
		if err != nil {
			return fmt.Errorf("DeleteRecords: %w", err)
		}
		if len(deleted) == 0 && len(s.add) > 0 {
			// A replace whose old record went away since it was read:
			// appending would set a record beside whatever took its place.
			return fmt.Errorf("%w: the record to replace was changed while the push ran; nothing was changed", ErrConflict)
		}
	}
	if len(s.add) == 0 {
		return nil
	}
	recs := make([]libdns.Record, len(s.add))
	for i, rr := range s.add {
		recs[i] = u.toLibdns(rr)
	}
	if _, err := u.p.AppendRecords(ctx, u.zone, recs); err != nil {
		if len(deleted) > 0 {
			if _, rerr := u.p.AppendRecords(ctx, u.zone, deleted); rerr != nil {
				return fmt.Errorf("AppendRecords: %w; putting back the record deleted: %v", err, rerr)
			}
			return fmt.Errorf("AppendRecords: %w; the record deleted was put back", err)
		}
		return fmt.Errorf("AppendRecords: %w", err)
	}
	return nil
}

// read reads the zone and keeps the records at the names of the changes.
func (u *LibdnsUpdater) read(ctx context.Context, pcs []pushChange) (*zoneData, error) {
	recs, err := u.p.GetRecords(ctx, u.zone)
	if err != nil {
		return nil, fmt.Errorf("dnsauth: libdns update of %s: GetRecords: %w", u.zone, err)
	}
	names := map[string]bool{}
	for _, c := range pcs {
		names[c.key.name] = true
	}
	data := &zoneData{sets: map[setKey][]readRR{}, other: map[string][]readRR{}}
	for _, rec := range recs {
		rr, err := u.fromLibdns(rec)
		if err != nil {
			// A record the push cannot read: of a type the changes
			// touch, it cannot be decided on; of another type (a
			// provider's ALIAS at the apex), it only matters as data
			// where a CNAME would go.
			r := rec.RR()
			name := dnsname.Key(dnsname.Escape(libdns.AbsoluteName(r.Name, u.zone)))
			if !names[name] {
				continue
			}
			t, known := dns.StringToType[strings.ToUpper(r.Type)]
			if known && (t == dns.TypeCNAME || slices.ContainsFunc(pcs, func(c pushChange) bool { return c.key == setKey{name, t} })) {
				return nil, fmt.Errorf("dnsauth: libdns update of %s: record %s %s %q: %w", u.zone, r.Name, r.Type, r.Data, err)
			}
			desc := Record{Name: libdns.AbsoluteName(r.Name, u.zone), Type: r.Type, Value: r.Data, TTL: uint32(r.TTL / time.Second)}
			data.other[name] = append(data.other[name], readRR{rr: &dns.ANY{Hdr: dns.RR_Header{Name: name}}, src: rec, desc: &desc})
			continue
		}
		h := rr.Header()
		name := dnsname.Key(h.Name)
		if !names[name] {
			continue
		}
		k := setKey{name, h.Rrtype}
		data.sets[k] = append(data.sets[k], readRR{rr: rr, src: rec})
		if h.Rrtype != dns.TypeCNAME {
			data.other[name] = append(data.other[name], readRR{rr: rr, src: rec})
		}
	}
	return data, nil
}

// fromLibdns converts a provider's record: a relative name ("@" for the
// apex), TXT data as raw text, other data as a zone file writes it.
func (u *LibdnsUpdater) fromLibdns(rec libdns.Record) (dns.RR, error) {
	r := rec.RR()
	ttl := uint32(r.TTL / time.Second)
	return Record{Name: libdns.AbsoluteName(r.Name, u.zone), Type: strings.ToUpper(r.Type), Value: r.Data, TTL: ttl}.RR()
}

// toLibdns converts a record to add into the libdns record of its type.
func (u *LibdnsUpdater) toLibdns(rr dns.RR) libdns.Record {
	h := rr.Header()
	r := libdns.RR{
		Name: libdns.RelativeName(strings.ToLower(rawName(h.Name)), u.zone),
		TTL:  time.Duration(h.Ttl) * time.Second,
		Type: dns.TypeToString[h.Rrtype],
	}
	if t, ok := rr.(*dns.TXT); ok {
		r.Data = txtText(t)
	} else {
		r.Data = strings.TrimPrefix(rr.String(), h.String())
	}
	if typed, err := r.Parse(); err == nil {
		return typed
	}
	return r
}
