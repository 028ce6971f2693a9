package dmarc

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// maxFromLen bounds the From field value examined, against abuse.
const maxFromLen = 64 << 10

// fromDomains extracts the domains of the addresses in one RFC5322.From
// field value (RFC 5322 §3.6.2), in order, lower-cased, duplicates removed.
//
// It is lenient in the manner of OpenDMARC: comments and quoted strings are
// skipped, the address of an angle-addr is preferred, a leading "From:" or
// "Mail From:" is tolerated. It fails, wrapping ErrFrom, when no address
// with a valid domain is found (RFC 9989 §5.3.1: DMARC validation is then
// not possible). Domains in U-label form are returned as A-labels (RFC 9989
// §5.3.1), with the IDNA lookup mapping.
func fromDomains(value string) ([]string, error) {
	if len(value) > maxFromLen {
		return nil, fmt.Errorf("%w: From field longer than %d bytes", ErrFrom, maxFromLen)
	}
	var out []string
	for _, seg := range splitAddresses(value) {
		addr := segmentAddress(seg)
		if addr == "" {
			continue
		}
		i := strings.LastIndexByte(addr, '@')
		d, ok := toALabels(normalizeDomain(addr[i+1:]))
		ok = ok && utf8.ValidString(addr)
		if !ok || !validDomain(d) {
			return nil, fmt.Errorf("%w: malformed address %q", ErrFrom, addr)
		}
		dup := false
		for _, o := range out {
			dup = dup || o == d
		}
		if !dup {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no address in %q", ErrFrom, truncate(value, 80))
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// splitAddresses removes comments and quoted strings (RFC 5322 §3.2.2,
// §3.2.4), replacing them with a space, and splits the rest at commas that
// are outside angle brackets.
func splitAddresses(v string) []string {
	var segs []string
	var cur strings.Builder
	depth, angle := 0, 0
	inQuote, esc := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case esc:
			esc = false
		case c == '\\' && (inQuote || depth > 0):
			esc = true
		case inQuote:
			if c == '"' {
				inQuote = false
				cur.WriteByte(' ')
			}
		case depth > 0:
			switch c {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					cur.WriteByte(' ')
				}
			}
		case c == '"':
			inQuote = true
		case c == '(':
			depth = 1
		case c == '<':
			angle++
			cur.WriteByte(c)
		case c == '>':
			if angle > 0 {
				angle--
			}
			cur.WriteByte(c)
		case c == ',' && angle == 0:
			segs = append(segs, cur.String())
			cur.Reset()
		case c == '\r' || c == '\n' || c == '\t':
			cur.WriteByte(' ')
		default:
			cur.WriteByte(c)
		}
	}
	return append(segs, cur.String())
}

// segmentAddress returns the address of one segment: the last token with
// an "@" inside angle brackets, else the last token with an "@".
func segmentAddress(seg string) string {
	var inAngle, bare string
	depth := 0
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		tok := seg[start:end]
		start = -1
		if strings.Contains(tok, "@") {
			if depth > 0 {
				inAngle = tok
			} else {
				bare = tok
			}
		}
	}
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; c {
		case '<':
			flush(i)
			depth++
		case '>':
			flush(i)
			if depth > 0 {
				depth--
			}
		case ' ':
			flush(i)
		default:
			if start < 0 {
				start = i
			}
		}
	}
	flush(len(seg))
	addr := inAngle
	if addr == "" {
		addr = bare
	}
	// A route (RFC 5322 §4.4 obs-route) or a "From:" glued to the address.
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && i < strings.LastIndexByte(addr, '@') {
		addr = addr[i+1:]
	}
	return strings.Trim(addr, ";")
}

// validDomain checks a normalized domain: the lengths of RFC 1035 §2.3.4
// (dnsname.Check: 1 to 253 octets, labels of 1 to 63), and, as DMARC
// needs of a domain it looks up, labels of lower-case letters, digits,
// hyphens and underscores, or non-ASCII octets (U-labels).
func validDomain(d string) bool {
	if dnsname.Check(d) != nil {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c >= 0x80) {
			return false
		}
	}
	return true
}
