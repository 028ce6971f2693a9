// Package dnsname validates domain names, makes them absolute, and makes
// and recognizes the errors of the module's resolver contract, in one
// place for every package of the module. It imports only the standard
// library, so the leaf packages (spf, dkim, srs, dmarc) can use it without
// pulling in a DNS library; the conversions from miekg/dns records are in
// internal/dnsrr.
package dnsname

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error of Absolute.
var ErrInvalid = errors.New("invalid domain name")

// Limits of RFC 1035 §2.3.4, in presentation form without the final dot.
const (
	MaxName  = 253
	MaxLabel = 63
)

// Absolute returns name with a single trailing dot, after checking the
// RFC 1035 §2.3.4 limits: at most 253 octets (255 on the wire), labels of 1
// to 63 octets. Case is kept. The root "." is valid.
func Absolute(name string) (string, error) {
	n := strings.TrimSuffix(name, ".")
	if strings.HasSuffix(n, ".") {
		return "", fmt.Errorf("%w: empty label", ErrInvalid)
	}
	if n == "" {
		if name == "." {
			return ".", nil
		}
		return "", fmt.Errorf("%w: empty name", ErrInvalid)
	}
	if len(n) > MaxName {
		return "", fmt.Errorf("%w: %d octets, over %d", ErrInvalid, len(n), MaxName)
	}
	start := 0
	for i := 0; i <= len(n); i++ {
		if i < len(n) && n[i] != '.' {
			continue
		}
		switch l := i - start; {
		case l == 0:
			return "", fmt.Errorf("%w: empty label", ErrInvalid)
		case l > MaxLabel:
			return "", fmt.Errorf("%w: label of %d octets, over %d", ErrInvalid, l, MaxLabel)
		}
		start = i + 1
	}
	if len(n) < len(name) {
		return name, nil // already absolute: no copy
	}
	return n + ".", nil
}

// Key is the lower-case absolute form of a name already made absolute, for
// map keys and comparisons (DNS names compare case-insensitively, RFC 4343).
func Key(abs string) string {
	for i := 0; i < len(abs); i++ {
		if c := abs[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(abs)
		}
	}
	return abs
}
