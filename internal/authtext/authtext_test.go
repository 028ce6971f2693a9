package authtext

import (
	"errors"
	"strings"
	"testing"
)

func TestReason(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		// The package prefixes go, at the front only, however many.
		{"spf: no record", "no record"},
		{"dkim: dmarc: srs: spf: nested", "nested"},
		{"dmarc: see spf: here", "see spf: here"},
		{"other: kept", "other: kept"},
		// § is spelled out.
		{"spf: RFC 7208 §4.6.4", "RFC 7208 section 4.6.4"},
		{"§ 3.5 and §6", "section 3.5 and section 6"},
		// Quotes, backslashes and semicolons are replaced.
		{`d= "example.com"`, `d= 'example.com'`},
		{`a\b`, "a?b"},
		{"x; header.d=evil.example", "x? header.d:evil.example"},
		// Control bytes and bytes from 0x7f are replaced, one '?' each;
		// white space becomes single spaces, trimmed at the ends.
		{"a\x00b\x1fc\x7fd", "a?b?c?d"},
		{"caf\u00e9", "caf??"},
		{"  a \t\r\n b\v ", "a b?"},
		// '=' after a word holding a dot reads as a property: replaced.
		{"header.i=@evil.example", "header.i:@evil.example"},
		{"smtp.mailfrom=a@b dkim=pass", "smtp.mailfrom:a@b dkim=pass"},
		{"bad tag a=b.c=d", "bad tag a=b.c:d"},
		{"x. y=1", "x. y=1"},
		{"v=DKIM1", "v=DKIM1"},
		{"", ""},
	} {
		if got := Reason(errors.New(c.in)); got != c.want {
			t.Errorf("Reason(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Reason(nil); got != "" {
		t.Errorf("Reason(nil) = %q", got)
	}
}

func TestReasonTruncates(t *testing.T) {
	t.Parallel()
	// Cut at the last word that fits, with "...".
	words := strings.Repeat("word ", 100)
	got := Reason(errors.New(words))
	if len(got) > MaxReason || !strings.HasSuffix(got, "word...") || !strings.HasPrefix(words, strings.TrimSuffix(got, "...")) {
		t.Errorf("Reason of %d octets of words = %q (%d octets)", len(words), got, len(got))
	}
	// A text whose last space before the limit comes early is cut inside
	// its long word instead.
	long := "short " + strings.Repeat("x", 300)
	got = Reason(errors.New(long))
	if want := long[:MaxReason-3] + "..."; got != want {
		t.Errorf("Reason of one long word = %q, want %q", got, want)
	}
	// At the limit, nothing is cut.
	exact := strings.Repeat("y", MaxReason)
	if got := Reason(errors.New(exact)); got != exact {
		t.Errorf("Reason of %d octets cut to %q", MaxReason, got)
	}
}

func TestDomain(t *testing.T) {
	t.Parallel()
	l63, l64 := strings.Repeat("a", 63), strings.Repeat("a", 64)
	name253 := strings.Repeat("abcdefghi.", 24) + "a.example.com"
	for _, c := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"example.com.", "example.com"},
		{"Sel_1.Ex-Ample.COM", "Sel_1.Ex-Ample.COM"},
		{"com", "com"},
		{l63 + ".com", l63 + ".com"},
		{name253, name253},
		{name253 + ".", name253},
		{"x" + name253, ""},
		{l64 + ".com", ""},
		{"", ""},
		{".", ""},
		{"example.com..", ""},
		{".example.com", ""},
		{"a..b", ""},
		{"exa mple.com", ""},
		{"ex;ample.com", ""},
		{"ex=ample.com", ""},
		{`ex"ample.com`, ""},
		{"m\u00fcnchen.de", ""},
		{"xn--mnchen-3ya.de", "xn--mnchen-3ya.de"},
	} {
		if got := Domain(c.in); got != c.want {
			t.Errorf("Domain(%.40q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAddress(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"user@example.com", "user@example.com"},
		{"first.last+tag@Example.COM.", "first.last+tag@Example.COM"},
		{"!#$%&'*+-/?^_`{|}~@example.com", "!#$%&'*+-/?^_`{|}~@example.com"},
		{"@example.com", "@example.com"},
		{"example.com", "example.com"},
		// A local part that is not a dot-atom, or holds '=', is left out.
		{`"quoted"@example.com`, "@example.com"},
		{"a..b@example.com", "@example.com"},
		{".a@example.com", "@example.com"},
		{"a.@example.com", "@example.com"},
		{"a=b@example.com", "@example.com"},
		{"a b@example.com", "@example.com"},
		{"a@b@example.com", "@example.com"},
		{strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 64) + "@example.com"},
		{strings.Repeat("l", 65) + "@example.com", "@example.com"},
		// A domain that Domain refuses leaves nothing.
		{"user@exa mple.com", ""},
		{"user@", ""},
		{"user@a..b", ""},
		{"bad domain", ""},
		{"", ""},
	} {
		if got := Address(c.in); got != c.want {
			t.Errorf("Address(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestKeyword(t *testing.T) {
	t.Parallel()
	k64 := strings.Repeat("k", 64)
	for _, c := range []struct{ in, want string }{
		{"pass", "pass"},
		{"rsa-sha256", "rsa-sha256"},
		{"X-Custom-1", "X-Custom-1"},
		{"a", "a"},
		{k64, k64},
		{k64 + "k", ""},
		{"", ""},
		{"-pass", ""},
		{"pass-", ""},
		{"a_b", ""},
		{"a.b", ""},
		{"a b", ""},
		{"pass;", ""},
		{"p\u00e4ss", ""},
	} {
		if got := Keyword(c.in); got != c.want {
			t.Errorf("Keyword(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzReason: whatever the error says, the reason holds no '"', '\', ';',
// control byte or byte from 0x7f, is at most MaxReason octets, and has no
// word that a parser splitting at white space could read as a property
// ("x.y=..."). Text says the same as Reason.
func FuzzReason(f *testing.F) {
	for _, s := range []string{
		"spf: RFC 7208 §4.6.4: too many DNS lookups",
		`dkim: signature d="evil.example"; header.d=evil.example`,
		"dmarc: srs: a\\b\x00c\x7fd\u00e9",
		"key p= not base64 (header.b=abc=)",
		strings.Repeat("word ", 60),
		strings.Repeat("x.y=", 80),
		"§§§\t\r\n ;;;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Reason(errors.New(s))
		if text := Text(s); text != got {
			t.Fatalf("Text(%q) = %q, Reason %q", s, text, got)
		}
		if len(got) > MaxReason {
			t.Fatalf("Reason(%q) = %q: %d octets, over %d", s, got, len(got), MaxReason)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c == '"' || c == '\\' || c == ';' || c < 0x20 || c >= 0x7f {
				t.Fatalf("Reason(%q) = %q holds %q", s, got, c)
			}
		}
		for _, w := range strings.Split(got, " ") {
			if dot := strings.IndexByte(w, '.'); dot >= 0 && strings.IndexByte(w[dot:], '=') >= 0 {
				t.Fatalf("Reason(%q) = %q has the word %q, read as a property", s, got, w)
			}
		}
	})
}
