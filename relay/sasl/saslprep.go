package sasl

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// errPrep is what SASLprep refuses. Its text never quotes the string,
// which may be a password.
var errPrep = errors.New("sasl: SASLprep (RFC 4013) refuses the string")

// SASLprep prepares a user name or password as RFC 4013 says (the
// stringprep profile of RFC 3454): non-ASCII spaces become U+0020, the
// characters "commonly mapped to nothing" are removed, the result is
// normalized to NFKC, and it is refused when it holds a prohibited
// character or breaks the bidirectional rule. stored is true for a string
// kept by a server (a password at setup), which must not hold unassigned
// code points either (RFC 3454 §7); a client's query may.
//
// The one difference from the letter of RFC 4013: the normalization and
// bidirectional tables are those of golang.org/x/text (a recent Unicode)
// where stringprep fixes Unicode 3.2. Both agree on every character that
// Unicode 3.2 assigned (the Unicode normalization stability policy); for
// a character assigned later, a strict peer leaves it alone and this
// function may normalize it, and "unassigned" means unassigned in the
// recent Unicode. Printable ASCII, the common case, is unaffected: it
// passes unchanged, and only ASCII control characters are refused.
func SASLprep(s string, stored bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", errPrep
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf {
			ascii = false
			break
		} else if c < 0x20 || c == 0x7F { // C.2.1
			return "", errPrep
		}
	}
	if ascii {
		return s, nil
	}

	// RFC 4013 §2.1: mapping.
	var b strings.Builder
	for _, r := range s {
		switch {
		case mappedToNothing(r): // RFC 3454 B.1
		case nonASCIISpace(r): // C.1.2
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	// §2.2: normalization form KC.
	out := norm.NFKC.String(b.String())

	// §2.3, §2.4, §2.5: prohibited output, bidi, unassigned.
	var randAL, l bool
	for _, r := range out {
		if prohibited(r) || (stored && !assigned(r)) {
			return "", errPrep
		}
		p, _ := bidi.LookupRune(r)
		switch p.Class() {
		case bidi.R, bidi.AL:
			randAL = true
		case bidi.L:
			l = true
		}
	}
	if randAL { // RFC 3454 §6
		first, _ := utf8.DecodeRuneInString(out)
		last, _ := utf8.DecodeLastRuneInString(out)
		if l || !isRandAL(first) || !isRandAL(last) {
			return "", errPrep
		}
	}
	return out, nil
}

func isRandAL(r rune) bool {
	p, _ := bidi.LookupRune(r)
	return p.Class() == bidi.R || p.Class() == bidi.AL
}

// mappedToNothing is table B.1 of RFC 3454.
func mappedToNothing(r rune) bool {
	switch r {
	case 0x00AD, 0x034F, 0x1806, 0x180B, 0x180C, 0x180D, 0x200B, 0x200C,
		0x200D, 0x2060, 0xFEFF:
		return true
	}
	return 0xFE00 <= r && r <= 0xFE0F
}

// nonASCIISpace is table C.1.2 of RFC 3454.
func nonASCIISpace(r rune) bool {
	switch r {
	case 0x00A0, 0x1680, 0x202F, 0x205F, 0x3000:
		return true
	}
	return 0x2000 <= r && r <= 0x200B
}

// prohibited is the union of the tables RFC 4013 §2.3 lists: C.1.2,
// C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8 and C.9 of RFC 3454.
func prohibited(r rune) bool {
	if nonASCIISpace(r) {
		return true
	}
	in := func(lo, hi rune) bool { return lo <= r && r <= hi }
	switch {
	case r < 0x20, r == 0x7F: // C.2.1
		return true
	case in(0x80, 0x9F), r == 0x06DD, r == 0x070F, r == 0x180E, r == 0x200C,
		r == 0x200D, r == 0x2028, r == 0x2029, in(0x2060, 0x2063),
		in(0x206A, 0x206F), r == 0xFEFF, in(0xFFF9, 0xFFFC),
		in(0x1D173, 0x1D17A): // C.2.2
		return true
	case in(0xE000, 0xF8FF), in(0xF0000, 0xFFFFD), in(0x100000, 0x10FFFD): // C.3
		return true
	case in(0xFDD0, 0xFDEF), r&0xFFFE == 0xFFFE: // C.4
		return true
	case in(0xD800, 0xDFFF): // C.5
		return true
	case in(0xFFF9, 0xFFFD): // C.6
		return true
	case in(0x2FF0, 0x2FFB): // C.7
		return true
	case r == 0x0340, r == 0x0341, r == 0x200E, r == 0x200F, in(0x202A, 0x202E): // C.8
		return true
	case r == 0xE0001, in(0xE0020, 0xE007F): // C.9
		return true
	}
	return false
}

// assigned reports whether r is an assigned code point (in the Unicode
// version of package unicode; see SASLprep).
func assigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S,
		unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}
