package msgauth

import (
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// maxValue is the longest value written: one that would not fit a line of
// 998 octets once folded (RFC 5322 §2.1.1) is left out.
const maxValue = 900

// Format returns the value of an Authentication-Results field (RFC 8601
// §2.2) on one line, without the field name: the authserv-id, then each
// entry of each result as "; method=result reason=... ptype.property=...".
// With no entries it is "authserv-id; none".
//
// Every value is written so that the field parses back to what it holds:
// a value that is not a token (RFC 2045 §5.1) is a quoted-string, with '"'
// and '\' escaped (RFC 5322 §3.2.4); a property value may also be an
// address or domain (RFC 8601 §2.3 pvalue). Entries whose method or result
// is not a Keyword, properties whose name is not ptype.property, control
// characters and values too long for a line are left out. The order of
// properties is smtp.*, header.*, then the rest, each group in the order
// of RFC 8601 §2.7 and RFC 6008 (header.d, header.i, header.s, header.a,
// header.b), unknown ones sorted.
func Format(authServID string, results ...Result) string {
	var b strings.Builder
	b.WriteString(value(authServID, false))
	n := 0
	for _, r := range results {
		if r == nil {
			continue
		}
		for _, e := range r.AuthResults() {
			if s := entry(e); s != "" {
				b.WriteString("; ")
				b.WriteString(s)
				n++
			}
		}
	}
	if n == 0 {
		b.WriteString("; none")
	}
	return b.String()
}

// Header returns the whole Authentication-Results header field (RFC 8601
// §2.2), ready to prepend to a message: "Authentication-Results: " and the
// value of Format, folded before each entry and wherever a line would pass
// 78 characters (RFC 5322 §2.1.1), but never inside a quoted-string, ending
// in CRLF. Unfolded (RFC 5322 §2.2.3), it is Format's value.
func Header(authServID string, results ...Result) string {
	var f folder
	f.b.WriteString("Authentication-Results:")
	f.col = f.b.Len()
	f.word(value(authServID, false) + ";")
	var entries []string
	for _, r := range results {
		if r == nil {
			continue
		}
		for _, e := range r.AuthResults() {
			if s := entry(e); s != "" {
				entries = append(entries, s)
			}
		}
	}
	if len(entries) == 0 {
		f.word("none")
	}
	for i, e := range entries {
		f.fold()
		words := splitWords(e)
		for j, w := range words {
			if i < len(entries)-1 && j == len(words)-1 {
				w += ";"
			}
			f.word(w)
		}
	}
	f.b.WriteString("\r\n")
	return f.b.String()
}

// splitWords splits an entry at the spaces between its parts, not at those
// inside a quoted-string: RFC 5322 allows folding there, but parsers in use
// (Mail::AuthenticationResults) keep the line break in the value.
func splitWords(e string) []string {
	var words []string
	start, quoted := 0, false
	for i := 0; i < len(e); i++ {
		switch e[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ' ':
			if !quoted {
				words = append(words, e[start:i])
				start = i + 1
			}
		}
	}
	return append(words, e[start:])
}

// folder writes words separated by spaces, folding before a word that
// would pass column 78.
type folder struct {
	b     strings.Builder
	col   int
	fresh bool // a line was just folded: the next word needs no space
}

// fold puts the next word on a line of its own: CRLF then the space that
// separates it (RFC 5322 §2.2.3: folding inserts CRLF before white space,
// so unfolding gives the same value).
func (f *folder) fold() {
	f.b.WriteString("\r\n ")
	f.col = 1
	f.fresh = true
}

func (f *folder) word(w string) {
	switch {
	case f.fresh:
		f.fresh = false
	case f.col+1+len(w) > 78:
		f.fold()
		f.fresh = false
	default:
		f.b.WriteByte(' ')
		f.col++
	}
	f.b.WriteString(w)
	f.col += len(w)
}

// entry formats one resinfo (RFC 8601 §2.2) without the leading ";", or ""
// when it cannot be written. Words are separated by single spaces and no
// value holds a space unquoted.
func entry(e authres.Result) string {
	method, val, params := fields(e)
	if keyword(method) == "" || keyword(string(val)) == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	b.WriteByte('=')
	b.WriteString(strings.ToLower(string(val)))
	if r := params["reason"]; r != "" {
		if v := value(r, false); len(v) <= maxValue {
			b.WriteString(" reason=")
			b.WriteString(v)
		}
	}
	for _, k := range propertyOrder(params) {
		v := params[k]
		if v == "" {
			continue
		}
		pv := value(v, true)
		if len(pv) > maxValue {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(strings.ToLower(k))
		b.WriteByte('=')
		b.WriteString(pv)
	}
	return b.String()
}

// fields returns the method, result and parameters of an entry of any of
// go-msgauth's types.
func fields(e authres.Result) (string, authres.ResultValue, map[string]string) {
	switch r := e.(type) {
	case *authres.SPFResult:
		return "spf", r.Value, map[string]string{"reason": r.Reason, "smtp.mailfrom": r.From, "smtp.helo": r.Helo}
	case *authres.DKIMResult:
		return "dkim", r.Value, map[string]string{"reason": r.Reason, "header.d": r.Domain, "header.i": r.Identifier}
	case *authres.DMARCResult:
		return "dmarc", r.Value, map[string]string{"reason": r.Reason, "header.from": r.From}
	case *authres.AuthResult:
		return "auth", r.Value, map[string]string{"reason": r.Reason, "smtp.auth": r.Auth}
	case *authres.IPRevResult:
		return "iprev", r.Value, map[string]string{"reason": r.Reason, "policy.iprev": r.IP}
	case *authres.DomainKeysResult:
		return "domainkeys", r.Value, map[string]string{"reason": r.Reason, "header.d": r.Domain, "header.from": r.From, "header.sender": r.Sender}
	case *authres.SenderIDResult:
		return "sender-id", r.Value, map[string]string{"reason": r.Reason, "header." + strings.ToLower(r.HeaderKey): r.HeaderValue}
	case *authres.ARCResult:
		return "arc", r.Value, map[string]string{"smtp.remote-ip": r.RemoteIP}
	case *authres.GenericResult:
		return r.Method, r.Value, r.Params
	}
	return "", "", nil
}

// known is the order of the properties this module writes.
var known = []string{
	"smtp.mailfrom", "smtp.helo", "smtp.auth", "smtp.remote-ip",
	"header.from", "header.d", "header.i", "header.s", "header.a", "header.b",
}

// propertyOrder returns the keys of params that are properties
// (ptype "." property, RFC 8601 §2.2), in the order Format writes them.
func propertyOrder(params map[string]string) []string {
	var keys, rest []string
	for _, k := range known {
		if _, ok := params[k]; ok {
			keys = append(keys, k)
		}
	}
	for k := range params {
		ptype, prop, ok := strings.Cut(k, ".")
		if !ok || keyword(ptype) == "" || keyword(prop) == "" || slices.Contains(known, k) {
			continue
		}
		rest = append(rest, k)
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

// keyword returns k when it is a Keyword of RFC 8601 §2.2 (ldh-str), else "".
func keyword(k string) string {
	if k == "" || k[0] == '-' || k[len(k)-1] == '-' {
		return ""
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return ""
		}
	}
	return k
}

// tspecials are the characters that end a token (RFC 2045 §5.1).
const tspecials = `()<>@,;:\"/[]?=`

// atext are the characters of an atom besides letters and digits (RFC 5322
// §3.2.3).
const atext = "!#$%&'*+-/=?^_`{|}~"

// value writes s as a token when it is one; as an address or domain
// (pvalue, RFC 8601 §2.3) when pvalue is set and it is one; else as a
// quoted-string. Control characters are dropped.
func value(s string, pvalue bool) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if isToken(s) {
		return s
	}
	if pvalue && isAddress(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(tspecials, c) >= 0 {
			return false
		}
	}
	return true
}

// isAddress reports whether s is "[ [ local-part ] "@" ] domain-name"
// (RFC 8601 §2.3) with both parts dot-atoms (RFC 5322 §3.2.3). The domain
// part is read as a dot-atom rather than a strict domain-name so that the
// base64 of header.b (RFC 6008) goes unquoted, as receivers write it and
// parsers expect.
func isAddress(s string) bool {
	local, domain := "", s
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		local, domain = s[:at], s[at+1:]
	}
	return dotAtom(domain, atext) && (local == "" || dotAtom(local, atext))
}

func dotAtom(s, extra string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c >= 0x80 || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}
