package dkim

import (
	"fmt"
	"strings"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// checkDomain checks a d= value (RFC 6376 §3.5 domain-name): the lengths
// of RFC 1035 §2.3.4 (dnsname.Check: 1 to 253 octets, labels of 1 to 63,
// no final dot), and, as DKIM adds, labels of letters, digits, hyphens and
// underscores only. Non-ASCII labels must be given in A-label form.
func checkDomain(d string) error {
	if d == "" {
		return fmt.Errorf("%w: empty domain", ErrSyntax)
	}
	if err := dnsname.Check(d); err != nil {
		return fmt.Errorf("%w: domain %q: %v", ErrSyntax, clip(d), err)
	}
	return checkChars(d)
}

// checkSelector checks an s= value: one or more labels (RFC 6376 §3.1) of
// the same octets as checkDomain's. Only its labels are limited here: the
// whole is a part of the name of the key record, which the resolver
// checks.
func checkSelector(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty selector", ErrSyntax)
	}
	if err := dnsname.CheckLabels(s); err != nil {
		return fmt.Errorf("%w: selector %q: %v", ErrSyntax, clip(s), err)
	}
	return checkChars(s)
}

// checkChars checks that the labels of s hold only letters, digits and
// hyphens (the sub-domain of RFC 5321 §4.1.2 that RFC 6376 §3.5 uses) and
// underscores, which RFC 5321 leaves out but names in the DNS may hold
// (RFC 2181 §11).
func checkChars(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !('0' <= c && c <= '9') && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%w: bad character %q in %q", ErrSyntax, c, clip(s))
		}
	}
	return nil
}

// checkIdentifier checks that the domain of an i= value is d= or, unless
// strict (key flag t=s), a subdomain of it (RFC 6376 §3.5, §6.1.1).
func checkIdentifier(i, d string, strict bool) error {
	at := strings.LastIndexByte(i, '@')
	if at < 0 {
		return fmt.Errorf("%w: i=%q has no \"@\"", ErrSyntax, clip(i))
	}
	id := strings.ToLower(strings.TrimSuffix(i[at+1:], "."))
	d = strings.ToLower(d)
	if id == d {
		return nil
	}
	if strict {
		return fmt.Errorf("%w: i= domain %q is not d=%q and the key sets t=s", ErrKey, clip(id), d)
	}
	if !strings.HasSuffix(id, "."+d) {
		return fmt.Errorf("%w: i= domain %q is not within d=%q", ErrSyntax, clip(id), d)
	}
	return nil
}
