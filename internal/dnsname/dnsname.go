// Package dnsname validates domain names, makes them absolute, escapes
// them for the presentation form, and makes and recognizes the errors of
// the module's resolver contract, in one place for every package of the
// module. It imports only the standard
// library, so the leaf packages (spf, dkim, srs, dmarc) can use it without
// pulling in a DNS library; the conversions from miekg/dns records are in
// internal/dnsrr.
package dnsname

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error of Check, CheckLabels and Absolute.
var ErrInvalid = errors.New("invalid domain name")

// Limits of RFC 1035 §2.3.4, in presentation form without the final dot.
const (
	MaxName  = 253
	MaxLabel = 63
)

// Check checks a domain name in relative form (no final dot) against the
// limits of RFC 1035 §2.3.4: 1 to 253 octets (255 on the wire), labels of
// 1 to 63 octets, so no empty label. It looks at lengths only: which
// octets a label may hold is for each protocol to say, and its callers
// check that themselves. A caller that also takes the absolute form
// removes one final dot first.
func Check(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalid)
	}
	if len(name) > MaxName {
		return fmt.Errorf("%w: %d octets, over %d", ErrInvalid, len(name), MaxName)
	}
	return CheckLabels(name)
}

// CheckLabels checks the labels of name only: 1 to 63 octets each
// (RFC 1035 §2.3.4), whatever the length of the whole. It is Check for a
// part of a name, such as a DKIM selector, that other labels follow.
func CheckLabels(name string) error {
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			continue
		}
		switch l := i - start; {
		case l == 0:
			return fmt.Errorf("%w: empty label", ErrInvalid)
		case l > MaxLabel:
			return fmt.Errorf("%w: label of %d octets, over %d", ErrInvalid, l, MaxLabel)
		}
		start = i + 1
	}
	return nil
}

// Absolute returns name with a single trailing dot, after checking it
// with Check. Case is kept. The root "." is valid.
func Absolute(name string) (string, error) {
	n := strings.TrimSuffix(name, ".")
	if n == "" && name == "." {
		return ".", nil
	}
	if err := Check(n); err != nil {
		return "", err
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
