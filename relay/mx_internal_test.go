package relay

import (
	"strings"
	"testing"
)

func TestRecipientDomain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, domain string // domain "" when refused
		literal      string
	}{
		{"bob@example.org", "example.org", ""},
		{"Bob@Example.ORG", "example.org", ""},
		{"bob@example.org.", "example.org", ""},
		{`"odd@local"@example.org`, "example.org", ""},
		{"leser@bücher.example", "xn--bcher-kva.example", ""},
		{"bob@[192.0.2.1]", "[192.0.2.1]", "192.0.2.1"},
		{"bob@[IPv6:2001:DB8::1]", "[IPv6:2001:db8::1]", "2001:db8::1"},
		{"bob@[ipv6:::ffff:192.0.2.1]", "[IPv6:::ffff:192.0.2.1]", "::ffff:192.0.2.1"},
		{"bob", "", ""},
		{"bob@", "", ""},
		{"bob@.", "", ""},
		{"bob@[192.0.2]", "", ""},
		{"bob@[2001:db8::1]", "", ""},       // IPv6 needs its tag (RFC 5321 §4.1.3)
		{"bob@[IPv6:192.0.2.1]", "", ""},    // and IPv4 none
		{"bob@[IPv6:fe80::1%eth0]", "", ""}, // no zone
		{"bob@exa mple.org", "", ""},
		{"bob@example.org\r\nRCPT TO:<x@y>", "", ""},
		{"bob@a..example", "", ""},
		{"bob@" + strings.Repeat("a", 64) + ".example", "", ""},
		{"bob@under_score.example", "under_score.example", ""},
	} {
		d, lit, ok := recipientDomain(tc.addr)
		if ok != (tc.domain != "") || d != tc.domain {
			t.Errorf("%q: domain %q %v, want %q", tc.addr, d, ok, tc.domain)
		}
		if got := ""; lit.IsValid() {
			got = lit.String()
			if got != tc.literal {
				t.Errorf("%q: literal %s, want %s", tc.addr, got, tc.literal)
			}
		} else if tc.literal != "" {
			t.Errorf("%q: no literal, want %s", tc.addr, tc.literal)
		}
	}
}

// FuzzRecipientDomain checks that any address gives either no domain or
// one that is lower case (but for an IPv6 literal's tag), without
// white space or line ends, and that reads the same again.
func FuzzRecipientDomain(f *testing.F) {
	for _, s := range []string{"bob@example.org", "a@[192.0.2.1]", "a@[IPv6:2001:db8::1]", "x@bücher.example", "@", "a@b@c", "a@[", "a@]", "@.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		d, lit, ok := recipientDomain(addr)
		if !ok {
			if d != "" || lit.IsValid() {
				t.Fatalf("%q: refused, yet domain %q literal %v", addr, d, lit)
			}
			return
		}
		if d == "" || strings.ContainsAny(d, " \t\r\n") {
			t.Fatalf("%q: domain %q", addr, d)
		}
		if !lit.IsValid() && d != strings.ToLower(d) {
			t.Fatalf("%q: domain %q not lower case", addr, d)
		}
		d2, lit2, ok2 := recipientDomain("x@" + d)
		if !ok2 || d2 != d || lit2 != lit {
			t.Fatalf("%q: domain %q reads again as %q %v %v", addr, d, d2, lit2, ok2)
		}
	})
}
