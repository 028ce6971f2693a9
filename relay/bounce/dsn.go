package bounce

import (
	"strings"
	"time"
)

// A delivery status notification (RFC 3464 §2) is a message/delivery-status
// part (or message/global-delivery-status, RFC 6533 §6) of a
// multipart/report (RFC 6522): one group of per-message fields, then one
// group of per-recipient fields for each recipient, the groups separated by
// blank lines, every field in header syntax. Real reports deviate: the
// blank lines are missing or doubled, fields come in any order, the
// address type is missing or wrong ("<a@b>", "RFC822;a@b"), the part is
// text/plain, or the fields stand in the text of a part without any MIME
// structure. parseDSN reads them all line by line: a group ends at a blank
// line or where a per-recipient field that the current group already has
// comes again.

// field is one "Name: value" of a report, unfolded.
type field struct {
	name  string // lower case
	value string
}

// splitField splits a "Name: value" line: a name of letters, digits and
// hyphens that starts with a letter (RFC 5322 §3.6.8, as DSN fields are),
// up to 64 long, white space allowed before the colon.
func splitField(line string) (name, value string, ok bool) {
	i := strings.IndexByte(line, ':')
	if i <= 0 || i > 80 {
		return "", "", false
	}
	name = strings.TrimRight(line[:i], " \t")
	if name == "" || len(name) > 64 || !('A' <= name[0] && name[0] <= 'Z' || 'a' <= name[0] && name[0] <= 'z') {
		return "", "", false
	}
	for j := 1; j < len(name); j++ {
		c := name[j]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", "", false
		}
	}
	return name, line[i+1:], true
}

// fieldGroups reads the fields of a report body, folded lines joined
// (RFC 5322 §2.2.3), and splits them into groups at blank lines. Lines
// that are not fields end the field they follow. At most maxFields are
// read.
func fieldGroups(text string, maxFields int) [][]field {
	var groups [][]field
	var cur []field
	n := 0
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
			cur = nil
		}
	}
	folding := false
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			flush()
			folding = false
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && folding && len(cur) > 0 {
			f := &cur[len(cur)-1]
			f.value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := splitField(line)
		if !ok {
			folding = false
			continue
		}
		if n++; n > maxFields {
			break
		}
		cur = append(cur, field{strings.ToLower(name), strings.TrimSpace(value)})
		folding = true
	}
	flush()
	return groups
}

// dsn is what the fields of one report gave.
type dsn struct {
	reportingMTA string
	envid        string
	arrival      time.Time
	rcpts        []*dsnRecipient
	// truncated: more recipients than the limit.
	truncated bool
}

// dsnRecipient is one per-recipient group, with the raw Status field
// kept apart from the code the Recipient ends up with.
type dsnRecipient struct {
	Recipient
	status        string // the Status field's code
	statusComment string // and the comment after it
	has           map[string]bool
}

// perRecipient lists the per-recipient fields of RFC 3464 §2.3 (and
// Sendmail's X-Actual-Recipient) that begin a new recipient when they come
// again.
var perRecipient = map[string]bool{
	"final-recipient": true, "original-recipient": true, "action": true, "status": true,
	"remote-mta": true, "diagnostic-code": true, "last-attempt-date": true,
	"will-retry-until": true, "final-log-id": true, "x-actual-recipient": true,
}

// parseDSN reads the per-message and per-recipient fields of text (the
// body of a delivery-status part, or a text that holds the fields). It
// keeps at most maxRcpt recipients; with inText true (fields found in a
// text part rather than a report part) a group counts only when it names
// a recipient.
func parseDSN(text string, maxRcpt int, inText bool) *dsn {
	d := &dsn{}
	var cur *dsnRecipient
	end := func() {
		if cur == nil {
			return
		}
		if cur.Address == "" && cur.OriginalAddress != "" {
			cur.Address, cur.OriginalAddress = cur.OriginalAddress, ""
		}
		if strings.EqualFold(cur.Address, cur.OriginalAddress) {
			cur.OriginalAddress = ""
		}
		if cur.Diagnostic == "" && cur.statusComment != "" {
			// "Status: 4.0.0 (host name lookup failure)": the only reason given.
			cur.Diagnostic = cur.statusComment
		}
		keep := cur.Address != "" || !inText && (cur.has["action"] || cur.has["status"] || cur.has["diagnostic-code"])
		if keep {
			if len(d.rcpts) >= maxRcpt {
				d.truncated = true
			} else {
				d.rcpts = append(d.rcpts, cur)
			}
		}
		cur = nil
	}
	for _, group := range fieldGroups(text, 64*maxRcpt+64) {
		for _, f := range group {
			if !perRecipient[f.name] {
				d.messageField(f)
				continue
			}
			if cur != nil && cur.has[f.name] {
				end()
			}
			if cur == nil {
				cur = &dsnRecipient{has: map[string]bool{}}
			}
			cur.has[f.name] = true
			cur.set(f)
		}
		end()
	}
	return d
}

// messageField sets a per-message field (RFC 3464 §2.2).
func (d *dsn) messageField(f field) {
	switch f.name {
	case "reporting-mta":
		if d.reportingMTA == "" {
			_, d.reportingMTA = typed(f.value)
			d.reportingMTA = mtaName(d.reportingMTA)
		}
	case "original-envelope-id":
		if d.envid == "" {
			d.envid = f.value
		}
	case "arrival-date":
		if d.arrival.IsZero() {
			d.arrival = parseDate(f.value)
		}
	}
}

// set stores a per-recipient field (RFC 3464 §2.3).
func (r *dsnRecipient) set(f field) {
	switch f.name {
	case "final-recipient":
		r.Address = recipientAddress(f.value)
	case "original-recipient":
		r.OriginalAddress = recipientAddress(f.value)
	case "x-actual-recipient":
		// Sendmail's actual recipient (a program or file) is not an address.
	case "action":
		a := strings.ToLower(strings.TrimSpace(f.value))
		if i := strings.IndexAny(a, " \t("); i >= 0 {
			a = a[:i]
		}
		r.Action = Action(a)
	case "status":
		r.status = validStatus(f.value)
		if i := strings.IndexByte(f.value, '('); i >= 0 {
			r.statusComment = oneLine(strings.TrimSuffix(strings.TrimSpace(f.value[i+1:]), ")"))
		}
	case "remote-mta":
		_, v := typed(f.value)
		r.RemoteMTA = mtaName(v)
	case "diagnostic-code":
		t, v := typed(f.value)
		r.DiagnosticType = strings.ToLower(t)
		r.Diagnostic = oneLine(v)
	case "last-attempt-date":
		r.LastAttempt = parseDate(f.value)
	}
}

// typed splits "type; value" (RFC 3464 §2.1.2 address-type, mta-name-type,
// diagnostic-type); without a semicolon the type is empty. A type is a
// token: "smtp; 550 a;b" splits at the first semicolon only when what
// precedes it has no space.
func typed(v string) (string, string) {
	t, rest, ok := strings.Cut(v, ";")
	if !ok || strings.ContainsAny(strings.TrimSpace(t), " \t<>@") {
		return "", strings.TrimSpace(v)
	}
	return strings.TrimSpace(t), strings.TrimSpace(rest)
}

// recipientAddress reads an address field: "rfc822; a@b", "RFC822;<a@b>",
// "utf-8; a\x{E9}@b" (RFC 6533 §3), or a bare "<a@b>".
func recipientAddress(v string) string {
	t, addr := typed(v)
	addr = cleanAddress(addr)
	if strings.EqualFold(t, "utf-8") {
		addr = decodeUTF8Addr(addr)
	}
	return addr
}

// mtaName reduces an mta-name ("mx.example.org (192.0.2.1)", "mx.example.org
// [192.0.2.1]") to the name.
func mtaName(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t(["); i > 0 {
		v = v[:i]
	}
	return strings.TrimSuffix(v, ".")
}

// settle fills in the reply code and the status of r from its fields:
// the enhanced code of the remote server's answer when the diagnostic is
// an SMTP reply that carries one (the Status of many MTAs is only the
// class, "5.0.0"), else the Status field, else a code of the class of the
// reply code or the action.
func (r *dsnRecipient) settle() {
	var reply int
	var enhanced string
	switch {
	case r.DiagnosticType == "x-unix":
		// The exit status of a local delivery program, not a reply.
		_, enhanced = smtpCodes(r.Diagnostic)
	case r.Action == ActionFailed || r.Action == ActionDelayed || strings.HasPrefix(r.status, "4") || strings.HasPrefix(r.status, "5"):
		reply, enhanced = failureCodes(r.Diagnostic)
	default:
		reply, enhanced = smtpCodes(r.Diagnostic)
	}
	r.ReplyCode = reply
	generic := r.status == "" || strings.HasSuffix(r.status, ".0.0")
	switch {
	case enhanced != "" && (reply != 0 || generic):
		r.Status = enhanced
	case r.status != "":
		r.Status = r.status
	default:
		r.Status = classStatus(reply, r.Action)
	}
}

// classStatus is the status "class.0.0" (RFC 3463 §3.1, "other undefined
// status") of a report that gives no code: the class of the reply code,
// else of the action; "" when neither tells.
func classStatus(reply int, action Action) string {
	switch {
	case reply >= 200 && reply < 600:
		return string(rune('0'+reply/100)) + ".0.0"
	case action == ActionFailed || action == "expired":
		return "5.0.0"
	case action == ActionDelayed:
		return "4.0.0"
	case action == ActionDelivered || action == ActionRelayed || action == ActionExpanded:
		return "2.0.0"
	}
	return ""
}
