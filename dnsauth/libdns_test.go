package dnsauth_test

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libdns/libdns"

	"github.com/smarthost-go/smarthost/dnsauth"
)

// memProvider is a libdns provider that holds one zone in memory, with the
// semantics libdns documents: names relative to the zone ("@" for the
// apex), typed records out, AppendRecords adding, DeleteRecords deleting
// exact matches only (an empty type, a zero TTL or empty data matching
// any) and returning what it deleted.
type memProvider struct {
	mu   sync.Mutex
	zone string
	recs []libdns.RR
	// writes logs each AppendRecords and DeleteRecords call.
	writes []string
	// beforeDelete runs at the start of DeleteRecords; failAppend, when
	// it returns an error for a record, makes AppendRecords fail.
	beforeDelete func(m *memProvider)
	failAppend   func(libdns.RR) error
}

func newMemProvider(recs ...libdns.Record) *memProvider {
	m := &memProvider{zone: "example.com."}
	for _, r := range recs {
		m.recs = append(m.recs, r.RR())
	}
	return m
}

func (m *memProvider) checkZone(zone string) error {
	if zone != m.zone {
		return errors.New("mem: no zone " + zone)
	}
	return nil
}

func (m *memProvider) GetRecords(ctx context.Context, zone string) ([]libdns.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkZone(zone); err != nil {
		return nil, err
	}
	out := make([]libdns.Record, 0, len(m.recs))
	for _, r := range m.recs {
		p, err := r.Parse()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (m *memProvider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkZone(zone); err != nil {
		return nil, err
	}
	var out []libdns.Record
	for _, rec := range recs {
		r := rec.RR()
		if m.failAppend != nil {
			if err := m.failAppend(r); err != nil {
				return out, err
			}
		}
		if r.Name == "" || strings.HasSuffix(r.Name, ".") {
			return out, errors.New("mem: name not relative: " + r.Name)
		}
		m.recs = append(m.recs, r)
		m.writes = append(m.writes, "append "+r.Name+" "+r.Type+" "+r.Data)
		p, _ := r.Parse()
		out = append(out, p)
	}
	return out, nil
}

func (m *memProvider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	if m.beforeDelete != nil {
		m.beforeDelete(m)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkZone(zone); err != nil {
		return nil, err
	}
	var out []libdns.Record
	for _, rec := range recs {
		d := rec.RR()
		m.writes = append(m.writes, "delete "+d.Name+" "+d.Type+" "+d.Data)
		m.recs = slices.DeleteFunc(m.recs, func(r libdns.RR) bool {
			match := strings.EqualFold(r.Name, d.Name) && (d.Type == "" || r.Type == d.Type) &&
				(d.TTL == 0 || r.TTL == d.TTL) && (d.Data == "" || r.Data == d.Data)
			if match {
				p, _ := r.Parse()
				out = append(out, p)
			}
			return match
		})
	}
	return out, nil
}

// set replaces the records of a name and type, as another client would.
func (m *memProvider) set(name, typ string, data ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = slices.DeleteFunc(m.recs, func(r libdns.RR) bool { return r.Name == name && r.Type == typ })
	for _, d := range data {
		m.recs = append(m.recs, libdns.RR{Name: name, Type: typ, TTL: time.Hour, Data: d})
	}
}

// data returns the data of the records of a name and type, sorted.
func (m *memProvider) data(name, typ string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.recs {
		if r.Name == name && r.Type == typ {
			out = append(out, r.Data)
		}
	}
	slices.Sort(out)
	return out
}

func (m *memProvider) writeCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.writes)
}

func libdnsUpdater(t *testing.T, m *memProvider) *dnsauth.LibdnsUpdater {
	t.Helper()
	u, err := dnsauth.NewLibdnsUpdater(m, "example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLibdnsRoundTrip: through a libdns provider, a plan is applied, then
// skipped, revoked, and skipped again, with the outcomes of the RFC 2136
// push; the other TXT record of the apex is never touched.
func TestLibdnsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemProvider(
		libdns.TXT{Name: "@", TTL: time.Hour, Text: "google-site-verification=abc"},
		libdns.TXT{Name: "@", TTL: 5 * time.Minute, Text: "v=spf1 mx -all"},
		libdns.NS{Name: "@", TTL: time.Hour, Target: "ns1.example.com."},
	)
	u := libdnsUpdater(t, m)
	p := delegated(t, "v=spf1 mx -all")
	res, err := u.Apply(ctx, p.Changes())
	if err != nil || outcomes(res) != "applied applied applied applied applied" {
		t.Fatalf("apply: %s, %v", outcomes(res), err)
	}
	for _, c := range []struct{ name, typ, want string }{
		{"em1234", "CNAME", "u1234.wl.provider.net."},
		{"s1._domainkey", "CNAME", "s1.domainkey.u1234.wl.provider.net."},
		{"s2._domainkey", "CNAME", "s2.domainkey.u1234.wl.provider.net."},
		{"_dmarc", "TXT", "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"},
	} {
		if got := m.data(c.name, c.typ); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s %s: %q, want %q", c.name, c.typ, got, c.want)
		}
	}
	apex := []string{"google-site-verification=abc", "v=spf1 mx include:_spf.provider.net -all"}
	if got := m.data("@", "TXT"); !slices.Equal(got, apex) {
		t.Errorf("apex TXT %q, want %q", got, apex)
	}
	writes := m.writeCount()
	if res, err := u.Apply(ctx, p.Changes()); err != nil || outcomes(res) != "skipped skipped skipped skipped skipped" || m.writeCount() != writes {
		t.Errorf("apply again: %s, %v, %d writes", outcomes(res), err, m.writeCount()-writes)
	}

	res, err = u.Apply(ctx, p.Revoke())
	if err != nil || outcomes(res) != "applied applied applied applied" {
		t.Fatalf("revoke: %s, %v", outcomes(res), err)
	}
	for _, n := range []string{"em1234", "s1._domainkey", "s2._domainkey"} {
		if got := m.data(n, "CNAME"); len(got) != 0 {
			t.Errorf("%s still points at %q", n, got)
		}
	}
	apex = []string{"google-site-verification=abc", "v=spf1 mx -all"}
	if got := m.data("@", "TXT"); !slices.Equal(got, apex) {
		t.Errorf("apex TXT after revoke %q, want %q", got, apex)
	}
	writes = m.writeCount()
	if res, err := u.Apply(ctx, p.Revoke()); err != nil || outcomes(res) != "skipped skipped skipped skipped" || m.writeCount() != writes {
		t.Errorf("revoke again: %s, %v", outcomes(res), err)
	}
}

// TestLibdnsOtherModes: the self-hosted mode's key, MX and TXT records
// and the subdomain mode's NS records go through libdns's typed records.
func TestLibdnsOtherModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemProvider()
	u := libdnsUpdater(t, m)
	self := mustPlan(t, &dnsauth.Request{Domain: "example.com", Mode: dnsauth.SelfHosted, ReturnPath: "bounce", Selectors: []string{"s1"},
		SPFInclude: "_spf.provider.net", MX: "mx.provider.net", Keys: map[string]crypto.PublicKey{"s1": rsaKey(t).Public()}})
	if res, err := u.Apply(ctx, self.Changes()); err != nil || outcomes(res) != "applied applied applied applied applied" {
		t.Fatalf("self-hosted: %s, %v", outcomes(res), err)
	}
	if got := m.data("bounce", "MX"); !slices.Equal(got, []string{"10 mx.provider.net."}) {
		t.Errorf("MX %q", got)
	}
	if got := m.data("s1._domainkey", "TXT"); len(got) != 1 || got[0] != self.Records[0].Value || len(got[0]) < 256 {
		t.Errorf("key record %q", got)
	}
	if res, err := u.Apply(ctx, self.Changes()); err != nil || outcomes(res) != "skipped skipped skipped skipped skipped" {
		t.Errorf("self-hosted again: %s, %v", outcomes(res), err)
	}
	if res, err := u.Apply(ctx, self.Revoke()); err != nil || outcomes(res) != "applied applied applied applied" {
		t.Errorf("self-hosted revoke: %s, %v", outcomes(res), err)
	}

	sub := mustPlan(t, &dnsauth.Request{Domain: "example.com", Mode: dnsauth.Subdomain, Subdomain: "mail", Selectors: []string{"s1"},
		Nameservers: []string{"ns1.provider.net", "ns2.provider.net"}, SPFInclude: "_spf.provider.net",
		ExistingSPF: []string{"v=spf1 include:_spf.provider.net -all"}, ExistingDMARC: "v=DMARC1; p=none"})
	m.set("mail", "NS", "ns2.provider.net.")
	if res, err := u.Apply(ctx, sub.Changes()); err != nil || outcomes(res) != "applied skipped" {
		t.Errorf("subdomain: %s, %v", outcomes(res), err)
	}
	if got := m.data("mail", "NS"); !slices.Equal(got, []string{"ns1.provider.net.", "ns2.provider.net."}) {
		t.Errorf("NS %q", got)
	}
}

// TestLibdnsConflicts: a conflict found in the zone read stops the push
// before any write.
func TestLibdnsConflicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		rec   libdns.Record
		plan  *dnsauth.Plan
		found string
	}{
		{"CNAME elsewhere", libdns.CNAME{Name: "s1._domainkey", TTL: time.Hour, Target: "s1.dkim.other.net."}, delegated(t), "CNAME s1.dkim.other.net."},
		{"TXT where a CNAME goes", libdns.TXT{Name: "em1234", TTL: time.Hour, Text: "hello"}, delegated(t), "TXT hello"},
		{"another SPF record", libdns.TXT{Name: "@", TTL: time.Hour, Text: "v=spf1 a -all"}, delegated(t), "TXT v=spf1 a -all"},
		{"SPF changed since planning", libdns.TXT{Name: "@", TTL: time.Hour, Text: "v=spf1 a -all"}, delegated(t, "v=spf1 mx -all"), "TXT v=spf1 a -all"},
	} {
		m := newMemProvider(tc.rec)
		res, err := libdnsUpdater(t, m).Apply(context.Background(), tc.plan.Changes())
		if !errors.Is(err, dnsauth.ErrConflict) || len(res.Conflicts()) != 1 {
			t.Errorf("%s: %s, %v", tc.name, outcomes(res), err)
			continue
		}
		if f := res.Conflicts()[0].Found; len(f) != 1 || f[0].Type+" "+f[0].Value != tc.found {
			t.Errorf("%s: found %+v, want %s", tc.name, f, tc.found)
		}
		if m.writeCount() != 0 {
			t.Errorf("%s: written: %q", tc.name, m.writes)
		}
	}
}

// TestLibdnsChangedWhileWriting: libdns has no prerequisites, so a change
// by another client after the read is found only by the writes: a replace
// whose old record went away appends nothing, and the push stops there; an
// append that fails puts back the record its replace deleted.
func TestLibdnsChangedWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemProvider(libdns.TXT{Name: "@", TTL: time.Hour, Text: "v=spf1 mx -all"})
	m.beforeDelete = func(m *memProvider) { m.set("@", "TXT", "v=spf1 a -all") }
	res, err := libdnsUpdater(t, m).Apply(ctx, delegated(t, "v=spf1 mx -all").Changes())
	if !errors.Is(err, dnsauth.ErrConflict) || outcomes(res) != "applied applied applied conflict not-applied" {
		t.Errorf("SPF changed meanwhile: %s, %v", outcomes(res), err)
	}
	if got := m.data("@", "TXT"); !slices.Equal(got, []string{"v=spf1 a -all"}) {
		t.Errorf("SPF changed meanwhile: apex %q", got)
	}

	m = newMemProvider(libdns.TXT{Name: "@", TTL: time.Hour, Text: "v=spf1 mx -all"})
	m.failAppend = func(r libdns.RR) error {
		if r.Name == "@" && strings.Contains(r.Data, "_spf.provider.net") {
			return errors.New("mem: API down")
		}
		return nil
	}
	res, err = libdnsUpdater(t, m).Apply(ctx, delegated(t, "v=spf1 mx -all").Changes())
	if err == nil || !strings.Contains(err.Error(), "put back") || outcomes(res) != "applied applied applied not-applied not-applied" {
		t.Errorf("append failed: %s, %v", outcomes(res), err)
	}
	if got := m.data("@", "TXT"); !slices.Equal(got, []string{"v=spf1 mx -all"}) {
		t.Errorf("append failed: apex %q", got)
	}
}

// TestLibdnsProviderTypes: a record of a type DNS does not have (an
// ALIAS, which some providers serve at the apex) does not stop a push,
// and counts as data where a CNAME would go.
func TestLibdnsProviderTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemProvider(libdns.RR{Name: "@", Type: "ALIAS", TTL: time.Hour, Data: "lb.example.net."})
	if res, err := libdnsUpdater(t, m).Apply(ctx, delegated(t).Changes()); err != nil || outcomes(res) != "applied applied applied applied applied" {
		t.Errorf("ALIAS at the apex: %s, %v", outcomes(res), err)
	}
	m = newMemProvider(libdns.RR{Name: "em1234", Type: "ALIAS", TTL: time.Hour, Data: "lb.example.net."})
	res, err := libdnsUpdater(t, m).Apply(ctx, delegated(t).Changes())
	if !errors.Is(err, dnsauth.ErrConflict) || len(res.Conflicts()) != 1 {
		t.Fatalf("ALIAS where a CNAME goes: %s, %v", outcomes(res), err)
	}
	if f := res.Conflicts()[0].Found; len(f) != 1 || f[0].Type != "ALIAS" || f[0].Value != "lb.example.net." {
		t.Errorf("ALIAS where a CNAME goes: found %+v", f)
	}
}
