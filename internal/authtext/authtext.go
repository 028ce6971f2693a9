// Package authtext makes the values that go into an Authentication-Results
// header field (RFC 8601) safe: reasons without quotes, backslashes or
// anything a parser could take for a property, and property values that
// are domain names or addresses or nothing at all. The spf, dkim and dmarc
// packages build their entries with it, so attacker-chosen text (a d=, a
// selector, a local part, a record quoted in an error) cannot change what
// the header says.
package authtext

import (
	"strings"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// MaxReason is the longest reason written, in octets; a longer one is cut
// at a word and ends in "...". It keeps a folded header line under the 998
// octets of RFC 5322 §2.1.1.
const MaxReason = 200

// Reason returns the text of err for a reason= value (RFC 8601 §2.3): the
// package prefixes ("spf: ", "dkim: " ...) dropped, because the method
// names the package; "§" spelled "section"; every other byte outside
// printable ASCII, and '"', '\' and ';', replaced; and '=' after a word
// holding a dot replaced by ':', so that no word reads as a property
// ("header.i=...") to a parser that splits at white space. nil gives "".
func Reason(err error) string {
	if err == nil {
		return ""
	}
	return Text(err.Error())
}

// Text is Reason for a string.
func Text(s string) string {
	for {
		t := s
		for _, p := range []string{"spf: ", "dkim: ", "dmarc: ", "srs: "} {
			t = strings.TrimPrefix(t, p)
		}
		if t == s {
			break
		}
		s = t
	}
	s = strings.ReplaceAll(s, "§", "section ")
	var b strings.Builder
	b.Grow(len(s))
	dotted := false // the current word holds a dot
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if b.Len() > 0 && !strings.HasSuffix(b.String(), " ") {
				b.WriteByte(' ')
			}
			dotted = false
			continue
		case c == '"':
			c = '\''
		case c == '\\' || c == ';' || c < 0x20 || c >= 0x7f:
			c = '?'
		case c == '.':
			dotted = true
		case c == '=' && dotted:
			c = ':'
		}
		b.WriteByte(c)
	}
	out := strings.TrimSpace(b.String())
	if len(out) > MaxReason {
		cut := strings.LastIndexByte(out[:MaxReason-3], ' ')
		if cut < MaxReason/2 {
			cut = MaxReason - 3
		}
		out = out[:cut] + "..."
	}
	return out
}

// Domain returns d, without a final dot, when it is a domain name within
// the lengths of RFC 1035 §2.3.4 (dnsname.Check) that needs no quoting in
// a property value (RFC 8601 §2.3 pvalue: labels of letters, digits, '-'
// and '_', separated by single dots), else "".
func Domain(d string) string {
	d = strings.TrimSuffix(d, ".")
	if dnsname.Check(d) != nil {
		return ""
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; !isLetDig(c) && c != '-' && c != '_' && c != '.' {
			return ""
		}
	}
	return d
}

// Address returns an address for a property value (RFC 8601 §2.3 pvalue,
// "[ [ local-part ] "@" ] domain-name"): a as it is when its local part is
// a dot-atom (RFC 5322 §3.2.3) and its domain passes Domain; "@domain"
// when only the domain does (§2.3 allows the local part to be left out);
// the domain alone when a has no "@"; else "".
func Address(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return Domain(a)
	}
	local, domain := a[:at], Domain(a[at+1:])
	if domain == "" {
		return ""
	}
	if local == "" || !dotAtom(local) {
		return "@" + domain
	}
	return local + "@" + domain
}

// Keyword returns k when it is a Keyword of RFC 8601 §2.2 (letters,
// digits and '-', not starting or ending with '-') of at most 64
// characters, else "".
func Keyword(k string) string {
	if k == "" || len(k) > 64 || k[0] == '-' || k[len(k)-1] == '-' {
		return ""
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isLetDig(c) && c != '-' {
			return ""
		}
	}
	return k
}

func isLetDig(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// dotAtom reports whether s is a dot-atom-text of RFC 5322 §3.2.3, leaving
// out '=' so that no naive parser splits the value.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetDig(c) && strings.IndexByte("!#$%&'*+-/?^_`{|}~.", c) < 0 {
			return false
		}
	}
	return true
}
