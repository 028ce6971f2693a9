package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// maxChain is the most CNAME links followed for one lookup.
const maxChain = 8

// resolve asks for qtype at abs, following CNAME chains across answers (a
// server that is not authoritative for the target returns the chain only).
// server "" means the configured servers with failover; otherwise that one.
func (r *Resolver) resolve(ctx context.Context, abs string, qtype uint16, server string) *entry {
	st := chain{abs: abs, qtype: qtype, cur: abs, auth: true, ttl: r.maxTTL}
	for {
		var msg *dns.Msg
		var from string
		var err error
		if server == "" {
			msg, from, err = r.exchange(ctx, st.cur, qtype)
		} else {
			msg, from, err = r.exchangeOne(ctx, server, st.cur, qtype, true)
		}
		if err != nil {
			return &entry{err: err}
		}
		if e := st.step(msg, from); e != nil {
			return e
		}
	}
}

// chain is the state of one lookup across the answers it takes.
type chain struct {
	abs   string // the name asked
	qtype uint16
	cur   string // the name asked next
	links int
	seen  []string
	auth  bool
	ttl   time.Duration
}

// step reads one answer (RCODE NOERROR or NXDOMAIN) to the question for
// c.cur. It returns the outcome, or nil when the chain goes on at c.cur.
func (c *chain) step(msg *dns.Msg, from string) *entry {
	c.auth = c.auth && msg.AuthenticatedData
	start := c.cur
	// RFC 1034 §3.6.2: the chain is in the answer section, in any order.
	for {
		next := ""
		for _, rr := range msg.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && c.qtype != dns.TypeCNAME && dnsname.Equal(cn.Hdr.Name, c.cur) {
				next, c.ttl = cn.Target, min(c.ttl, ttlOf(rr))
				break
			}
		}
		if next == "" {
			break
		}
		if c.links++; c.links > maxChain {
			return &entry{err: dnsname.Temporary(c.abs, from, fmt.Sprintf("CNAME chain longer than %d", maxChain))}
		}
		c.seen = append(c.seen, c.cur)
		for _, s := range c.seen {
			if dnsname.Equal(s, next) {
				return &entry{err: dnsname.Temporary(c.abs, from, "CNAME loop at "+next)}
			}
		}
		if _, err := dnsname.Absolute(next); err != nil {
			return &entry{err: dnsname.Temporary(c.abs, from, "CNAME to an invalid name")}
		}
		c.cur = next
	}
	var recs []dns.RR
	for _, rr := range msg.Answer {
		if h := rr.Header(); h.Rrtype == c.qtype && dnsname.Equal(h.Name, c.cur) {
			recs = append(recs, rr)
			c.ttl = min(c.ttl, ttlOf(rr))
		}
	}
	if len(recs) > 0 {
		return &entry{answer: &Answer{Name: c.abs, Canonical: c.cur, Records: recs, Authenticated: c.auth, Server: from, TTL: c.ttl}, ttl: c.ttl}
	}
	soa := soaOf(msg)
	if c.cur != start && msg.Rcode == dns.RcodeSuccess && soa == nil {
		return nil // the chain left this server's data: ask for the target
	}
	e := &entry{err: dnsname.NoData(c.abs, from)}
	if msg.Rcode == dns.RcodeNameError {
		e.err = dnsname.NotFound(c.abs, from)
	}
	if soa != nil { // RFC 2308 §5: no SOA, no negative caching
		e.ttl = min(c.ttl, ttlOf(soa), time.Duration(soa.Minttl)*time.Second)
	}
	return e
}

func ttlOf(rr dns.RR) time.Duration { return time.Duration(rr.Header().Ttl) * time.Second }

func soaOf(msg *dns.Msg) *dns.SOA {
	for _, rr := range msg.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

// exchange asks the configured servers in turn, each attempt going
// through all of them, until one gives a usable answer (NOERROR or
// NXDOMAIN). The last failure is returned.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	var last error
	for range r.attempts {
		for _, s := range r.servers {
			msg, _, err := r.exchangeOne(ctx, s, name, qtype, true)
			if err == nil {
				return msg, s, nil
			}
			if ctx.Err() != nil {
				return nil, "", dnsname.Context(name, ctx.Err())
			}
			last = err
		}
	}
	return nil, "", last
}

// exchangeOne sends one query to one server over UDP, and again over TCP if
// the answer is truncated (RFC 7766 §5). It returns only answers with RCODE
// NOERROR or NXDOMAIN to the question asked; anything else is a temporary
// error saying what went wrong.
func (r *Resolver) exchangeOne(ctx context.Context, server, name string, qtype uint16, edns bool) (*dns.Msg, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, server, dnsname.Context(name, err)
	}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	q.AuthenticatedData = true // RFC 6840 §5.7: ask for the AD bit
	if edns {
		q.SetEdns0(r.udpSize, false)
	}
	start := r.now()
	msg, _, err := r.udp.ExchangeContext(ctx, q, server)
	transport := "udp"
	if err == nil && msg.Truncated {
		transport = "tcp"
		msg, _, err = r.tcp.ExchangeContext(ctx, q, server)
	}
	r.log.DebugContext(ctx, "dns query", "name", name, "type", dns.TypeToString[qtype], "server", server,
		"transport", transport, "rcode", rcodeOf(msg), "err", err, "elapsed", r.now().Sub(start))
	if err != nil {
		if ctx.Err() != nil {
			return nil, server, dnsname.Context(name, ctx.Err())
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, server, dnsname.Timeout(name, server)
		}
		return nil, server, dnsname.Temporary(name, server, "unusable answer over "+transport+": "+err.Error())
	}
	if err := checkReply(msg, name, qtype); err != "" {
		return nil, server, dnsname.Temporary(name, server, err)
	}
	switch msg.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return msg, server, nil
	case dns.RcodeServerFailure:
		return nil, server, dnsname.ServFail(name, server)
	case dns.RcodeRefused:
		return nil, server, dnsname.Refused(name, server)
	case dns.RcodeFormatError, dns.RcodeNotImplemented:
		if edns { // RFC 6891 §7: a server without EDNS0; ask again without it
			return r.exchangeOne(ctx, server, name, qtype, false)
		}
	}
	return nil, server, dnsname.Temporary(name, server, "server answered "+dns.RcodeToString[msg.Rcode])
}

// checkReply says what makes msg unusable as the reply to a query for
// name and qtype, or "". miekg/dns has checked the ID; the rest is ours: a
// reply must be a response (QR=1) to a standard query (RFC 1035 §4.1.1) for
// the question asked, compared as wire labels (names are in presentation
// form, escaped, so two spellings of one name must compare equal), and an
// NXDOMAIN cannot also carry the records asked for at that name (RFC 2308
// §2.1: only the CNAME chain that leads to the missing name).
func checkReply(msg *dns.Msg, name string, qtype uint16) string {
	switch {
	case !msg.Response:
		return "not a response (QR=0)"
	case msg.Opcode != dns.OpcodeQuery:
		return "answer with opcode " + dns.OpcodeToString[msg.Opcode]
	case len(msg.Question) != 1 || msg.Question[0].Qtype != qtype || !dnsname.Equal(msg.Question[0].Name, name):
		return "answer does not match the question"
	}
	if msg.Rcode == dns.RcodeNameError {
		for _, rr := range msg.Answer {
			if rr.Header().Rrtype == qtype && qtype != dns.TypeCNAME {
				return "NXDOMAIN answer that holds " + dns.TypeToString[qtype] + " records"
			}
		}
	}
	return ""
}

func rcodeOf(msg *dns.Msg) string {
	if msg == nil {
		return ""
	}
	return dns.RcodeToString[msg.Rcode]
}
