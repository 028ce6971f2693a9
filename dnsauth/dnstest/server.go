package dnstest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Server is a DNS server on 127.0.0.1 that answers from a Zone over UDP and
// TCP on the same port, as an authoritative server does. Injected failures
// of the Zone apply: Timeout drops the query, ServFail and Refused answer
// with that RCODE.
type Server struct {
	// Addr is "127.0.0.1:port", the same for UDP and TCP.
	Addr string
	// Zone is the data served; changes to it are served at once.
	Zone *Zone

	udp, tcp *dns.Server

	delay         atomic.Int64
	truncate      atomic.Bool
	authenticated atomic.Bool
	mu            sync.Mutex
	updates       bool
	tsig          map[string]string // key name (absolute, lower case) -> base64 secret
}

// NewServer starts a server for z on 127.0.0.1, on a port chosen by the
// system. Close it when done.
func NewServer(z *Zone) (*Server, error) {
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dnstest: %w", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil { // the TCP port is taken: try another pair
			pc.Close()
			lastErr = err
			continue
		}
		s := &Server{Addr: pc.LocalAddr().String(), Zone: z}
		h := dns.HandlerFunc(s.serveDNS)
		s.udp = &dns.Server{PacketConn: pc, Handler: h, MsgAcceptFunc: acceptQueryOrUpdate, TsigProvider: (*tsigKeys)(s)}
		s.tcp = &dns.Server{Listener: l, Handler: h, MsgAcceptFunc: acceptQueryOrUpdate, TsigProvider: (*tsigKeys)(s)}
		var started sync.WaitGroup
		started.Add(2)
		s.udp.NotifyStartedFunc = started.Done
		s.tcp.NotifyStartedFunc = started.Done
		go s.udp.ActivateAndServe()
		go s.tcp.ActivateAndServe()
		started.Wait()
		return s, nil
	}
	return nil, fmt.Errorf("dnstest: no free UDP and TCP port pair: %w", lastErr)
}

// Close stops the server.
func (s *Server) Close() error {
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

// SetTruncate makes every UDP answer empty with the TC bit set (RFC 1035
// §4.2.1), so that clients must retry over TCP. Answers larger than the
// client's UDP size (512, or its EDNS0 size) are truncated in any case.
func (s *Server) SetTruncate(on bool) { s.truncate.Store(on) }

// SetDelay makes the server wait d before answering each query, so that
// tests can overlap lookups.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// SetAuthenticated makes every answer carry the AD bit, as a validating
// resolver sets it for data it validated (RFC 4035 §3.2.3).
func (s *Server) SetAuthenticated(on bool) { s.authenticated.Store(on) }

// AcceptUpdates makes the server apply RFC 2136 UPDATE messages to its
// Zone, for zones whose apex has an SOA record. With keys (TSIG key name to
// base64 secret), only updates signed with one of them are applied (RFC
// 8945); without, any update is. Until it is called, updates are refused.
func (s *Server) AcceptUpdates(keys map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = true
	s.tsig = map[string]string{}
	for name, secret := range keys {
		s.tsig[dns.CanonicalName(name)] = secret
	}
}

// acceptQueryOrUpdate is miekg/dns's default accept policy plus UPDATE,
// whose sections hold any number of records.
func acceptQueryOrUpdate(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 { // QR: a response
		return dns.MsgIgnore
	}
	if int(dh.Bits>>11)&0xF == dns.OpcodeUpdate {
		if dh.Qdcount != 1 {
			return dns.MsgReject
		}
		return dns.MsgAccept
	}
	return dns.DefaultMsgAcceptFunc(dh)
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	if d := s.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if req.Opcode == dns.OpcodeUpdate {
		s.serveUpdate(w, req)
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	if q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}
	a := s.Zone.Resolve(q.Name, q.Qtype)
	switch a.Failure {
	case Timeout:
		return // no answer: the client times out
	case ServFail:
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	case Refused:
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	m.AuthenticatedData = s.authenticated.Load()
	m.Rcode = a.Rcode
	m.Answer = a.Records
	if a.SOA != nil && (a.Rcode == dns.RcodeNameError || !hasType(a.Records, q.Qtype)) {
		m.Ns = []dns.RR{a.SOA}
	}
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		if s.truncate.Load() {
			m.Answer, m.Ns = nil, nil
			m.Truncated = true
		} else {
			m.Truncate(size)
		}
	}
	w.WriteMsg(m)
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// tsigKeys gives miekg/dns the server's current TSIG keys.
type tsigKeys Server

func (k *tsigKeys) secret(name string) ([]byte, error) {
	s := (*Server)(k)
	s.mu.Lock()
	secret, ok := s.tsig[dns.CanonicalName(name)]
	s.mu.Unlock()
	if !ok {
		return nil, dns.ErrSecret
	}
	return base64.StdEncoding.DecodeString(secret)
}

// Generate computes the HMAC of RFC 8945 §4.3 with the key named in t.
func (k *tsigKeys) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	secret, err := k.secret(t.Hdr.Name)
	if err != nil {
		return nil, err
	}
	var h func() hash.Hash
	switch dns.CanonicalName(t.Algorithm) {
	case dns.HmacSHA1:
		h = sha1.New
	case dns.HmacSHA224:
		h = sha256.New224
	case dns.HmacSHA256:
		h = sha256.New
	case dns.HmacSHA384:
		h = sha512.New384
	case dns.HmacSHA512:
		h = sha512.New
	default:
		return nil, dns.ErrKeyAlg
	}
	mac := hmac.New(h, secret)
	mac.Write(msg)
	return mac.Sum(nil), nil
}

// Verify checks the MAC of t in constant time.
func (k *tsigKeys) Verify(msg []byte, t *dns.TSIG) error {
	want, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}
