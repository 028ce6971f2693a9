package bounce

import (
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Non-standard bounces are texts: an introduction, then each failed
// recipient's address on a line of its own (or after a label) followed by
// the reason, often the remote server's answer, then a copy of the
// original message. Each format below is recognised by the phrases of its
// introduction, written from the messages the MTAs send; the recipients
// and their reasons are then read the same way for all of them, from the
// line with the phrase to the line that introduces the returned message.

// plainFormat is one well-known bounce text.
type plainFormat struct {
	name string
	// starts are lower-case phrases of the introduction; the first line
	// holding one begins the section the recipients are read from.
	starts []string
	// delays are lower-case phrases that make the notice a delay warning:
	// the recipients are delayed, not failed (RFC 3464 §2.3.3).
	delays []string
	// transcript: lines "NNN <address>... reason" of a session transcript
	// name recipients (Sendmail).
	transcript bool
}

// plainFormats are tried on every line of the text; the earliest line
// that holds a phrase chooses the format.
var plainFormats = []plainFormat{
	{name: "postfix", starts: []string{"this is the postfix program", "this is the mail system at host", "postfix smtp server: errors from"},
		delays: []string{"this is a warning only", "delayed mail (still being retried)"}},
	{name: "sendmail", starts: []string{"the following addresses had permanent fatal errors", "the following addresses had transient non-fatal errors", "----- transcript of session follows", "the following addresses had delivery errors", "the following addresses had delivery problems"},
		delays: []string{"warning: could not send message for past", "transient non-fatal errors"}, transcript: true},
	{name: "exim", starts: []string{"the following address(es) failed", "following address(es) failed", "the following address failed", "could not be delivered to one or more of its", "could not be delivered to all of its", "could not be delivered to one or more of", "the address to which the message has not yet been delivered", "has not yet been delivered to one or more of its", "recipient addresses that were", "the following address(es) failed"},
		delays: []string{"has not yet been delivered", "delay reason:"}},
	{name: "qmail", starts: []string{"this is the qmail-send program", "i'm afraid i wasn't able to deliver your message", "your mail message to the following address(es) could not be delivered"}},
	{name: "yahoo", starts: []string{"sorry, we were unable to deliver your message to the following address"}},
	{name: "gmail", starts: []string{"delivery to the following recipient failed permanently", "delivery to the following recipient has been delayed", "delivery to the following recipients failed", "delivery to the following recipient failed", "** message not delivered **", "** address not found **"},
		delays: []string{"has been delayed", "this is a warning message only"}},
	{name: "exchange", starts: []string{"did not reach the following recipient", "the following recipient(s) could not be reached", "could not be delivered to the following recipient"}},
	{name: "opensmtpd", starts: []string{"an error has occurred while attempting to deliver a message", "a message is delayed for more than"},
		delays: []string{"a message is delayed for more than", "this is only a temporary failure"}},
	{name: "dragonfly", starts: []string{"there was an error delivering your mail to"}},
	{name: "domino", starts: []string{"was not delivered to:"}},
	{name: "notes", starts: []string{"------- failure reasons"}},
	{name: "ezweb", starts: []string{"each of the following recipients was rejected", "the following recipients did not receive this message", "the user(s) account is disabled"}},
	{name: "kddi", starts: []string{"could not be delivered to: <"}},
	{name: "mfilter", starts: []string{"以下のメールアドレスへの送信に失敗しました", "-------server message"}},
	{name: "imail", starts: []string{"unknown user: ", "user mailbox exceeds allowed size: ", "invalid final delivery userid: ", "undeliverable to "}},
	{name: "mailfoundry", starts: []string{"unable to deliver message to: <"}},
	{name: "other", starts: []string{"unable to deliver message to the following address"}},
	{name: "other", starts: []string{"delivery to the following recipients was aborted", "delevery to the following recipients"}},
	{name: "amazonworkmail", starts: []string{"an error occurred while trying to deliver the mail to the following recipients"}},
	{name: "other", starts: []string{"we had trouble delivering your message"}},
	{name: "biglobe", starts: []string{"----- non-delivered information -----"}},
}

// endPhrases are lower-case phrases of the line that introduces the
// returned message, or the headers that begin it: the section ends there.
var endPhrases = []string{
	"copy of the message", "copy of your message", "copy of the original message",
	"below this line is a copy", "enclosed is a copy", "original message follows",
	"unsent message follows", "message headers follow", "header of the original message",
	"----- original message -----", "original message headers", "copy of the message header",
	"-------original message", "-------original mail info", "------- returned message",
	"original message:", "----- message header follows", "the original message headers",
	"undelivered message headers", "your message reads",
}

// endFields are header fields that begin a returned message written
// inline, at the start of a line.
var endFields = []string{"received:", "return-path:", "dkim-signature:", "message-id:", "content-type: message/rfc822"}

var (
	// rcptLineRE: a line that begins with an address, in angle brackets
	// or quotes or after a bullet ("*", ">>>", "-") or a "Recipient:"
	// label, followed by the end of the line or a separator.
	rcptLineRE = regexp.MustCompile(`(?i)^\s*(?:[*>-]+\s*|recipient(?: address)?\s*:\s*)?["<]?(` + addrPattern + `)[">]?(\s.*|[:,;.\[(].*)?$`)
	// rcptInlineRE: an address after a phrase that names it as failed.
	rcptInlineRE = regexp.MustCompile(`(?i)(?:error delivering your mail to|rejected recipient|returned permanent errors:|undeliverable to|could not be delivered to:|unable to deliver message to:|wasn't delivered to|rcpt to:)\s*<?(` + addrPattern + `)>?(.*)$`)
	// rcptLabelRE: "Reason phrase: address" alone on a line.
	rcptLabelRE = regexp.MustCompile(`^\s*([^:<>"@]{3,80}?)\s*:\s*<?(` + addrPattern + `)>?\s*$`)
	// transcriptRE: Sendmail's "550 <address>... reason".
	transcriptRE = regexp.MustCompile(`^\s*[245][0-9][0-9] <?(` + addrPattern + `)>?\.\.\.\s*(.*)$`)
)

// recipientLine reads the address a line names as a recipient, and the
// rest of the line. A transcript line ("550 <a@b>... reason") is complete:
// the lines after it are not about that recipient.
func recipientLine(line string, f *plainFormat) (addr, rest string, ok bool) {
	if !strings.Contains(line, "@") {
		return "", "", false
	}
	if f.transcript {
		if m := transcriptRE.FindStringSubmatch(line); m != nil {
			return cleanAddress(m[1]), m[2], true
		}
	}
	return recipientText(line)
}

// recipientText is recipientLine for the forms of every format.
func recipientText(line string) (addr, rest string, ok bool) {
	if m := rcptLineRE.FindStringSubmatch(line); m != nil {
		rest = strings.TrimLeft(m[2], " \t:,;.")
		return cleanAddress(m[1]), rest, true
	}
	if m := rcptInlineRE.FindStringSubmatch(line); m != nil {
		return cleanAddress(m[1]), strings.TrimLeft(m[2], " \t:,;."), true
	}
	if m := rcptLabelRE.FindStringSubmatch(line); m != nil {
		label := strings.ToLower(strings.TrimSpace(m[1]))
		if strings.Contains(label, " ") && !strings.HasSuffix(label, "from") && !strings.HasSuffix(label, "reply to") {
			return cleanAddress(m[2]), m[1], true
		}
	}
	return "", "", false
}

// plainBlock is one recipient of a bounce text and the lines about it.
type plainBlock struct {
	addr  string
	lines []string
}

// plainResult is what scanPlain read.
type plainResult struct {
	format    *plainFormat
	blocks    []*plainBlock
	preamble  []string // the section's lines before the first recipient
	delayed   bool
	truncated bool // more recipients than the limit
	endLine   int  // the index of the line that ends the section, or len(lines)
}

// findFormat returns the format whose phrase comes first in lines, and
// the index of that line; nil when none is found.
func findFormat(lines []string) (*plainFormat, int) {
	for i, line := range lines {
		l := strings.ToLower(line)
		for j := range plainFormats {
			for _, s := range plainFormats[j].starts {
				if strings.Contains(l, s) {
					return &plainFormats[j], i
				}
			}
		}
	}
	return nil, -1
}

// genericFormat reads a bounce in no known format, from its first line.
var genericFormat = plainFormat{name: "other"}

// isEnd reports whether line introduces or begins the returned message.
func isEnd(line string) bool {
	l := strings.ToLower(strings.TrimSpace(line))
	for _, s := range endPhrases {
		if strings.Contains(l, s) {
			return true
		}
	}
	lc := strings.ToLower(line)
	for _, s := range endFields {
		if strings.HasPrefix(lc, s) {
			return true
		}
	}
	return false
}

// maxBlockLines caps the lines kept about one recipient, and before the
// first: a reason is a few lines long.
const maxBlockLines = 100

// scanPlain reads the recipients of a bounce text in format f, from line
// start on. At most maxRcpt recipients are kept.
func scanPlain(lines []string, f *plainFormat, start, maxRcpt int) *plainResult {
	res := &plainResult{format: f, endLine: len(lines)}
	var cur *plainBlock
	var pending []string // the lines since the last recipient line, for transcripts
	skip := false        // lines of a recipient named again are not taken twice
	for i := start; i < len(lines); i++ {
		line := lines[i]
		if i > start && isEnd(line) {
			res.endLine = i
			break
		}
		if addr, rest, ok := recipientLine(line, f); ok {
			closed := f.transcript && transcriptRE.MatchString(line)
			switch {
			case cur != nil && strings.EqualFold(addr, cur.addr):
				cur.lines = append(cur.lines, rest)
				continue
			case res.find(addr) != nil:
				cur, skip = res.find(addr), true
				continue
			case len(res.blocks) >= maxRcpt:
				skip, res.truncated = true, true
				continue
			}
			cur, skip = &plainBlock{addr: addr}, false
			if f.transcript {
				for _, p := range pending {
					if t := strings.TrimSpace(p); strings.HasPrefix(t, "<<<") || strings.HasPrefix(t, ">>>") {
						cur.lines = append(cur.lines, t)
					}
				}
			}
			cur.lines = append(cur.lines, rest)
			res.blocks = append(res.blocks, cur)
			pending = pending[:0]
			if closed {
				skip = true
			}
			continue
		}
		if f.transcript {
			if strings.Contains(strings.ToLower(line), "while talking to") {
				pending = pending[:0]
			}
			if len(pending) < maxBlockLines {
				pending = append(pending, line)
			}
		}
		switch {
		case cur == nil:
			if len(res.preamble) < maxBlockLines {
				res.preamble = append(res.preamble, line)
			}
		case !skip && len(cur.lines) < maxBlockLines:
			cur.lines = append(cur.lines, line)
		}
	}
	lower := strings.ToLower(strings.Join(lines[:res.endLine], "\n"))
	for _, d := range f.delays {
		if strings.Contains(lower, d) {
			res.delayed = true
		}
	}
	return res
}

func (r *plainResult) find(addr string) *plainBlock {
	for _, b := range r.blocks {
		if strings.EqualFold(b.addr, addr) {
			return b
		}
	}
	return nil
}

// recipients turns the blocks into recipients: the diagnostic is the
// block's text, with the text before the first recipient (where some
// formats give the reason) when the block has none or no SMTP code that
// the text before has.
func (r *plainResult) recipients() []Recipient {
	out := make([]Recipient, 0, len(r.blocks))
	for _, b := range r.blocks {
		text := strings.Join(b.lines, "\n")
		if pre := strings.Join(r.preamble, "\n"); strings.TrimSpace(text) == "" {
			text = pre
		} else if reply, enhanced := failureCodes(text); reply == 0 && enhanced == "" {
			if reply, enhanced := failureCodes(pre); reply != 0 || enhanced != "" {
				// The answer comes before the address ("Error message
				// below: 550 ...", then "RCPT TO: a@b").
				text = pre + "\n" + text
			}
		}
		out = append(out, r.recipient(b.addr, text))
	}
	return out
}

// recipient makes the recipient addr with the reason text.
func (r *plainResult) recipient(addr, text string) Recipient {
	rc := Recipient{Address: addr, Action: ActionFailed, Diagnostic: oneLine(text), RemoteMTA: remoteHost(text)}
	if r.delayed {
		rc.Action = ActionDelayed
	}
	reply, enhanced := failureCodes(rc.Diagnostic)
	rc.ReplyCode = reply
	rc.Status = enhanced
	if rc.Status == "" {
		rc.Status = classStatus(reply, rc.Action)
		if reply == 0 && r.delayed {
			rc.Status = "4.0.0"
		}
	}
	classify(&rc, text)
	return rc
}

// sectionText is the text of the section, for a recipient that the
// report does not name.
func (r *plainResult) sectionText() string {
	var all []string
	all = append(all, r.preamble...)
	for _, b := range r.blocks {
		all = append(all, b.lines...)
	}
	return strings.Join(all, "\n")
}

var headerLineRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]{0,63}):[ \t]*(.*)$`)

// originalFromText reads the header of a message a bounce text appends
// inline, from line i on: up to 20 lines that are not header fields
// (blank lines, a mbox "From " line, decoration) are skipped, then header
// fields are read up to the first line that is not one.
func originalFromText(lines []string, i int) *Original {
	for skipped := 0; i < len(lines) && !headerLineRE.MatchString(strings.TrimSpace(lines[i])); i++ {
		if skipped++; skipped > 20 {
			return nil
		}
	}
	var h textproto.Header
	var fields [][2]string
	for ; i < len(lines) && len(fields) < maxHeaderFields; i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1][1] += " " + strings.TrimSpace(line)
			continue
		}
		m := headerLineRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			break
		}
		fields = append(fields, [2]string{m[1], m[2]})
	}
	for j := len(fields) - 1; j >= 0; j-- {
		h.Add(fields[j][0], fields[j][1])
	}
	o := originalFrom(h)
	if o.MessageID == "" && len(o.To) == 0 && o.From == "" && o.Subject == "" {
		return nil
	}
	return &o
}
