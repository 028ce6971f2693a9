package dnsname

import "strings"

// Names cross this module's API as *net.Resolver takes them: labels of raw
// octets separated by dots, with no escapes (a backslash is a backslash).
// Inside, and in github.com/miekg/dns, names are in the presentation form
// of RFC 1035 §5.1, where special octets are escaped. Escape goes from the
// first to the second; Equal compares two presentation names as the wire
// labels they stand for.

// Escape returns the presentation form of a name of raw labels: '.', ' ',
// '\”, '@', ';', '(', ')', '"' and '\' inside a label get a backslash, and
// octets outside printable ASCII become \DDD, as miekg/dns writes the names
// it unpacks. The dots between labels are kept.
func Escape(name string) string {
	if !needsEscape(name) {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			b.WriteByte('.')
		case isSpecial(c):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			writeDDD(&b, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (isSpecial(c) || c < ' ' || c > '~') {
			return true
		}
	}
	return false
}

func isSpecial(c byte) bool {
	switch c {
	case ' ', '\'', '@', ';', '(', ')', '"', '\\':
		return true
	}
	return false
}

func writeDDD(b *strings.Builder, c byte) {
	b.WriteByte('\\')
	b.WriteByte('0' + c/100)
	b.WriteByte('0' + c/10%10)
	b.WriteByte('0' + c%10)
}

// Equal reports whether two names in presentation form are the same name:
// the same octets in the same labels, ASCII letters compared without
// regard to case (RFC 4343), a final dot optional.
func Equal(a, b string) bool {
	for {
		ca, na, ea := next(a)
		cb, nb, eb := next(b)
		if na == 0 || nb == 0 {
			return trimRoot(a) && trimRoot(b)
		}
		if ea != eb || lower(ca) != lower(cb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
}

// trimRoot reports whether what is left of a name is nothing or the final
// dot.
func trimRoot(s string) bool { return s == "" || s == "." }

// next returns the first octet of a presentation name, how many
// characters it took, and whether it was a label separator (an unescaped
// dot). n is 0 at the end of the name.
func next(s string) (c byte, n int, sep bool) {
	switch {
	case s == "":
		return 0, 0, false
	case s[0] == '.':
		if len(s) == 1 {
			return 0, 0, false
		}
		return '.', 1, true
	case s[0] != '\\':
		return s[0], 1, false
	case len(s) >= 4 && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]):
		v := int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
		if v < 256 {
			return byte(v), 4, false
		}
	}
	if len(s) >= 2 {
		return s[1], 2, false
	}
	return '\\', 1, false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// UnescapeTXT returns the octets of a character-string in the
// presentation form miekg/dns keeps TXT data in (RFC 1035 §5.1: \X is X,
// \DDD the octet DDD), so that TXT lookups give the raw text, as
// *net.Resolver does.
func UnescapeTXT(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		c, n, _ := next(s)
		if s[0] == '.' {
			c, n = '.', 1
		}
		b.WriteByte(c)
		s = s[n:]
	}
	return b.String()
}

// EscapeTXT returns the presentation form of raw TXT data for miekg/dns:
// '"' and '\' get a backslash, octets outside printable ASCII become \DDD.
func EscapeTXT(s string) string {
	need := false
	for i := 0; i < len(s) && !need; i++ {
		c := s[i]
		need = c == '"' || c == '\\' || c < ' ' || c > '~'
	}
	if !need {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			writeDDD(&b, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
