package spf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// macroSeg is one piece of a macro-string (RFC 7208 §7.1): a literal, or a
// macro-expand with its letter and transformers.
type macroSeg struct {
	lit     string // literal text when letter == 0
	letter  byte   // lower-case macro letter, 0 for a literal
	upper   bool   // the letter was upper case: URL-escape the value
	digits  int    // keep this many right-hand parts; 0 keeps all
	reverse bool   // the "r" transformer
	delims  string // delimiters; "" means "."
	expand  bool   // written as a macro-expand (including %% %_ %-)
}

type macroString struct {
	segs []macroSeg
	// static is the value when there is no macro letter to expand.
	static   string
	isStatic bool
}

var errMacro = errors.New("macro syntax")

// parseMacroString parses a macro-string; with exp, it is an explain-string
// (RFC 7208 §6.2: spaces allowed, and the letters c r t, §7.2).
func parseMacroString(s string, exp bool) (*macroString, error) {
	m := &macroString{}
	lit := strings.Builder{}
	flush := func() {
		if lit.Len() > 0 {
			m.segs = append(m.segs, macroSeg{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			// macro-literal = %x21-24 / %x26-7E; SP only in explain-string.
			if c < 0x21 || c > 0x7e {
				if !(exp && c == ' ') {
					return nil, fmt.Errorf("%w: character %q not allowed", errMacro, c)
				}
			}
			lit.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("%w: %q ends with %%", errMacro, s)
		}
		i++
		switch s[i] {
		case '%':
			lit.WriteByte('%')
			continue
		case '_':
			lit.WriteByte(' ')
			continue
		case '-':
			lit.WriteString("%20")
			continue
		case '{':
		default:
			return nil, fmt.Errorf("%w: %q: %%%c", errMacro, s, s[i])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%w: %q: unclosed %%{", errMacro, s)
		}
		body := s[i+1 : i+end]
		i += end
		seg, err := parseMacroExpand(body, exp)
		if err != nil {
			return nil, err
		}
		flush()
		m.segs = append(m.segs, seg)
	}
	flush()
	m.isStatic = true
	for _, sg := range m.segs {
		if sg.letter != 0 {
			m.isStatic = false
		}
	}
	if m.isStatic {
		for _, sg := range m.segs {
			m.static += sg.lit
		}
	}
	return m, nil
}

// parseMacroExpand parses macro-letter transformers *delimiter (RFC 7208
// §7.1), the text between "%{" and "}".
func parseMacroExpand(body string, exp bool) (macroSeg, error) {
	var seg macroSeg
	seg.expand = true
	if body == "" {
		return seg, fmt.Errorf("%w: empty %%{}", errMacro)
	}
	c := body[0]
	seg.upper = 'A' <= c && c <= 'Z'
	c |= 0x20
	switch c {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !exp {
			return seg, fmt.Errorf("%w: %%{%c} is allowed only in exp text", errMacro, body[0])
		}
	default:
		return seg, fmt.Errorf("%w: unknown macro letter %q", errMacro, body[0])
	}
	seg.letter = c
	rest := body[1:]
	j := 0
	for j < len(rest) && isDigit(rest[j]) {
		j++
	}
	if j > 0 {
		n, err := strconv.Atoi(rest[:j])
		if err != nil || n == 0 {
			// RFC 7208 §7.3: a DIGIT transformer must be nonzero.
			return seg, fmt.Errorf("%w: bad digit transformer %q", errMacro, rest[:j])
		}
		if n > 128 {
			n = 128 // no name has more labels
		}
		seg.digits = n
	}
	rest = rest[j:]
	if rest != "" && rest[0]|0x20 == 'r' {
		seg.reverse = true
		rest = rest[1:]
	}
	for k := 0; k < len(rest); k++ {
		switch rest[k] {
		case '.', '-', '+', ',', '/', '_', '=':
		default:
			return seg, fmt.Errorf("%w: bad delimiter %q", errMacro, rest[k])
		}
	}
	seg.delims = rest
	return seg, nil
}

// parseDomainSpec parses domain-spec = macro-string domain-end, domain-end =
// ( "." toplabel [ "." ] ) / macro-expand (RFC 7208 §7.1). The macro-string
// is nil when s holds no macro (it is then a plain name).
func parseDomainSpec(s string, exp bool) (*macroString, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty domain-spec", errMacro)
	}
	var m *macroString
	last := macroSeg{lit: s}
	if strings.IndexByte(s, '%') >= 0 {
		var err error
		if m, err = parseMacroString(s, exp); err != nil {
			return nil, err
		}
		last = m.segs[len(m.segs)-1]
		if last.expand {
			return m, nil
		}
	} else {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x21 || s[i] > 0x7e {
				return nil, fmt.Errorf("%w: character %q not allowed", errMacro, s[i])
			}
		}
	}
	// The trailing literal must hold "." toplabel [ "." ].
	t := strings.TrimSuffix(s, ".")
	i := strings.LastIndexByte(t, '.')
	if i < 0 || len(t)-i-1 > len(last.lit) || !isTopLabel(t[i+1:]) {
		return nil, fmt.Errorf("%w: %q does not end in a top-level label", errMacro, s)
	}
	return m, nil
}

// isTopLabel: toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-"
// *( alphanum / "-" ) alphanum ) (RFC 7208 §7.1).
func isTopLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	alpha, dash := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			alpha = true
		case isDigit(c):
		case c == '-':
			dash = true
		default:
			return false
		}
	}
	return alpha || dash
}

// expander supplies the values of the macro letters (RFC 7208 §7.2).
type expander interface {
	macroValue(letter byte, domain string) string
}

// expand returns the macro-string expanded for domain (RFC 7208 §7.3).
func (m *macroString) expand(x expander, domain string) string {
	if m.isStatic {
		return m.static
	}
	var b strings.Builder
	for i := range m.segs {
		sg := &m.segs[i]
		if sg.letter == 0 {
			b.WriteString(sg.lit)
			continue
		}
		v := x.macroValue(sg.letter, domain)
		if sg.digits > 0 || sg.reverse || (sg.delims != "" && sg.delims != ".") {
			v = transform(v, sg)
		}
		if sg.upper {
			urlEscape(&b, v)
		} else {
			b.WriteString(v)
		}
	}
	return b.String()
}

// transform splits v on the delimiters, reverses the parts with "r", keeps
// the right-hand digits parts, and joins them with "." (RFC 7208 §7.3).
func transform(v string, sg *macroSeg) string {
	delims := sg.delims
	if delims == "" {
		delims = "."
	}
	parts := splitAny(v, delims)
	if sg.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if sg.digits > 0 && sg.digits < len(parts) {
		parts = parts[len(parts)-sg.digits:]
	}
	return strings.Join(parts, ".")
}

func splitAny(v, delims string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(delims, v[i]) >= 0 {
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	return append(parts, v[start:])
}

// urlEscape writes v with every character outside the RFC 3986 unreserved
// set percent-encoded (RFC 7208 §7.3, upper-case macro letters).
func urlEscape(b *strings.Builder, v string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

// truncateDomain shortens an expanded name over 253 octets (the limit of
// RFC 1035 §2.3.4, dnsname.MaxName) by removing labels from the left
// (RFC 7208 §7.3).
func truncateDomain(s string) string {
	for len(strings.TrimSuffix(s, ".")) > dnsname.MaxName {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return s
		}
		s = s[i+1:]
	}
	return s
}
