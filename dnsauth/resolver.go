package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// ErrInvalidName is wrapped by the error for a name refused before any
// query: over 253 octets, a label over 63, or an empty label (RFC 1035
// §2.3.4).
var ErrInvalidName = dnsname.ErrInvalid

// ResolverOptions configures a Resolver. The zero value, like a nil
// *ResolverOptions, gives the defaults.
type ResolverOptions struct {
	// Servers are the servers asked, as "host:port" (a port-less host gets
	// 53), in order: each attempt tries them all before the next attempt.
	// Default: the nameservers of ResolvConf.
	Servers []string
	// ResolvConf is the resolv.conf(5) file read when Servers is empty.
	// Default: /etc/resolv.conf. When the file does not exist, or names no
	// nameserver, the servers are 127.0.0.1:53 and [::1]:53, as with
	// *net.Resolver; a file that exists but cannot be read is an error.
	ResolvConf string
	// Timeout is the time one query to one server may take. Default 2s.
	Timeout time.Duration
	// Attempts is how many times each server is tried. Default 2.
	Attempts int
	// UDPSize is the EDNS0 UDP payload size advertised (RFC 6891 §6.2.5).
	// Default 1232, the size that avoids IP fragmentation on common paths.
	UDPSize uint16
	// CacheSize is the most answers kept. Default 4096; negative disables
	// the cache (identical lookups in flight are still merged).
	CacheSize int
	// MaxTTL caps how long an answer is cached, whatever its TTL.
	// Default 1 hour.
	MaxTTL time.Duration
	// Now is the clock of the cache. Default time.Now.
	Now func() time.Time
	// Logger receives one debug record per query sent. Default: discard.
	Logger *slog.Logger
}

// Resolver is a caching DNS stub resolver. It is safe for concurrent use.
type Resolver struct {
	config

	mu       sync.Mutex
	cache    map[cacheKey]*entry
	inflight map[cacheKey]*call
}

// config is what NewResolver sets and nothing changes after.
type config struct {
	servers  []string
	attempts int
	udpSize  uint16
	maxTTL   time.Duration
	now      func() time.Time
	log      *slog.Logger
	udp, tcp *dns.Client
	capacity int
}

// NewResolver returns a Resolver configured by opts (nil: defaults).
func NewResolver(opts *ResolverOptions) (*Resolver, error) {
	var o ResolverOptions
	if opts != nil {
		o = *opts
	}
	r := &Resolver{config: config{attempts: 2, udpSize: 1232, maxTTL: time.Hour, now: time.Now, capacity: 4096}}
	timeout := 2 * time.Second
	if len(o.Servers) == 0 {
		path := o.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		cc, err := dns.ClientConfigFromFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			cc = &dns.ClientConfig{}
		case err != nil:
			return nil, fmt.Errorf("dnsauth: reading %s: %w", path, err)
		}
		for _, s := range cc.Servers {
			o.Servers = append(o.Servers, net.JoinHostPort(s, cc.Port))
		}
		if cc.Timeout > 0 {
			timeout = time.Duration(cc.Timeout) * time.Second
		}
		if cc.Attempts > 0 {
			r.attempts = cc.Attempts
		}
		if len(o.Servers) == 0 {
			// As *net.Resolver does: no file, or no nameserver line in
			// it, means a server on the local host.
			o.Servers = []string{"127.0.0.1:53", "[::1]:53"}
		}
	}
	for _, s := range o.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		r.servers = append(r.servers, s)
	}
	if o.Timeout < 0 || o.Attempts < 0 || o.MaxTTL < 0 {
		return nil, errors.New("dnsauth: negative Timeout, Attempts or MaxTTL")
	}
	if o.Timeout > 0 {
		timeout = o.Timeout
	}
	if o.Attempts > 0 {
		r.attempts = o.Attempts
	}
	if o.UDPSize != 0 {
		if o.UDPSize < dns.MinMsgSize {
			return nil, fmt.Errorf("dnsauth: UDPSize %d under %d", o.UDPSize, dns.MinMsgSize)
		}
		r.udpSize = o.UDPSize
	}
	if o.CacheSize != 0 {
		r.capacity = max(o.CacheSize, 0)
	}
	if o.MaxTTL > 0 {
		r.maxTTL = o.MaxTTL
	}
	if o.Now != nil {
		r.now = o.Now
	}
	r.log = o.Logger
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.udp = &dns.Client{Net: "udp", Timeout: timeout, UDPSize: r.udpSize}
	r.tcp = &dns.Client{Net: "tcp", Timeout: timeout}
	r.cache = map[cacheKey]*entry{}
	r.inflight = map[cacheKey]*call{}
	return r, nil
}

// Servers returns the servers asked, as host:port, in order.
func (r *Resolver) Servers() []string { return slices.Clone(r.servers) }

// Answer is the outcome of a successful lookup.
type Answer struct {
	// Name is the name asked, absolute.
	Name string
	// Canonical is the owner of Records: Name, or the end of its CNAME
	// chain.
	Canonical string
	// Records are the records of the type asked, owned by Canonical.
	Records []dns.RR
	// Authenticated reports that every answer on the way had the AD bit
	// set: the server, a validating resolver, says it validated the data
	// with DNSSEC (RFC 4035 §3.2.3). Trust it only on a secure path to
	// that resolver (RFC 6840 §5.7).
	Authenticated bool
	// Server is the server that gave the (last) answer.
	Server string
	// TTL is the least TTL on the way, the time the answer may be cached.
	TTL time.Duration
}

// Lookup asks for the records of type qtype at name (through the cache),
// following CNAMEs. Not found and temporary failures are errors of the
// package contract.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	e, err := r.lookup(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	return e.answer, nil
}

// lookup is Lookup giving the cache entry, which is never nil without an
// error and always has an answer.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (*entry, error) {
	abs, err := dnsname.Absolute(name)
	if err != nil {
		return nil, dnsname.Invalid(name, err)
	}
	abs = dnsname.Escape(abs)
	e, err := r.cached(ctx, abs, qtype)
	if err != nil {
		return nil, err
	}
	if e.err != nil {
		return nil, e.err
	}
	return e, nil
}

// LookupAt asks one server (host:port) directly for the records of type
// qtype at name, without the cache and without failover, as checks of each
// authoritative server of a zone need. CNAMEs are followed, asking the same
// server.
func (r *Resolver) LookupAt(ctx context.Context, server, name string, qtype uint16) (*Answer, error) {
	abs, err := dnsname.Absolute(name)
	if err != nil {
		return nil, dnsname.Invalid(name, err)
	}
	abs = dnsname.Escape(abs)
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	e := r.resolve(ctx, abs, qtype, server)
	if e.err != nil {
		return nil, e.err
	}
	return e.answer, nil
}
