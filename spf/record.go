package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Qualifier is the result a mechanism gives when it matches (RFC 7208
// §4.6.2). The zero value means no qualifier was written, which acts as
// QualifierPass.
type Qualifier byte

// The qualifiers of RFC 7208 §4.6.2.
const (
	QualifierNone     Qualifier = 0
	QualifierPass     Qualifier = '+'
	QualifierFail     Qualifier = '-'
	QualifierSoftFail Qualifier = '~'
	QualifierNeutral  Qualifier = '?'
)

// Status returns the result a match with q gives.
func (q Qualifier) Status() Status {
	switch q {
	case QualifierFail:
		return Fail
	case QualifierSoftFail:
		return SoftFail
	case QualifierNeutral:
		return Neutral
	}
	return Pass
}

// The mechanism names of RFC 7208 §5, and the two modifiers of §6.
const (
	MechAll     = "all"
	MechInclude = "include"
	MechA       = "a"
	MechMX      = "mx"
	MechPTR     = "ptr"
	MechIP4     = "ip4"
	MechIP6     = "ip6"
	MechExists  = "exists"

	ModRedirect = "redirect"
	ModExp      = "exp"
)

// Term is one directive or modifier of a record (RFC 7208 §4.6.1).
type Term struct {
	// Mechanism is the lower-case mechanism name for a directive
	// (MechAll ... MechExists); empty for a modifier.
	Mechanism string
	// Qualifier is the directive's qualifier as written (QualifierNone
	// when absent).
	Qualifier Qualifier
	// Modifier is the modifier name as written (for redirect and exp in
	// lower case); empty for a directive.
	Modifier string
	// Domain is the domain-spec (for include a mx ptr exists and redirect
	// exp) or the macro-string value of an unknown modifier, unexpanded,
	// as written. Empty when the mechanism has none.
	Domain string
	// Addr is the address of ip4 and ip6.
	Addr netip.Addr
	// CIDR4 and CIDR6 are the prefix lengths of ip4, ip6, a and mx
	// (RFC 7208 §5.6); -1 when not written.
	CIDR4, CIDR6 int

	macro *macroString // parsed Domain when it holds a macro, else nil
	fqdn  string       // Domain with a final dot, when it has no macro
	raw   string       // the term as written in the record
}

// text is the term as written, or its String form for a Term built by
// hand.
func (t *Term) text() string {
	if t.raw != "" {
		return t.raw
	}
	return t.String()
}

// IsModifier reports whether t is a modifier rather than a directive.
func (t *Term) IsModifier() bool { return t.Modifier != "" }

// LooksUpDNS reports whether t is one of the terms that count against the
// limit of 10 DNS-querying terms (RFC 7208 §4.6.4): include, a, mx, ptr,
// exists and redirect.
func (t *Term) LooksUpDNS() bool {
	switch t.Mechanism {
	case MechInclude, MechA, MechMX, MechPTR, MechExists:
		return true
	}
	return t.Modifier == ModRedirect
}

// Prefix returns the network of an ip4 or ip6 mechanism.
func (t *Term) Prefix() netip.Prefix {
	bits := t.CIDR4
	if t.Mechanism == MechIP6 {
		bits = t.CIDR6
	}
	if bits < 0 {
		bits = t.Addr.BitLen()
	}
	p, _ := t.Addr.Prefix(bits)
	return p
}

// String returns the term as it appears in a record; Parse of it gives the
// same Term.
func (t *Term) String() string {
	var b strings.Builder
	t.appendTo(&b)
	return b.String()
}

func (t *Term) appendTo(b *strings.Builder) {
	if t.IsModifier() {
		b.WriteString(t.Modifier)
		b.WriteByte('=')
		b.WriteString(t.Domain)
		return
	}
	if t.Qualifier != QualifierNone {
		b.WriteByte(byte(t.Qualifier))
	}
	b.WriteString(t.Mechanism)
	switch t.Mechanism {
	case MechIP4, MechIP6:
		b.WriteByte(':')
		b.WriteString(t.Addr.String())
	default:
		if t.Domain != "" {
			b.WriteByte(':')
			b.WriteString(t.Domain)
		}
	}
	if t.CIDR4 >= 0 && t.Mechanism != MechIP6 {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(t.CIDR4))
	}
	if t.CIDR6 >= 0 {
		if t.Mechanism != MechIP6 {
			b.WriteByte('/')
		}
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(t.CIDR6))
	}
}

// Record is a parsed SPF record (RFC 7208 §4.5, §12 grammar).
type Record struct {
	// Terms are the directives and modifiers, in record order.
	Terms []Term
	// Redirect and Exp point into Terms at the redirect and exp modifiers,
	// nil when absent (each may appear at most once, RFC 7208 §6).
	Redirect, Exp *Term
}

// String returns the record text: "v=spf1" and the terms separated by one
// space. Parse(r.String()) gives a Record equal to r.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=spf1")
	for i := range r.Terms {
		b.WriteByte(' ')
		r.Terms[i].appendTo(&b)
	}
	return b.String()
}

// DNSTerms returns how many terms of the record itself count against the
// limit of 10 DNS-querying terms (RFC 7208 §4.6.4); included records are not
// followed.
func (r *Record) DNSTerms() int {
	n := 0
	for i := range r.Terms {
		if r.Terms[i].LooksUpDNS() {
			n++
		}
	}
	return n
}

// IsSPF reports whether a TXT record is an SPF version 1 record: it starts
// with "v=spf1" (case-insensitive) followed by a space or its end
// (RFC 7208 §4.5).
func IsSPF(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

// Parse parses an SPF record (RFC 7208 §4.5, §4.6, §12). The whole record is
// checked: unknown mechanisms, malformed domain-specs and macros, bad CIDR
// lengths, and a second redirect or exp are errors wrapping ErrSyntax.
func Parse(record string) (*Record, error) {
	if !IsSPF(record) {
		return nil, fmt.Errorf("%w: record does not start with \"v=spf1\"", ErrSyntax)
	}
	rest := record[6:]
	r := &Record{Terms: make([]Term, 0, strings.Count(rest, " "))}
	for len(rest) > 0 {
		if rest[0] == ' ' {
			rest = rest[1:]
			continue
		}
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		field := rest[:end]
		rest = rest[end:]
		t, err := parseTerm(field)
		if err != nil {
			return nil, err
		}
		t.raw = field
		r.Terms = append(r.Terms, t)
	}
	for i := range r.Terms {
		t := &r.Terms[i]
		switch t.Modifier {
		case ModRedirect:
			if r.Redirect != nil {
				return nil, fmt.Errorf("%w: more than one redirect modifier", ErrSyntax)
			}
			r.Redirect = t
		case ModExp:
			if r.Exp != nil {
				return nil, fmt.Errorf("%w: more than one exp modifier", ErrSyntax)
			}
			r.Exp = t
		}
	}
	return r, nil
}

func syntaxErr(term, format string, args ...any) error {
	return fmt.Errorf("%w: %q: %s", ErrSyntax, term, fmt.Sprintf(format, args...))
}

func parseTerm(s string) (Term, error) {
	t := Term{CIDR4: -1, CIDR6: -1}
	// A modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT /
	// "-" / "_" / "." ) (RFC 7208 §4.6.1). A mechanism never contains "="
	// before ":" or "/".
	if i := indexTermSep(s); i > 0 && s[i] == '=' {
		name := s[:i]
		if !isModifierName(name) {
			return t, syntaxErr(s, "invalid modifier name")
		}
		t.Modifier = name
		t.Domain = s[i+1:]
		lower := strings.ToLower(name)
		switch lower {
		case ModRedirect, ModExp:
			t.Modifier = lower
			if err := t.setDomain(t.Domain); err != nil {
				return t, syntaxErr(s, "%v", err)
			}
		default:
			m, err := parseMacroString(t.Domain, false)
			if err != nil {
				return t, syntaxErr(s, "%v", err)
			}
			t.macro = m
		}
		return t, nil
	}
	switch s[0] {
	case '+', '-', '~', '?':
		t.Qualifier = Qualifier(s[0])
		s = s[1:]
	}
	name := s
	if i := indexTermSep(s); i >= 0 {
		name, s = s[:i], s[i:]
	} else {
		s = ""
	}
	// Each case stores the constant, not the record's text, so a Term
	// keeps no part of it; a table lookup instead made Parse 11% slower.
	switch lowerASCII(name) {
	case MechAll:
		t.Mechanism = MechAll
	case MechInclude:
		t.Mechanism = MechInclude
	case MechA:
		t.Mechanism = MechA
	case MechMX:
		t.Mechanism = MechMX
	case MechPTR:
		t.Mechanism = MechPTR
	case MechIP4:
		t.Mechanism = MechIP4
	case MechIP6:
		t.Mechanism = MechIP6
	case MechExists:
		t.Mechanism = MechExists
	default:
		return t, syntaxErr(name, "unknown mechanism")
	}
	switch t.Mechanism {
	case MechAll:
		if s != "" {
			return t, syntaxErr(name+s, "all takes no argument")
		}
	case MechInclude, MechExists:
		if len(s) < 2 || s[0] != ':' {
			return t, syntaxErr(name+s, "%s needs a domain-spec", t.Mechanism)
		}
		if err := t.setDomain(s[1:]); err != nil {
			return t, syntaxErr(name+s, "%v", err)
		}
	case MechPTR:
		if s != "" {
			if len(s) < 2 || s[0] != ':' {
				return t, syntaxErr(name+s, "bad domain-spec")
			}
			if err := t.setDomain(s[1:]); err != nil {
				return t, syntaxErr(name+s, "%v", err)
			}
		}
	case MechA, MechMX:
		spec, cidr := splitCIDR(s)
		if spec != "" {
			if len(spec) < 2 || spec[0] != ':' {
				return t, syntaxErr(name+s, "bad domain-spec")
			}
			if err := t.setDomain(spec[1:]); err != nil {
				return t, syntaxErr(name+s, "%v", err)
			}
		}
		if err := t.parseDualCIDR(cidr); err != nil {
			return t, syntaxErr(name+s, "%v", err)
		}
	case MechIP4, MechIP6:
		if len(s) < 2 || s[0] != ':' {
			return t, syntaxErr(name+s, "%s needs an address", t.Mechanism)
		}
		addr, cidr := s[1:], ""
		if i := strings.IndexByte(addr, '/'); i >= 0 {
			addr, cidr = addr[:i], addr[i:]
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil || ip.Zone() != "" {
			return t, syntaxErr(name+s, "bad address")
		}
		if t.Mechanism == MechIP4 && !ip.Is4() {
			return t, syntaxErr(name+s, "not an IPv4 address")
		}
		if t.Mechanism == MechIP6 && !ip.Is6() {
			return t, syntaxErr(name+s, "not an IPv6 address")
		}
		t.Addr = ip
		if cidr != "" {
			n, err := parseCIDRLen(cidr[1:], ip.BitLen())
			if err != nil {
				return t, syntaxErr(name+s, "%v", err)
			}
			if t.Mechanism == MechIP4 {
				t.CIDR4 = n
			} else {
				t.CIDR6 = n
			}
		}
	}
	return t, nil
}

func (t *Term) setDomain(spec string) error {
	m, err := parseDomainSpec(spec, false)
	if err != nil {
		return err
	}
	t.Domain, t.macro = spec, m
	if m == nil {
		t.fqdn = spec
		if !strings.HasSuffix(spec, ".") {
			t.fqdn += "."
		}
	}
	return nil
}

// splitCIDR splits "[:domain-spec][dual-cidr-length]" at the dual CIDR
// length: a trailing "/N", "//N" or "/N//M" of digits. A macro-string may
// itself contain "/" (RFC 7208 §7.1 macro-literal), so anything else stays
// in the domain-spec, whose domain-end check then rejects it.
func splitCIDR(s string) (spec, cidr string) {
	i := len(s)
	// A trailing "//" 1*DIGIT.
	if j := strings.LastIndexByte(s, '/'); j > 0 && s[j-1] == '/' && j+1 < len(s) && allDigits(s[j+1:]) {
		i = j - 1
	}
	// Then a "/" 1*DIGIT before it.
	if j := strings.LastIndexByte(s[:i], '/'); j >= 0 && j+1 < i && allDigits(s[j+1:i]) {
		i = j
	}
	return s[:i], s[i:]
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseDualCIDR parses dual-cidr-length = [ ip4-cidr-length ] [ "/"
// ip6-cidr-length ] (RFC 7208 §5.6), given with its leading "/".
func (t *Term) parseDualCIDR(s string) error {
	if s == "" {
		return nil
	}
	var v4, v6 string
	has4, has6 := false, false
	if strings.HasPrefix(s, "//") {
		v6, has6 = s[2:], true
	} else {
		v4, has4 = s[1:], true
		if i := strings.Index(v4, "//"); i >= 0 {
			v4, v6, has6 = v4[:i], v4[i+2:], true
		}
	}
	if has4 {
		n, err := parseCIDRLen(v4, 32)
		if err != nil {
			return err
		}
		t.CIDR4 = n
	}
	if has6 {
		n, err := parseCIDRLen(v6, 128)
		if err != nil {
			return err
		}
		t.CIDR6 = n
	}
	return nil
}

// parseCIDRLen parses a CIDR length: 1*DIGIT without leading zeros, in
// 0..max (RFC 7208 §5.6; "/0" is allowed, leading zeros are not).
func parseCIDRLen(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || !allDigits(s) || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("bad CIDR length %q", s)
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, fmt.Errorf("CIDR length %d over %d", n, max)
	}
	return n, nil
}

// indexTermSep returns the index of the first "=", ":" or "/" in s, or -1.
func indexTermSep(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '=', ':', '/':
			return i
		}
	}
	return -1
}

// lowerASCII returns s in lower case, without allocating when it already
// is.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func isModifierName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
