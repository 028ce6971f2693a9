package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/idna"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// MXResolver is the DNS an MXSender needs, shaped like *net.Resolver:
// net.DefaultResolver, *dnsauth.Resolver and *dnstest.Zone satisfy it. A name
// that does not exist, or has no record of the type asked, must give a
// *net.DNSError with IsNotFound set; any other failure is temporary.
type MXResolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// MXHost is one address an MXSender delivers to, as MXOptions.Dial is
// given it.
type MXHost struct {
	// Domain is the recipients' domain, lower case, in A-labels
	// (RFC 5890), or an address literal such as "[192.0.2.1]".
	Domain string
	// Name is the host's name, without a final dot: the MX record's target,
	// or Domain itself for an implicit MX or an address literal. It is
	// the name to give TLS as ServerName, but for an address literal.
	Name string
	// Pref is the MX record's preference, 0 for an implicit MX.
	Pref uint16
	// Implicit reports that the domain has no MX record and Name is the
	// domain itself, with its address records (RFC 5321 §5.1).
	Implicit bool
	// Addr is the address and port to connect to.
	Addr netip.AddrPort
}

// MXOptions are the settings of an MXSender. nil, or the zero value,
// delivers with this package's Client to port 25 of public addresses.
type MXOptions struct {
	// Dial returns the Sender that delivers to one host: an SMTP client
	// for h.Addr, with opportunistic TLS (STARTTLS when the host offers
	// it, RFC 3207, its certificate not required to verify, RFC 7435)
	// and SNI h.Name. It is called for each address tried; it may
	// return the same pooled client each time for an address.
	//
	// nil is a Client of this package per address and host name, made
	// from the Client options and kept, with its pool of connections,
	// until Close: see Client.
	Dial func(h MXHost) Sender
	// Client is the template of the Clients of the default Dial; nil is
	// the zero ClientOptions. Its TLS mode "" is OpportunisticTLS (set
	// StartTLS to require TLS of every host, or NoTLS on a private
	// network); its TLSConfig's ServerName, when empty, is the host's
	// name (h.Name; the address for an address literal), for SNI (RFC
	// 6066 §3) and verification. Set LocalName to the relay's fully
	// qualified domain name: receivers check the EHLO name (RFC 5321
	// §4.1.1.1). Credentials are refused: the hosts are whatever the
	// recipients' domains name in DNS. Unused with Dial set.
	Client *ClientOptions
	// Port is the port of every host. Default 25 (RFC 5321 §4.5.4.2 has
	// SMTP servers listen there); another is for tests and private
	// networks.
	Port int
	// Network is the address family of host lookups: "ip" (the default,
	// IPv4 and IPv6), "ip4" or "ip6".
	Network string
	// MaxAttempts is the most addresses tried for one domain in one Send,
	// over all its MX hosts (RFC 5321 §5.1 allows such a limit, and asks
	// that at least two addresses be tried). Default 5.
	MaxAttempts int
	// AllowAddr says whether an address may be connected to; others are
	// skipped. Default: global unicast addresses that are not private
	// (netip.Addr.IsGlobalUnicast and not IsPrivate), so that a domain
	// whose MX points into the relay's own network (loopback, RFC 1918,
	// RFC 4193, link-local) cannot make it connect there.
	AllowAddr func(netip.Addr) bool
	// Rand is the randomness that orders MX hosts of equal preference:
	// eight octets per choice, read as a big-endian integer. Default
	// math/rand/v2.
	Rand io.Reader
	// Logger gets one debug record per failed attempt and per MX host
	// without an address. Default: none.
	Logger *slog.Logger
}

// DefaultMXAttempts is the default of MXOptions.MaxAttempts.
const DefaultMXAttempts = 5

// MXSender is a Sender that delivers directly to the recipients' domains,
// to the hosts their MX records name (RFC 5321 §5.1), for a relay that is
// its own smart host.
//
// The recipients are grouped by domain, and each domain gets one
// transaction, through the Sender that MXOptions.Dial returns for its host.
// The domains are delivered one after the other, in the order of their
// first recipient in the envelope. For each domain:
//
//   - The MX records are looked up and tried in order of preference, lowest
//     first, in random order among equal preferences (RFC 5321 §5.1); each
//     host's addresses (MXOptions.Network) in the order the resolver gives
//     them.
//   - A domain without MX records has an implicit one: the domain itself,
//     at preference 0, with its A and AAAA records (RFC 5321 §5.1). A domain
//     with neither, or that does not exist, fails with 550 5.1.2 (RFC 3463
//     §3.2: bad destination system address).
//   - A null MX, a single MX record whose target is "." (RFC 7505 §3), says
//     the domain takes no mail: its recipients fail with 556 5.1.10
//     (RFC 7505, RFC 7504) and no connection is made.
//   - A host that cannot be reached, or answers 4xx (421 included) for the
//     transaction, is followed by the next address or host, up to
//     MaxAttempts addresses. A 5xx for the transaction ends the domain at
//     once (RFC 5321 §4.2.1: a permanent refusal, another MX host of the
//     domain would refuse it too).
//   - A failed lookup, or MX hosts without a usable address, fail with a
//     temporary 451: 4.4.3 for DNS (RFC 3463 §3.5: directory server
//     failure), 4.4.4 when no host has an address (unable to route).
//   - An address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]", RFC 5321
//     §4.1.3) is delivered to that address, with no lookup; one that
//     AllowAddr refuses fails with 550 5.4.4.
//
// Recipients are returned in the order of Envelope.To. When every recipient
// is of one domain, Send is that domain's transaction: it returns its
// Receipt, or its error (the last host's, or one of the replies above).
// With several domains, or a recipient without a domain (553 5.1.3), Send
// returns one Receipt: each recipient's RcptResult is its host's, or the
// reply for its domain's failure (451 4.4.1 when the last host could not be
// reached); Receipt.Host is the hosts that took the message, joined by ", ".
// A recipient that its host refused at RCPT TO keeps that reply when the
// transaction then failed (when the host's Sender gives a Receipt with its
// error). Send returns an error then only when ctx ended before any
// recipient was accepted. Recipients refused for now are the caller's to
// retry.
//
// Like Failover, an MXSender returns at once an error that comes from
// reading the message itself, since no other host could read it either.
//
// An MXSender is safe for concurrent use. Close it when done, to close
// the connections of the default Dial's Clients.
type MXSender struct {
	r       MXResolver
	o       MXOptions
	randMu  sync.Mutex
	clients *mxClients // of the default Dial; nil with MXOptions.Dial
}

// NewMXSender returns an MXSender that looks up MX records with r. opts
// may be nil.
func NewMXSender(r MXResolver, opts *MXOptions) (*MXSender, error) {
	if r == nil {
		return nil, errors.New("relay: NewMXSender: nil resolver")
	}
	var o MXOptions
	if opts != nil {
		o = *opts
	}
	switch o.Network {
	case "":
		o.Network = "ip"
	case "ip", "ip4", "ip6":
	default:
		return nil, fmt.Errorf("relay: NewMXSender: Network %q is not ip, ip4 or ip6", o.Network)
	}
	if o.Port == 0 {
		o.Port = 25
	}
	if o.Port < 0 || o.Port > 65535 {
		return nil, fmt.Errorf("relay: NewMXSender: Port %d out of range", o.Port)
	}
	if o.MaxAttempts < 0 {
		return nil, errors.New("relay: NewMXSender: negative MaxAttempts")
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMXAttempts
	}
	if o.AllowAddr == nil {
		o.AllowAddr = publicAddr
	}
	m := &MXSender{r: r, o: o}
	if o.Dial == nil {
		clients, err := newMXClients(o.Client)
		if err != nil {
			return nil, err
		}
		m.clients = clients
		m.o.Dial = clients.dial
	}
	return m, nil
}

// Close closes the Clients of the default Dial, and their connections
// (with QUIT); a Send after Close fails for every host. With
// MXOptions.Dial set it does nothing.
func (m *MXSender) Close() error {
	if m.clients != nil {
		m.clients.close()
	}
	return nil
}

// publicAddr is the default of MXOptions.AllowAddr.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate()
}

// mxDomain is the recipients of one domain.
type mxDomain struct {
	domain  string     // lower case A-labels, or an address literal
	literal netip.Addr // valid for an address literal
	index   []int      // the recipients' places in Envelope.To
	to      []Recipient
}

// Send delivers the message to each recipient's domain; see MXSender.
func (m *MXSender) Send(ctx context.Context, env *Envelope, msg Message) (*Receipt, error) {
	if len(env.To) == 0 {
		return nil, errors.New("relay: MXSender: no recipient")
	}
	domains, bad := groupByDomain(env.To)
	if len(domains) == 1 && len(bad) == 0 {
		return m.sendDomain(ctx, env, domains[0], msg)
	}

	out := &Receipt{Rcpts: make([]RcptResult, len(env.To))}
	for i, to := range env.To {
		out.Rcpts[i].Addr = to.Addr
	}
	for _, i := range bad {
		out.Rcpts[i].Reply = &Reply{Code: 553, Enhanced: EnhancedCode{5, 1, 3}, Message: "Recipient address has no domain: " + env.To[i].Addr}
	}
	var hosts []string
	for _, d := range domains {
		var r *Receipt
		err := ctx.Err()
		if err == nil {
			r, err = m.sendDomain(ctx, env, d, msg)
		}
		if err != nil {
			reply := new(Reply)
			if !errors.As(err, &reply) {
				reply = &Reply{Code: 451, Enhanced: EnhancedCode{4, 4, 1}, Message: err.Error()}
			}
			for k, i := range d.index {
				out.Rcpts[i].Reply = reply
				if r != nil && k < len(r.Rcpts) && r.Rcpts[k].Reply != nil {
					out.Rcpts[i].Reply = r.Rcpts[k].Reply // refused at RCPT
				}
			}
			continue
		}
		if r.Host != "" && !slices.Contains(hosts, r.Host) {
			hosts = append(hosts, r.Host)
		}
		for k, i := range d.index {
			if k < len(r.Rcpts) {
				out.Rcpts[i].Reply = r.Rcpts[k].Reply
			}
			if out.Rcpts[i].Reply == nil {
				out.Rcpts[i].Reply = &Reply{Code: 451, Enhanced: EnhancedCode{4, 3, 0}, Message: "No result for this recipient from " + r.Host}
			}
		}
	}
	if err := ctx.Err(); err != nil && len(out.Accepted()) == 0 {
		return nil, err
	}
	out.Host = strings.Join(hosts, ", ")
	return out, nil
}

// groupByDomain groups recipients by domain, in the order of each
// domain's first recipient; bad are the places of recipients without a
// usable domain.
func groupByDomain(to []Recipient) (domains []*mxDomain, bad []int) {
	byName := make(map[string]*mxDomain)
	for i, r := range to {
		name, lit, ok := recipientDomain(r.Addr)
		if !ok {
			bad = append(bad, i)
			continue
		}
		d := byName[name]
		if d == nil {
			d = &mxDomain{domain: name, literal: lit}
			byName[name] = d
			domains = append(domains, d)
		}
		d.index = append(d.index, i)
		d.to = append(d.to, r)
	}
	return domains, bad
}

// recipientDomain returns the domain of an address, lower case and in
// A-labels, or its address literal (RFC 5321 §4.1.3) and the address.
func recipientDomain(addr string) (string, netip.Addr, bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", netip.Addr{}, false
	}
	d := addr[at+1:]
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		lit := d[1 : len(d)-1]
		if v6, ok := strings.CutPrefix(strings.ToLower(lit), "ipv6:"); ok {
			ip, err := netip.ParseAddr(v6)
			if err != nil || !ip.Is6() || ip.Zone() != "" {
				return "", netip.Addr{}, false
			}
			return "[IPv6:" + ip.String() + "]", ip, true
		}
		ip, err := netip.ParseAddr(lit)
		if err != nil || !ip.Is4() {
			return "", netip.Addr{}, false
		}
		return "[" + ip.String() + "]", ip, true
	}
	d = strings.TrimSuffix(d, ".")
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 { // a U-label (RFC 6531 §3.2): look up its A-label
			a, err := idna.Lookup.ToASCII(d)
			if err != nil {
				return "", netip.Addr{}, false
			}
			d = a
			break
		}
	}
	if !isDomainName(d) {
		return "", netip.Addr{}, false
	}
	return strings.ToLower(d), netip.Addr{}, true
}

// isDomainName reports whether d is a domain name of letters, digits,
// hyphens and underscores (RFC 5321 §4.1.2, with the underscore some host
// names hold), in labels of 1 to 63 octets, 253 at most in all (RFC 1035
// §2.3.4).
func isDomainName(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// mxTarget is one host of a domain, with its addresses when they are
// known before it is tried (implicit MX, address literal).
type mxTarget struct {
	name     string
	pref     uint16
	implicit bool
	addrs    []netip.Addr
}

// sendDomain delivers the message to the recipients of one domain.
func (m *MXSender) sendDomain(ctx context.Context, env *Envelope, d *mxDomain, msg Message) (*Receipt, error) {
	targets, err := m.route(ctx, d)
	if err != nil {
		return nil, err
	}
	sub := *env
	sub.To = d.to
	var (
		lastR      *Receipt
		lastErr    error
		attempts   int
		dnsErr     error // a temporary failure of an address lookup
		disallowed bool  // an address AllowAddr refused
	)
	for _, t := range targets {
		addrs := t.addrs
		if addrs == nil {
			addrs, err = m.r.LookupNetIP(ctx, m.o.Network, t.name)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if !dnsname.IsNotFound(err) {
					dnsErr = err
				}
				m.log("relay: mx: no address", d.domain, t.name, netip.AddrPort{}, err)
				continue
			}
		}
		for _, a := range addrs {
			if !m.o.AllowAddr(a) {
				disallowed = true
				continue
			}
			if attempts == m.o.MaxAttempts {
				return lastR, lastErr
			}
			attempts++
			h := MXHost{Domain: d.domain, Name: t.name, Pref: t.pref, Implicit: t.implicit, Addr: netip.AddrPortFrom(a.Unmap(), uint16(m.o.Port))}
			s := m.o.Dial(h)
			if s == nil {
				lastR, lastErr = nil, fmt.Errorf("relay: mx %s: Dial gave no Sender for %s", d.domain, h.Addr)
				continue
			}
			wm := &watchedMessage{Message: msg}
			r, err := s.Send(ctx, &sub, wm)
			if err == nil {
				return r, nil
			}
			if ctx.Err() != nil || wm.failed() {
				return r, err
			}
			lastR = r
			var reply *Reply
			if errors.As(err, &reply) {
				if reply.Permanent() {
					return r, err
				}
				lastErr = err
			} else {
				lastErr = fmt.Errorf("relay: mx %s: %s [%s]: %w", d.domain, t.name, h.Addr, err)
			}
			m.log("relay: mx: attempt failed", d.domain, t.name, h.Addr, err)
		}
	}
	if attempts > 0 {
		return lastR, lastErr
	}
	switch {
	case dnsErr != nil:
		return nil, &Reply{Code: 451, Enhanced: EnhancedCode{4, 4, 3}, Message: fmt.Sprintf("Address lookup for an MX host of %s failed: %v", d.domain, dnsErr)}
	case d.literal.IsValid():
		return nil, &Reply{Code: 550, Enhanced: EnhancedCode{5, 4, 4}, Message: "Address literal not allowed: " + d.domain}
	case disallowed:
		return nil, &Reply{Code: 451, Enhanced: EnhancedCode{4, 4, 4}, Message: "No MX host of " + d.domain + " has an address this sender may connect to"}
	default:
		return nil, &Reply{Code: 451, Enhanced: EnhancedCode{4, 4, 4}, Message: "No MX host of " + d.domain + " has an address"}
	}
}

// route returns the hosts of a domain in the order to try them
// (RFC 5321 §5.1), or the reply that ends the domain.
func (m *MXSender) route(ctx context.Context, d *mxDomain) ([]mxTarget, error) {
	if d.literal.IsValid() {
		return []mxTarget{{name: d.domain, addrs: []netip.Addr{d.literal}}}, nil
	}
	mxs, err := m.r.LookupMX(ctx, d.domain)
	if err != nil && len(mxs) == 0 {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !dnsname.IsNotFound(err) {
			return nil, &Reply{Code: 451, Enhanced: EnhancedCode{4, 4, 3}, Message: fmt.Sprintf("MX lookup for %s failed: %v", d.domain, err)}
		}
		// No MX record: the implicit MX (RFC 5321 §5.1).
		addrs, err := m.r.LookupNetIP(ctx, m.o.Network, d.domain)
		switch {
		case err == nil && len(addrs) > 0:
			return []mxTarget{{name: d.domain, implicit: true, addrs: addrs}}, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err == nil || dnsname.IsNotFound(err):
			return nil, &Reply{Code: 550, Enhanced: EnhancedCode{5, 1, 2}, Message: "Domain " + d.domain + " has no MX and no address record"}
		default:
			return nil, &Reply{Code: 451, Enhanced: EnhancedCode{4, 4, 3}, Message: fmt.Sprintf("Address lookup for %s failed: %v", d.domain, err)}
		}
	}
	// A null MX (RFC 7505 §3) is the only MX of its domain; one beside
	// others (which §3 forbids) is skipped as unusable.
	if len(mxs) == 1 && isNullMX(mxs[0]) {
		return nil, &Reply{Code: 556, Enhanced: EnhancedCode{5, 1, 10}, Message: "Recipient domain " + d.domain + " has a null MX: it accepts no mail"}
	}
	targets := make([]mxTarget, 0, len(mxs))
	for _, mx := range mxs {
		if mx == nil || isNullMX(mx) {
			continue
		}
		targets = append(targets, mxTarget{name: strings.TrimSuffix(mx.Host, "."), pref: mx.Pref})
	}
	if len(targets) == 0 {
		return nil, &Reply{Code: 451, Enhanced: EnhancedCode{4, 4, 4}, Message: "No usable MX record for " + d.domain}
	}
	slices.SortStableFunc(targets, func(a, b mxTarget) int { return cmp.Compare(a.pref, b.pref) })
	m.shuffleEqual(targets)
	return targets, nil
}

func isNullMX(mx *net.MX) bool { return mx.Host == "." || mx.Host == "" }

// shuffleEqual puts the hosts of each preference in random order (RFC 5321
// §5.1: the sender "MUST randomize them to spread the load"), with a
// Fisher-Yates shuffle.
func (m *MXSender) shuffleEqual(ts []mxTarget) {
	m.randMu.Lock()
	defer m.randMu.Unlock()
	for start := 0; start < len(ts); {
		end := start + 1
		for end < len(ts) && ts[end].pref == ts[start].pref {
			end++
		}
		run := ts[start:end]
		for i := len(run) - 1; i > 0; i-- {
			j := int(randUint64(m.o.Rand) % uint64(i+1))
			run[i], run[j] = run[j], run[i]
		}
		start = end
	}
}

func (m *MXSender) log(msg, domain, host string, addr netip.AddrPort, err error) {
	if m.o.Logger == nil {
		return
	}
	attrs := []any{"domain", domain, "host", host, "err", err}
	if addr.IsValid() {
		attrs = append(attrs, "addr", addr)
	}
	m.o.Logger.Debug(msg, attrs...)
}
