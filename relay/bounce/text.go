package bounce

import (
	"html"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDiagnostic caps the bytes of a Recipient.Diagnostic.
const maxDiagnostic = 2000

// splitLines splits text into lines without their line endings (CRLF,
// LF or a lone CR).
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

// addrPattern is a mailbox as bounces write it: a local part (dot-atom
// characters, or a quoted string) and a domain of at least two labels.
// It is loose on purpose: it finds the address in "<a@b.example>:",
// "a@b.example on <date>" and "RCPT TO:<a@b.example>".
const addrPattern = `(?:"[^"\r\n]{1,64}"|[^\s<>()\[\]{},;:"'@]{1,128})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}`

var addrRE = regexp.MustCompile(addrPattern)

// cleanAddress strips angle brackets, quotes around the whole address, a
// "mailto:" and white space.
func cleanAddress(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "mailto:")
	for len(s) >= 2 && (s[0] == '<' && s[len(s)-1] == '>' || s[0] == '"' && s[len(s)-1] == '"' && strings.Count(s, `"`) == 2) {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// headerAddresses reads the addresses of an address-list field (RFC 5322
// §3.4), falling back to every address-looking string in it when the
// field does not parse.
func headerAddresses(v string) []string {
	if v = strings.TrimSpace(v); v == "" {
		return nil
	}
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	return addrRE.FindAllString(v, 100)
}

// oneLine collapses runs of white space into one space, trims it, makes
// it valid UTF-8 and caps it at maxDiagnostic bytes.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDiagnostic {
		cut := maxDiagnostic
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

var (
	enhancedRE = regexp.MustCompile(`([245])\.([0-9]{1,3})\.([0-9]{1,3})`)
	replyRE    = regexp.MustCompile(`[245][0-5][0-9]`)
)

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// enhancedAt reports whether the match [i,j) of enhancedRE in s stands
// alone: not part of an IP address, a version number or a longer number.
// A leading '#' (qmail's "(#5.1.1)") is allowed.
func enhancedAt(s string, i, j int) bool {
	if i > 0 {
		c := s[i-1]
		if isDigit(c) || c == '.' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			return false
		}
	}
	if j < len(s) {
		c := s[j]
		if isDigit(c) || c == '.' && j+1 < len(s) && isDigit(s[j+1]) {
			return false
		}
	}
	return true
}

// replyAt reports whether the match [i,j) of replyRE in s is an SMTP
// reply code (RFC 5321 §4.2): at the start of the text or after a space,
// a colon, a quote or an opening bracket, and followed by the end, a
// space, a hyphen (a multi-line reply), a colon or a comma; not a group
// of an IPv6 address.
func replyAt(s string, i, j int) bool {
	if i > 0 && !strings.ContainsRune(" \t\r\n:'\"([<", rune(s[i-1])) {
		return false
	}
	if j < len(s) && !strings.ContainsRune(" \t\r\n-:,'", rune(s[j])) {
		return false
	}
	// Not a group of an IPv6 address ("2001:db8:220:1::1").
	if i > 1 && s[i-1] == ':' && (j < len(s) && s[j] == ':' || isHex(s[i-2])) {
		return false
	}
	return true
}

func isHex(b byte) bool { return isDigit(b) || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' }

// failureCodes is smtpCodes for the report of a failure or a delay: codes
// of success (class 2, 3) are not its answer and are dropped.
func failureCodes(s string) (reply int, enhanced string) {
	reply, enhanced = smtpCodes(s)
	if reply < 400 {
		reply = 0
	}
	if enhanced != "" && enhanced[0] == '2' {
		enhanced = ""
	}
	return reply, enhanced
}

// smtpCodes finds the SMTP reply code and the enhanced status code in a
// diagnostic. A code of class 4 or 5 is preferred to one of class 2 or
// 3 (a transcript quotes the successful replies before the failure); of
// the enhanced codes, the one that follows the reply code ("550 5.1.1",
// "550-'5.2.2") is preferred to the first one.
func smtpCodes(s string) (reply int, enhanced string) {
	replyEnd := -1
	for _, m := range replyRE.FindAllStringIndex(s, -1) {
		if !replyAt(s, m[0], m[1]) {
			continue
		}
		code, _ := strconv.Atoi(s[m[0]:m[1]])
		if reply == 0 || reply < 400 && code >= 400 {
			reply, replyEnd = code, m[1]
		}
		if reply >= 400 {
			break
		}
	}
	var first, firstFail string
	for _, m := range enhancedRE.FindAllStringIndex(s, -1) {
		if !enhancedAt(s, m[0], m[1]) {
			continue
		}
		code := s[m[0]:m[1]]
		if replyEnd >= 0 && m[0] >= replyEnd && strings.TrimLeft(s[replyEnd:m[0]], " -'\"#") == "" {
			return reply, code
		}
		if first == "" {
			first = code
		}
		if firstFail == "" && code[0] != '2' {
			firstFail = code
		}
	}
	if firstFail != "" {
		return reply, firstFail
	}
	return reply, first
}

// validStatus reads the enhanced status code at the start of a Status
// field (RFC 3464 §2.3.4: "5.1.1 (comment)"), "" when there is none.
func validStatus(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t("); i >= 0 {
		v = v[:i]
	}
	if m := enhancedRE.FindStringIndex(v); m != nil && m[0] == 0 && m[1] == len(v) {
		return v
	}
	return ""
}

// obsZones are the zone names of RFC 5322 §4.3 (obs-zone) and their
// offsets; time.Parse would give them an offset of zero.
var obsZones = map[string]string{
	"UT": "+0000", "GMT": "+0000", "EST": "-0500", "EDT": "-0400", "CST": "-0600", "CDT": "-0500",
	"MST": "-0700", "MDT": "-0600", "PST": "-0800", "PDT": "-0700",
}

// parseDate reads an RFC 5322 date-time (§3.3), as DSN and ARF dates are,
// tolerating a trailing comment and reading the obsolete zone names
// (§4.3); the zero time when it does not parse.
func parseDate(v string) time.Time {
	v = strings.TrimSpace(v)
	if i := strings.LastIndexByte(v, '('); i > 0 && strings.HasSuffix(v, ")") {
		v = strings.TrimSpace(v[:i])
	}
	if v == "" {
		return time.Time{}
	}
	if i := strings.LastIndexByte(v, ' '); i > 0 {
		if off, ok := obsZones[strings.ToUpper(v[i+1:])]; ok {
			v = v[:i+1] + off
		}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	for _, layout := range []string{time.RFC3339Nano, "2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	return time.Time{}
}

var urlRE = regexp.MustCompile(`(?i)\b(?:https?|ftp)://([^/\s?#]+)\S*`)

// withoutURLs replaces each URL of s with its host name: the help pages
// bounces link to are named after reasons ("/reason/#blocked") that may
// not be the answer, while the host ("www.spamhaus.org") tells something.
func withoutURLs(s string) string {
	return urlRE.ReplaceAllString(s, " $1 ")
}

var remoteHostRE = regexp.MustCompile(`(?i)\bhost:?\s+([a-z0-9][a-z0-9.-]*\.[a-z]{2,})\.?\s*[\[(]`)

// remoteHost finds the name of the server that answered in a bounce's
// text ("host mx.example.org[192.0.2.1] said:", "host mx.example.org
// [192.0.2.1]:").
func remoteHost(s string) string {
	if m := remoteHostRE.FindStringSubmatch(s); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

var (
	htmlBreakRE = regexp.MustCompile(`(?i)<(br|/p|/div|/tr|/h[1-6]|/li|p|div|tr|li)\b[^>]*>`)
	htmlDropRE  = regexp.MustCompile(`(?is)<(style|script|head)\b.*?</(style|script|head)>`)
	htmlTagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// htmlText turns an HTML part into text for the scanners: blocks become
// lines, tags go, entities are decoded.
func htmlText(s string) string {
	s = htmlDropRE.ReplaceAllString(s, "")
	s = htmlBreakRE.ReplaceAllString(s, "\n")
	s = htmlTagRE.ReplaceAllString(s, "")
	return html.UnescapeString(s)
}

// decodeUTF8Addr decodes the embedded-unicode-char escapes ("\x{HEX}")
// of an address of type utf-8 (RFC 6533 §3).
func decodeUTF8Addr(s string) string {
	if !strings.Contains(s, `\x{`) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		n, err := strconv.ParseUint(s[i+3:i+j], 16, 32)
		b.WriteString(s[:i])
		if err != nil || n > utf8.MaxRune {
			b.WriteString(s[i : i+j+1])
		} else {
			b.WriteRune(rune(n))
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}
