package main

import (
	"bytes"
	"net/mail"
	"net/netip"
	"strings"
	"time"
)

// hop is one Received field (RFC 5321 §4.4, RFC 5322 §3.6.7), as the MTA
// that added it wrote it.
type hop struct {
	// From is the value of the FROM clause: the name the client gave in
	// HELO/EHLO, an address literal, or (Exim, when it found one) the
	// client's reverse-DNS name.
	From string `json:"from,omitempty"`
	// HELO is the name the client gave: helo= of a comment when there is
	// one (Exim, this module's relay), else From.
	HELO string `json:"helo,omitempty"`
	// RDNS is the client's name as the receiver found it by reverse DNS;
	// empty when the receiver wrote "unknown" or none.
	RDNS string `json:"rdns,omitempty"`
	// IP is the client's address, from the address literal of the FROM
	// clause or its comment; zero when the field names none.
	IP netip.Addr `json:"ip,omitzero"`
	// By, Via, With and ID are the values of those clauses; For the first
	// address of the FOR clause.
	By   string `json:"by,omitempty"`
	Via  string `json:"via,omitempty"`
	With string `json:"with,omitempty"`
	ID   string `json:"id,omitempty"`
	For  string `json:"for,omitempty"`
	// EnvelopeFrom is the MAIL FROM address when the MTA writes it in a
	// comment: Exim's "(envelope-from <a@b>)", maddy's "(envelope-sender
	// <a@b>)".
	EnvelopeFrom string `json:"envelope_from,omitempty"`
	// Date is the time after the last ';'; zero when it is missing or
	// cannot be read, and then DateErr says why.
	Date    time.Time `json:"date,omitzero"`
	DateErr string    `json:"date_error,omitempty"`
}

// maxReceivedTokens bounds the work on one field: a field with more words
// and comments than this is read up to there. Real fields have a few dozen.
const maxReceivedTokens = 256

// token is a word of a Received field, or a comment (its text without the
// outer parentheses).
type token struct {
	text    string
	comment bool
}

// tokenize splits s into words and comments (RFC 5322 §3.2.2 CFWS).
// Angle addresses, address literals and quoted strings are one word. An
// unclosed comment, literal or quote runs to the end of s.
func tokenize(s string) []token {
	var out []token
	for i := 0; i < len(s) && len(out) < maxReceivedTokens; {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			depth, j := 0, i
			for ; j < len(s); j++ {
				switch s[j] {
				case '\\':
					j++
					continue
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			end := min(j, len(s))
			out = append(out, token{text: s[i+1 : end], comment: true})
			i = end + 1
		default:
			j := i
			for closing := byte(0); j < len(s); j++ {
				b := s[j]
				if closing != 0 {
					if b == closing {
						closing = 0
					}
					continue
				}
				switch b {
				case '<':
					closing = '>'
					continue
				case '[':
					closing = ']'
					continue
				case '"':
					closing = '"'
					continue
				}
				if b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == '(' {
					break
				}
			}
			out = append(out, token{text: s[i:j]})
			i = j
		}
	}
	return out
}

// clause keywords of the Received field (RFC 5321 §4.4).
var clauses = map[string]bool{"from": true, "by": true, "via": true, "with": true, "id": true, "for": true}

// parseReceived reads the value of one Received field, liberally: the
// forms of Postfix, Exim, sendmail, Gmail, Microsoft 365, maddy and this
// module's relay, and what else keeps to "from NAME (COMMENT) by NAME ...;
// DATE". It never fails; what it cannot read stays empty.
func parseReceived(value string) hop {
	var h hop
	value = strings.NewReplacer("\r", " ", "\n", " ").Replace(value)
	rest, date := value, ""
	if i := lastSemicolon(value); i >= 0 {
		rest, date = value[:i], strings.TrimSpace(value[i+1:])
	}
	h.Date, h.DateErr = parseDate(date)

	var fromComments []string
	key := ""
	expectValue := false
	for _, t := range tokenize(rest) {
		if t.comment {
			if key == "from" {
				fromComments = append(fromComments, t.text)
			}
			if a, ok := envelopeFrom(t.text); ok && h.EnvelopeFrom == "" {
				h.EnvelopeFrom = a
			}
			continue
		}
		if kw := strings.ToLower(t.text); clauses[kw] && !expectValue {
			key, expectValue = kw, true
			continue
		}
		if !expectValue {
			continue // a word past a clause's value: Exim's "tls TLS_AES..."
		}
		expectValue = false
		switch key {
		case "from":
			if h.From == "" {
				h.From = t.text
			}
		case "by":
			h.By = t.text
		case "via":
			h.Via = t.text
		case "with":
			h.With = t.text
		case "id":
			h.ID = strings.Trim(t.text, "<>")
		case "for":
			h.For = strings.Trim(t.text, "<>")
		}
	}
	h.readFrom(fromComments)
	return h
}

// readFrom reads the client's address, HELO name and reverse-DNS name
// from the FROM clause's value and comments:
//
//	from HELO (RDNS [IP])                 Postfix, sendmail, Gmail, maddy
//	from HELO (unknown [IP])              Postfix without a name
//	from HELO (RDNS. [IP])                Gmail
//	from HELO (RDNS [IPv6:...])           Postfix, IPv6
//	from HELO ([IP])                      this module's relay, sendmail
//	from [IP] ([IP]) (helo=HELO)          this module's relay, odd HELO
//	from RDNS ([IP]:PORT helo=HELO)       Exim
//	from [IP] (helo=HELO)                 Exim without a name
//	from HELO (RDNS [IP] (may be forged)) sendmail
//	from HELO (IP)                        Microsoft 365 internal hops
func (h *hop) readFrom(comments []string) {
	helo := ""
	for _, c := range comments {
		if v, ok := heloParam(c); ok && helo == "" {
			helo = v
		}
		if h.IP.IsValid() {
			continue
		}
		if ip, name, ok := bracketed(c); ok {
			h.IP = ip
			if h.RDNS == "" {
				h.RDNS = name
			}
			continue
		}
		for _, f := range strings.Fields(c) {
			if ip, err := netip.ParseAddr(strings.Trim(f, ",;")); err == nil {
				h.IP = ip.Unmap()
				break
			}
		}
	}
	literal, isLiteral := addrLiteral(h.From)
	if isLiteral && !h.IP.IsValid() {
		h.IP = literal
	}
	switch {
	case helo != "":
		h.HELO = helo
		if !isLiteral && h.RDNS == "" && h.From != "" {
			h.RDNS = strings.TrimSuffix(h.From, ".") // Exim: the FROM value is the name it found
		}
	default:
		h.HELO = h.From
	}
}

// bracketed finds an address literal "[IP]" or "[IPv6:IP]" in a comment
// and the name before it ("RDNS [IP]"; "user@RDNS" for sendmail's ident;
// "unknown" is none).
func bracketed(c string) (netip.Addr, string, bool) {
	i := strings.IndexByte(c, '[')
	if i < 0 {
		return netip.Addr{}, "", false
	}
	j := strings.IndexByte(c[i:], ']')
	if j < 0 {
		return netip.Addr{}, "", false
	}
	ip, ok := addrLiteral(c[i : i+j+1])
	if !ok {
		return netip.Addr{}, "", false
	}
	name := strings.TrimSpace(c[:i])
	if k := strings.LastIndexAny(name, " \t"); k >= 0 {
		name = name[k+1:]
	}
	if k := strings.LastIndexByte(name, '@'); k >= 0 {
		name = name[k+1:]
	}
	name = strings.TrimSuffix(name, ".")
	if strings.EqualFold(name, "unknown") || strings.ContainsAny(name, "=[]()") {
		name = ""
	}
	return ip, name, true
}

// addrLiteral reads "[192.0.2.1]", "[IPv6:2001:db8::1]" or "[2001:db8::1]"
// (RFC 5321 §4.1.3), ignoring a ":PORT" after the bracket.
func addrLiteral(s string) (netip.Addr, bool) {
	if !strings.HasPrefix(s, "[") {
		return netip.Addr{}, false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return netip.Addr{}, false
	}
	in := s[1:end]
	if len(in) > 5 && strings.EqualFold(in[:5], "IPv6:") {
		in = in[5:]
	}
	ip, err := netip.ParseAddr(in)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// heloParam finds "helo=NAME" in a comment: Exim's "[IP] helo=NAME", or
// a comment that is only "helo=..." (this module's relay, which writes
// there a name that cannot stand in the FROM clause, spaces and all).
func heloParam(c string) (string, bool) {
	c = strings.TrimSpace(c)
	if len(c) > 5 && strings.EqualFold(c[:5], "helo=") {
		return c[5:], true
	}
	for _, f := range strings.Fields(c) {
		if len(f) > 5 && strings.EqualFold(f[:5], "helo=") {
			return strings.Trim(f[5:], "<>\"'"), true
		}
	}
	return "", false
}

// envelopeFrom reads Exim's "envelope-from <a@b>" and maddy's
// "envelope-sender <a@b>" comments; "<>" is the null sender.
func envelopeFrom(c string) (string, bool) {
	f := strings.Fields(c)
	if len(f) != 2 || !strings.HasPrefix(f[1], "<") || !strings.HasSuffix(f[1], ">") {
		return "", false
	}
	if k := strings.ToLower(f[0]); k != "envelope-from" && k != "envelope-sender" {
		return "", false
	}
	return f[1][1 : len(f[1])-1], true
}

// lastSemicolon is the index of the last ';' outside comments, or -1.
func lastSemicolon(s string) int {
	depth, last := 0, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case ';':
			if depth == 0 {
				last = i
			}
		}
	}
	return last
}

// parseDate reads the date-time of a Received field (RFC 5322 §3.3, with
// the obsolete forms net/mail accepts), with a trailing comment such as
// "(UTC)" or "(PST)" removed when that is what stops it.
func parseDate(s string) (time.Time, string) {
	if s == "" {
		return time.Time{}, "no date"
	}
	t, err := mail.ParseDate(s)
	if err != nil {
		if i := strings.IndexByte(s, '('); i > 0 {
			if t2, err2 := mail.ParseDate(strings.TrimSpace(s[:i])); err2 == nil {
				return t2, ""
			}
		}
		return time.Time{}, "unreadable date " + quoteShort(s)
	}
	return t, ""
}

// quoteShort quotes s, cut to 64 bytes: hostile input is not echoed whole.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// chainHop is a hop of the Received chain in the order the message went,
// with the delay since the hop before it.
type chainHop struct {
	hop
	// Field is the position of the field in the header, 1 for the topmost
	// (the last hop).
	Field int `json:"field"`
	// Delay is the time since the previous hop; DelayKnown is false when
	// either date is missing (and for the first hop).
	Delay      time.Duration `json:"delay_ns"`
	DelayKnown bool          `json:"delay_known"`
}

// maxHops is how many Received fields, from the top, the chain shows: a
// message with more has looped (RFC 5321 §6.3 suggests a limit of 100).
const maxHops = 100

// chain puts the Received fields of a header (topmost first, as they are
// prepended) in the order the message travelled, first hop first, with
// the delay between consecutive hops whose dates were read.
func chain(fields []string) []chainHop {
	fields = fields[:min(len(fields), maxHops)]
	out := make([]chainHop, len(fields))
	for i, f := range fields {
		out[len(fields)-1-i] = chainHop{hop: parseReceived(f), Field: i + 1}
	}
	for i := 1; i < len(out); i++ {
		if !out[i].Date.IsZero() && !out[i-1].Date.IsZero() {
			out[i].Delay, out[i].DelayKnown = out[i].Date.Sub(out[i-1].Date), true
		}
	}
	return out
}

// readHeader returns the values of the Received and Return-Path fields of
// msg's header block, in the order of the message, unfolded (RFC 5322
// §2.2.3). It reads up to the first empty line, liberally: a line that is
// not a field is skipped.
func readHeader(msg []byte) (received, returnPath []string) {
	var name, value string
	flush := func() {
		switch strings.ToLower(name) {
		case "received":
			received = append(received, strings.TrimSpace(value))
		case "return-path":
			returnPath = append(returnPath, strings.TrimSpace(value))
		}
		name, value = "", ""
	}
	for b := range bytes.Lines(msg) {
		// A CR not before LF is white space here (RFC 5322 §2.2 forbids it).
		l := strings.ReplaceAll(strings.TrimRight(string(b), "\r\n"), "\r", " ")
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			if name != "" {
				value += " " + strings.TrimLeft(l, " \t")
			}
			continue
		}
		flush()
		if n, v, ok := strings.Cut(l, ":"); ok && !strings.ContainsAny(n, " \t") {
			name, value = n, v
		}
	}
	flush()
	return received, returnPath
}
