package dnstest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const updZone = `
$ORIGIN example.com.
@   SOA  ns1 hostmaster 10 7200 900 1209600 300
@   NS   ns1
old TXT  "old"
two TXT  "a"
two TXT  "b"
`

const keyName = "update-key."
const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="

func startServer(t *testing.T, text string) *dnstest.Server {
	t.Helper()
	s, err := dnstest.NewServer(dnstest.MustParseZone(text))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// send sends an UPDATE over TCP, TSIG-signed with key when secret is set.
func send(t *testing.T, addr string, m *dns.Msg, key, sec string) int {
	t.Helper()
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if sec != "" {
		c.TsigSecret = map[string]string{key: sec}
		m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return r.Rcode
}

func txtOf(t *testing.T, z *dnstest.Zone, name string) []string {
	t.Helper()
	txt, err := z.LookupTXT(context.Background(), name)
	if err != nil {
		return nil
	}
	return txt
}

func TestUpdateTSIG(t *testing.T) {
	t.Parallel()
	s := startServer(t, updZone)

	m := new(dns.Msg)
	m.SetUpdate("example.com.")
	m.Insert([]dns.RR{mustRR(t, `new.example.com. 300 IN TXT "v=DKIM1; p="`)})
	if rc := send(t, s.Addr, m.Copy(), "", ""); rc != dns.RcodeRefused {
		t.Errorf("update before AcceptUpdates: %s, want REFUSED", dns.RcodeToString[rc])
	}
	s.AcceptUpdates(map[string]string{keyName: secret})
	if rc := send(t, s.Addr, m.Copy(), "", ""); rc != dns.RcodeNotAuth {
		t.Errorf("unsigned update: %s, want NOTAUTH", dns.RcodeToString[rc])
	}
	if rc := send(t, s.Addr, m.Copy(), keyName, "d3Jvbmctc2VjcmV0"); rc != dns.RcodeNotAuth {
		t.Errorf("update signed with a wrong secret: %s, want NOTAUTH", dns.RcodeToString[rc])
	}
	if got := txtOf(t, s.Zone, "new.example.com"); got != nil {
		t.Fatalf("refused updates were applied: %q", got)
	}
	if rc := send(t, s.Addr, m.Copy(), keyName, secret); rc != dns.RcodeSuccess {
		t.Fatalf("signed update: %s", dns.RcodeToString[rc])
	}
	if got := txtOf(t, s.Zone, "new.example.com"); len(got) != 1 || got[0] != "v=DKIM1; p=" {
		t.Errorf("after update: %q", got)
	}
	soa := s.Zone.Resolve("example.com", dns.TypeSOA).Records[0].(*dns.SOA)
	if soa.Serial != 11 {
		t.Errorf("serial = %d, want 11 (RFC 2136 §3.6)", soa.Serial)
	}
}

func TestUpdatePrerequisitesAndDeletes(t *testing.T) {
	t.Parallel()
	s := startServer(t, updZone)
	s.AcceptUpdates(nil) // unsigned updates allowed
	up := func(build func(m *dns.Msg)) int {
		m := new(dns.Msg)
		m.SetUpdate("example.com.")
		build(m)
		return send(t, s.Addr, m, "", "")
	}
	rr := func(text string) []dns.RR { return []dns.RR{mustRR(t, text)} }

	// §2.4.3: "name is not in use" fails for an existing name; nothing applied.
	rc := up(func(m *dns.Msg) {
		m.NameNotUsed(rr("old.example.com. 0 IN TXT \"\""))
		m.Insert(rr(`x.example.com. 300 IN TXT "x"`))
	})
	if rc != dns.RcodeYXDomain || txtOf(t, s.Zone, "x.example.com") != nil {
		t.Errorf("NameNotUsed on existing name: %s", dns.RcodeToString[rc])
	}
	if rc := up(func(m *dns.Msg) { m.RRsetUsed(rr(`nx.example.com. 0 IN TXT ""`)) }); rc != dns.RcodeNXRrset {
		t.Errorf("RRsetUsed on a missing RRset: %s", dns.RcodeToString[rc])
	}
	if rc := up(func(m *dns.Msg) { m.Used(rr(`two.example.com. 0 IN TXT "a"`)) }); rc != dns.RcodeNXRrset {
		t.Errorf("value-dependent prerequisite with one of two values: %s", dns.RcodeToString[rc])
	}
	if rc := up(func(m *dns.Msg) { m.Insert(rr(`x.example.org. 300 IN TXT "x"`)) }); rc != dns.RcodeNotZone {
		t.Errorf("record outside the zone: %s", dns.RcodeToString[rc])
	}
	// Delete one value, then a whole RRset, with a prerequisite that holds.
	rc = up(func(m *dns.Msg) {
		m.Used(rr(`two.example.com. 0 IN TXT "a"`))
		m.Used(rr(`two.example.com. 0 IN TXT "b"`))
		m.Remove(rr(`two.example.com. 0 IN TXT "a"`))
		m.RemoveRRset(rr(`old.example.com. 0 IN TXT ""`))
	})
	if rc != dns.RcodeSuccess {
		t.Fatalf("delete: %s", dns.RcodeToString[rc])
	}
	if got := txtOf(t, s.Zone, "two.example.com"); len(got) != 1 || got[0] != "b" {
		t.Errorf("after deleting one value: %q", got)
	}
	if _, err := s.Zone.LookupTXT(context.Background(), "old.example.com"); err == nil {
		t.Error("RRset not deleted")
	} else if de := err.(*net.DNSError); !de.IsNotFound {
		t.Errorf("deleted name: %v", err)
	}
	// RemoveName keeps the apex SOA and NS.
	if rc := up(func(m *dns.Msg) { m.RemoveName(rr(`example.com. 0 IN ANY`)) }); rc != dns.RcodeSuccess {
		t.Fatalf("RemoveName: %s", dns.RcodeToString[rc])
	}
	if a := s.Zone.Resolve("example.com", dns.TypeSOA); len(a.Records) != 1 {
		t.Error("apex SOA deleted")
	}
}

// TestUpdateNamesInUseAndCNAMEs: a name is in use when it owns a record,
// not when it only has names below it (RFC 2136 §2.4.4, as BIND checks
// it); a CNAME and other data never stand together, the update that would
// put them together is ignored (§3.4.2.2); prerequisites carry TTL 0
// (§3.2.1).
func TestUpdateNamesInUseAndCNAMEs(t *testing.T) {
	t.Parallel()
	s := startServer(t, updZone+`
a.ent TXT   "below an empty non-terminal"
alias CNAME target.example.net.
`)
	s.AcceptUpdates(nil)
	up := func(build func(m *dns.Msg)) int {
		m := new(dns.Msg)
		m.SetUpdate("example.com.")
		build(m)
		return send(t, s.Addr, m, "", "")
	}
	rr := func(text string) []dns.RR { return []dns.RR{mustRR(t, text)} }
	cnameOf := func(name string) []dns.RR {
		return s.Zone.Resolve(name, dns.TypeCNAME).Records
	}

	if rc := up(func(m *dns.Msg) { m.NameUsed(rr(`ent.example.com. 0 IN ANY`)) }); rc != dns.RcodeNameError {
		t.Errorf("name in use at an empty non-terminal: %s, want NXDOMAIN", dns.RcodeToString[rc])
	}
	rc := up(func(m *dns.Msg) {
		m.NameNotUsed(rr(`ent.example.com. 0 IN ANY`))
		m.Insert(rr(`ent.example.com. 300 IN CNAME target.example.net.`))
	})
	if rc != dns.RcodeSuccess || len(cnameOf("ent.example.com")) != 1 {
		t.Errorf("CNAME at an empty non-terminal under \"name is not in use\": %s, %v", dns.RcodeToString[rc], cnameOf("ent.example.com"))
	}
	if rc := up(func(m *dns.Msg) { m.Insert(rr(`old.example.com. 300 IN CNAME target.example.net.`)) }); rc != dns.RcodeSuccess {
		t.Fatalf("CNAME beside TXT: %s", dns.RcodeToString[rc])
	}
	if got := cnameOf("old.example.com"); len(got) != 0 {
		t.Errorf("a CNAME was added beside a TXT record: %v", got)
	}
	if rc := up(func(m *dns.Msg) { m.Insert(rr(`alias.example.com. 300 IN TXT "x"`)) }); rc != dns.RcodeSuccess {
		t.Fatalf("TXT beside CNAME: %s", dns.RcodeToString[rc])
	}
	if a := s.Zone.Resolve("alias.example.com", dns.TypeTXT); len(a.Records) != 1 || a.Records[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("a TXT record was added beside a CNAME: %v", a.Records)
	}
	if rc := up(func(m *dns.Msg) { m.Answer = rr(`old.example.com. 300 IN TXT "old"`) }); rc != dns.RcodeFormatError {
		t.Errorf("prerequisite with a TTL: %s, want FORMERR", dns.RcodeToString[rc])
	}
}

func TestServerAnswers(t *testing.T) {
	t.Parallel()
	s := startServer(t, updZone)
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	q := new(dns.Msg)
	q.SetQuestion("nx.example.com.", dns.TypeTXT)
	r, _, err := c.Exchange(q, s.Addr)
	if err != nil || r.Rcode != dns.RcodeNameError || !r.Authoritative || len(r.Ns) != 1 {
		t.Fatalf("NXDOMAIN answer: %v %v", r, err)
	}
	q.SetQuestion("old.example.com.", dns.TypeMX)
	r, _, _ = c.Exchange(q, s.Addr)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("NODATA answer: %v", r)
	}
	// Without EDNS0 the limit is 512 octets: a large RRset is truncated.
	for i := range 10 {
		s.Zone.AddTXT("big.example.com", string(rune('a'+i))+string(make([]byte, 100)))
	}
	q.SetQuestion("big.example.com.", dns.TypeTXT)
	r, _, _ = c.Exchange(q, s.Addr)
	if !r.Truncated {
		t.Errorf("answer over 512 octets without EDNS0 not truncated (%d records)", len(r.Answer))
	}
	r, _, err = (&dns.Client{Net: "tcp"}).Exchange(q, s.Addr)
	if err != nil || r.Truncated || len(r.Answer) != 10 {
		t.Errorf("over TCP: %d records, TC=%v, %v", len(r.Answer), r.Truncated, err)
	}
}
