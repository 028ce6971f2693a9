package dnsauth

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary bytes, as a server's answer, to the code that
// reads answers: no panic, and an outcome that keeps the error contract.
func FuzzAnswer(f *testing.F) {
	seed := func(build func(m *dns.Msg)) {
		m := new(dns.Msg)
		m.SetQuestion("www.example.com.", dns.TypeA)
		m.Response = true
		build(m)
		b, _ := m.Pack()
		f.Add(b)
	}
	rr := func(s string) dns.RR { r, _ := dns.NewRR(s); return r }
	seed(func(m *dns.Msg) { m.Answer = []dns.RR{rr("www.example.com. 60 A 192.0.2.1")} })
	seed(func(m *dns.Msg) {
		m.Answer = []dns.RR{rr("www.example.com. 60 CNAME web.example.com."), rr("web.example.com. 60 A 192.0.2.1")}
	})
	seed(func(m *dns.Msg) {
		m.Answer = []dns.RR{rr("www.example.com. 60 CNAME a.example.com."), rr("a.example.com. 60 CNAME www.example.com.")}
	})
	seed(func(m *dns.Msg) {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{rr("example.com. 60 SOA ns hm 1 2 3 4 5")}
	})
	seed(func(m *dns.Msg) { m.Answer = []dns.RR{rr("www.example.com. 60 CNAME other.example.net.")} })
	f.Fuzz(func(t *testing.T, b []byte) {
		var m dns.Msg
		if m.Unpack(b) != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		c := chain{abs: q.Name, qtype: q.Qtype, cur: q.Name, auth: true, ttl: time.Hour}
		for range 20 { // the same answer again, as a server that repeats itself
			e := c.step(&m, "fuzz")
			if e == nil {
				if c.links > maxChain {
					t.Fatalf("chain went on past %d links", maxChain)
				}
				continue
			}
			if (e.answer == nil) == (e.err == nil) {
				t.Fatalf("entry with answer %v and err %v", e.answer, e.err)
			}
			if e.err != nil {
				if _, ok := e.err.(*net.DNSError); !ok {
					t.Fatalf("error of type %T", e.err)
				}
				return
			}
			for _, rr := range e.answer.Records {
				if rr.Header().Rrtype != q.Qtype {
					t.Fatalf("record of type %d in an answer for %d", rr.Header().Rrtype, q.Qtype)
				}
			}
			if e.ttl > time.Hour {
				t.Fatalf("ttl %v over the cap", e.ttl)
			}
			return
		}
	})
}
