package dkim

import (
	"fmt"
	"strings"
)

// checkDomain checks a d= value: dot-separated labels of letters, digits,
// hyphens and underscores, 1 to 63 octets each, at most 253 octets
// (RFC 6376 §3.5 domain-name, RFC 1035 §2.3.4). Non-ASCII labels must be
// given in A-label form.
func checkDomain(d string) error {
	if d == "" {
		return fmt.Errorf("%w: empty domain", ErrSyntax)
	}
	if len(d) > 253 {
		return fmt.Errorf("%w: domain of %d octets", ErrSyntax, len(d))
	}
	return checkLabels(d)
}

// checkSelector checks an s= value: one or more labels (RFC 6376 §3.1).
func checkSelector(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty selector", ErrSyntax)
	}
	return checkLabels(s)
}

func checkLabels(s string) error {
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%w: bad label in %q", ErrSyntax, clip(s))
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !isAlpha(c) && !('0' <= c && c <= '9') && c != '-' && c != '_' {
				return fmt.Errorf("%w: bad character %q in %q", ErrSyntax, c, clip(s))
			}
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
