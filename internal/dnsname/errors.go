package dnsname

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// The error contract of every resolver of the module: "not found"
// (NXDOMAIN, or no record of the type asked: NODATA) is a *net.DNSError with
// IsNotFound; a failure that may pass (SERVFAIL, REFUSED, timeout) is a
// *net.DNSError with IsTemporary. The Err strings are those of package net
// where it has one.

// NotFound is the error for NXDOMAIN and NODATA.
func NotFound(name, server string) error {
	return &net.DNSError{Err: "no such host", Name: name, Server: server, IsNotFound: true}
}

// NoData is the error for a name that exists without records of the type.
func NoData(name, server string) error {
	return &net.DNSError{Err: "no such host (no records of that type)", Name: name, Server: server, IsNotFound: true}
}

// Invalid is the error for a name refused before any query. Like package
// net, it reports the name as not found, so callers that count void lookups
// (RFC 7208 §4.6.4) treat it the same way; errors.Is(err, ErrInvalid) holds.
func Invalid(name string, err error) error {
	return &net.DNSError{Err: err.Error(), Name: name, IsNotFound: true, UnwrapErr: err}
}

// Timeout is the error for a query that got no answer in time.
func Timeout(name, server string) error {
	return &net.DNSError{Err: "i/o timeout", Name: name, Server: server, IsTimeout: true, IsTemporary: true}
}

// ServFail is the error for an answer with RCODE SERVFAIL.
func ServFail(name, server string) error {
	return &net.DNSError{Err: "server misbehaving (SERVFAIL)", Name: name, Server: server, IsTemporary: true}
}

// Refused is the error for an answer with RCODE REFUSED.
func Refused(name, server string) error {
	return &net.DNSError{Err: "server misbehaving (REFUSED)", Name: name, Server: server, IsTemporary: true}
}

// Temporary is a temporary error with the given text.
func Temporary(name, server, text string) error {
	return &net.DNSError{Err: text, Name: name, Server: server, IsTemporary: true}
}

// Context is the error for a lookup stopped by its context;
// errors.Is(err, ctx.Err()) holds.
func Context(name string, err error) error {
	return &net.DNSError{Err: err.Error(), Name: name, IsTimeout: errors.Is(err, context.DeadlineExceeded), IsTemporary: true, UnwrapErr: err}
}

// LookupNetIP is the LookupNetIP of every resolver of the module, over its
// lookup of one address type: network "ip4" asks for A, "ip6" for AAAA,
// "ip" for both; an IP literal is returned as it is. When nothing is found,
// a temporary failure of either type says more than a not-found, and is
// returned.
func LookupNetIP(network, host string, lookup func(qtype uint16) ([]netip.Addr, error)) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	var types []uint16
	switch network {
	case "ip":
		types = []uint16{typeA, typeAAAA}
	case "ip4":
		types = []uint16{typeA}
	case "ip6":
		types = []uint16{typeAAAA}
	default:
		return nil, &net.DNSError{Err: "unknown network " + network, Name: host}
	}
	var out []netip.Addr
	var firstErr error
	for _, t := range types {
		ips, err := lookup(t)
		if err != nil {
			if firstErr == nil || IsNotFound(firstErr) && !IsNotFound(err) {
				firstErr = err
			}
			continue
		}
		out = append(out, ips...)
	}
	if len(out) == 0 {
		return nil, firstErr
	}
	return out, nil
}

// The RR types of RFC 1035 §3.2.2 and RFC 3596 §2.1.
const (
	typeA    = 1
	typeAAAA = 28
)

// IsNotFound reports whether err is a *net.DNSError with IsNotFound.
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
