package spf

import (
	"errors"
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

// parseTerm parses one term of a record, a directive or a modifier
// (RFC 7208 §4.6.1).
func parseTerm(s string) (Term, error) {
	t := Term{CIDR4: -1, CIDR6: -1}
	// A modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT /
	// "-" / "_" / "." ) (RFC 7208 §4.6.1). A mechanism never contains "="
	// before ":" or "/".
	if i := indexTermSep(s); i > 0 && s[i] == '=' {
		return t, t.parseModifier(s, s[:i], s[i+1:])
	}
	// directive = [ qualifier ] mechanism (RFC 7208 §4.6.1).
	switch s[0] {
	case '+', '-', '~', '?':
		t.Qualifier = Qualifier(s[0])
		s = s[1:]
	}
	name, arg := s, ""
	if i := indexTermSep(s); i >= 0 {
		name, arg = s[:i], s[i:]
	}
	if t.Mechanism = mechanismName(name); t.Mechanism == "" {
		return t, syntaxErr(name, "unknown mechanism")
	}
	if err := t.parseArgument(arg); err != nil {
		return t, syntaxErr(name+arg, "%v", err)
	}
	return t, nil
}

// parseModifier sets the modifier name = value of term (RFC 7208 §6):
// redirect and exp hold a domain-spec, any other modifier a macro-string
// (§4.6.1), which is checked and otherwise ignored.
func (t *Term) parseModifier(term, name, value string) error {
	if !isModifierName(name) {
		return syntaxErr(term, "invalid modifier name")
	}
	t.Modifier = name
	t.Domain = value
	lower := strings.ToLower(name)
	switch lower {
	case ModRedirect, ModExp:
		t.Modifier = lower
		if err := t.setDomain(value); err != nil {
			return syntaxErr(term, "%v", err)
		}
	default:
		m, err := parseMacroString(value, false)
		if err != nil {
			return syntaxErr(term, "%v", err)
		}
		t.macro = m
	}
	return nil
}

// mechanismName returns the constant of the mechanism called name, in any
// case (RFC 7208 §5, §12), or "" when there is none.
func mechanismName(name string) string {
	// Each case returns the constant, not the record's text, so a Term
	// keeps no part of it; a table lookup instead made Parse 11% slower.
	switch lowerASCII(name) {
	case MechAll:
		return MechAll
	case MechInclude:
		return MechInclude
	case MechA:
		return MechA
	case MechMX:
		return MechMX
	case MechPTR:
		return MechPTR
	case MechIP4:
		return MechIP4
	case MechIP6:
		return MechIP6
	case MechExists:
		return MechExists
	}
	return ""
}

// parseArgument parses what follows the name of t's mechanism, from its
// ":" or "/" on: nothing for all, a domain-spec for include and exists,
// an optional one for ptr, an optional one and CIDR lengths for a and mx,
// an address and a CIDR length for ip4 and ip6 (RFC 7208 §5.1 to §5.7).
func (t *Term) parseArgument(arg string) error {
	switch t.Mechanism {
	case MechAll:
		if arg != "" {
			return errors.New("all takes no argument")
		}
	case MechInclude, MechExists:
		if len(arg) < 2 || arg[0] != ':' {
			return fmt.Errorf("%s needs a domain-spec", t.Mechanism)
		}
		return t.setDomain(arg[1:])
	case MechPTR:
		return t.parseOptionalDomain(arg)
	case MechA, MechMX:
		spec, cidr := splitCIDR(arg)
		if err := t.parseOptionalDomain(spec); err != nil {
			return err
		}
		return t.parseDualCIDR(cidr)
	case MechIP4, MechIP6:
		return t.parseNetwork(arg)
	}
	return nil
}

// parseOptionalDomain parses [ ":" domain-spec ] (RFC 7208 §5.3 to §5.5).
func (t *Term) parseOptionalDomain(arg string) error {
	if arg == "" {
		return nil
	}
	if len(arg) < 2 || arg[0] != ':' {
		return errors.New("bad domain-spec")
	}
	return t.setDomain(arg[1:])
}

// parseNetwork parses the ":" address [ "/" CIDR length ] of ip4 and ip6
// (RFC 7208 §5.6): an address of the mechanism's family, without a zone.
func (t *Term) parseNetwork(arg string) error {
	if len(arg) < 2 || arg[0] != ':' {
		return fmt.Errorf("%s needs an address", t.Mechanism)
	}
	addr, cidr := arg[1:], ""
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr, cidr = addr[:i], addr[i:]
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return errors.New("bad address")
	}
	if t.Mechanism == MechIP4 && !ip.Is4() {
		return errors.New("not an IPv4 address")
	}
	if t.Mechanism == MechIP6 && !ip.Is6() {
		return errors.New("not an IPv6 address")
	}
	t.Addr = ip
	if cidr == "" {
		return nil
	}
	n, err := parseCIDRLen(cidr[1:], ip.BitLen())
	if err != nil {
		return err
	}
	if t.Mechanism == MechIP4 {
		t.CIDR4 = n
	} else {
		t.CIDR6 = n
	}
	return nil
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
