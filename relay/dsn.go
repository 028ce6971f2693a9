package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

// dsn is a delivery status notification of failure (RFC 3464) to write:
// the report on some recipients of one queued message.
type dsn struct {
	// Hostname names the reporting MTA, in Reporting-MTA and From.
	Hostname string
	// MessageID is the Message-ID of the notification, without brackets.
	MessageID string
	// Date is when the notification is written.
	Date time.Time
	// Entry is the message reported on; Rcpts the indexes, in its
	// Rcpts, of the recipients the notification is about.
	Entry *Entry
	Rcpts []int
	// MaxFull is the size above which a message whose sender asked for
	// RET=FULL is returned as its header only.
	MaxFull int64
}

// wantsFailureDSN reports whether a DSN of failure is due for the
// recipient (RFC 3461 §4.1): by default yes; NOTIFY=NEVER, or a NOTIFY
// without FAILURE, no.
func wantsFailureDSN(r Recipient) bool {
	return len(r.Notify) == 0 || slices.Contains(r.Notify, NotifyFailure)
}

// returnsFull reports whether the notification returns the whole message
// (RET=FULL, RFC 3461 §4.3, and not too large) rather than its header,
// the default.
func (d *dsn) returnsFull(msg Message) bool {
	return d.Entry.Envelope.Return == ReturnFull && msg.Size() >= 0 && msg.Size() <= d.MaxFull
}

// global reports whether the notification takes the types of RFC 6533
// for a message, or addresses, in UTF-8.
func (d *dsn) global() bool {
	if d.Entry.Envelope.SMTPUTF8 || !isASCIIText(d.Entry.Sender) {
		return true
	}
	for _, i := range d.Rcpts {
		if !isASCIIText(d.Entry.Envelope.To[i].Addr) {
			return true
		}
	}
	return false
}

// envelope is the envelope of the notification: from the null
// reverse-path (RFC 5321 §4.5.5, so that it is never answered by another),
// to the original sender, with the message's body type when it returns it
// whole.
func (d *dsn) envelope(msg Message) Envelope {
	env := Envelope{To: To(d.Entry.Sender), SMTPUTF8: d.global()}
	if d.returnsFull(msg) {
		env.Body = d.Entry.Envelope.Body
	}
	return env
}

// write writes the notification, a multipart/report (RFC 6522) of
// report-type delivery-status: a part in words, the machine-readable
// message/delivery-status (RFC 3464 §2), and the message returned whole
// (message/rfc822) or its header (text/rfc822-headers), read from msg as
// it is written. For a message or addresses in UTF-8, the parts are of the
// "global" types of RFC 6533.
func (d *dsn) write(w io.Writer, msg Message) error {
	e := d.Entry
	global := d.global()
	var h message.Header
	// A Header writes its fields in the reverse order of adding them.
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})
	h.Set("MIME-Version", "1.0")
	h.Set("Auto-Submitted", "auto-replied") // RFC 3834 §5
	if e.MessageID != "" {
		h.Set("References", e.MessageID)
		h.Set("In-Reply-To", e.MessageID)
	}
	h.Set("Message-ID", "<"+d.MessageID+">")
	h.Set("Date", d.Date.Format(time.RFC1123Z))
	h.Set("Subject", "Undelivered Mail Returned to Sender")
	h.Set("To", "<"+e.Sender+">")
	h.Set("From", "Mail Delivery System <MAILER-DAEMON@"+d.Hostname+">")
	mw, err := message.CreateWriter(w, h)
	if err != nil {
		return fmt.Errorf("relay: DSN: %w", err)
	}

	full := d.returnsFull(msg)
	text := d.text(full)
	var th message.Header
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Transfer-Encoding", "7bit")
	if !isASCIIText(text) {
		th.Set("Content-Transfer-Encoding", "quoted-printable")
	}
	th.Set("Content-Description", "Notification")
	if err := writePart(mw, th, strings.NewReader(text)); err != nil {
		return err
	}

	var sh message.Header
	if global {
		sh.SetContentType("message/global-delivery-status", nil)
		sh.Set("Content-Transfer-Encoding", "8bit")
	} else {
		sh.SetContentType("message/delivery-status", nil)
		sh.Set("Content-Transfer-Encoding", "7bit")
	}
	sh.Set("Content-Description", "Delivery report")
	if err := writePart(mw, sh, bytes.NewReader(d.status())); err != nil {
		return err
	}

	rc, err := msg.Open()
	if err != nil {
		return fmt.Errorf("relay: DSN: %w", err)
	}
	defer rc.Close()
	var oh message.Header
	var original io.Reader = rc
	switch {
	case full && global:
		oh.SetContentType("message/global", nil)
	case full:
		oh.SetContentType("message/rfc822", nil)
	case global:
		oh.SetContentType("message/global-headers", nil)
	default:
		oh.SetContentType("text/rfc822-headers", nil)
	}
	if full {
		oh.Set("Content-Transfer-Encoding", transferEncoding(e.Envelope.Body, global))
		oh.Set("Content-Description", "Undelivered message")
	} else {
		oh.Set("Content-Transfer-Encoding", transferEncoding("", global))
		oh.Set("Content-Description", "Undelivered message header")
		original = &headerReader{r: bufio.NewReader(rc)}
	}
	if err := writePart(mw, oh, original); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("relay: DSN: %w", err)
	}
	return nil
}

// transferEncoding is the Content-Transfer-Encoding of a message of the
// body type given, returned whole (RFC 2046 §5.2.1 allows no encoding of
// message/rfc822 but 7bit, 8bit and binary).
func transferEncoding(body BodyType, global bool) string {
	switch {
	case body == BodyBinary:
		return "binary"
	case body == BodyEightBit || global:
		return "8bit"
	}
	return "7bit"
}

func writePart(mw *message.Writer, h message.Header, r io.Reader) error {
	pw, err := mw.CreatePart(h)
	if err == nil {
		_, err = io.Copy(pw, r)
	}
	if err == nil {
		err = pw.Close()
	}
	if err != nil {
		return fmt.Errorf("relay: DSN: %w", err)
	}
	return nil
}

// text is the part of the notification in words.
func (d *dsn) text(full bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\n", d.Hostname)
	b.WriteString("Your message could not be delivered to one or more of its\r\n")
	b.WriteString("recipients. This is a permanent error; the reasons follow.\r\n")
	if full {
		b.WriteString("Your message is attached.\r\n")
	} else {
		b.WriteString("The header of your message is attached.\r\n")
	}
	for _, i := range d.Rcpts {
		r := d.Entry.Rcpts[i]
		fmt.Fprintf(&b, "\r\n<%s>:\r\n", oneLine(r.Addr))
		var why string
		switch {
		case r.Expired && r.Reply != nil:
			why = "delivery time expired; the last reply was: " + r.Reply.Error()
		case r.Expired:
			why = "delivery time expired"
		case r.Reply != nil && remoteHost(r.Host) != "":
			why = "host " + remoteHost(r.Host) + " said: " + r.Reply.Error()
		case r.Reply != nil:
			why = r.Reply.Error()
		default:
			why = "delivery failed"
		}
		wrap(&b, "    ", why)
	}
	return b.String()
}

// wrap writes s as lines of words after indent, each kept near 78 octets
// (a word longer goes on a line of its own), with every control character
// of s made a space: a server's reply of many lines, joined, would
// otherwise make a line longer than RFC 5322 §2.1.1 allows.
func wrap(b *strings.Builder, indent, s string) {
	lineLen := 0
	for word := range strings.FieldsSeq(oneLine(s)) {
		switch {
		case lineLen == 0:
		case lineLen+1+len(word) > 78:
			b.WriteString("\r\n")
			lineLen = 0
		default:
			b.WriteByte(' ')
			lineLen++
		}
		if lineLen == 0 {
			b.WriteString(indent)
			lineLen = len(indent)
		}
		b.WriteString(word)
		lineLen += len(word)
	}
	b.WriteString("\r\n")
}

// status is the message/delivery-status body (RFC 3464 §2): the
// per-message fields, then a group of fields per recipient, each after a
// blank line.
func (d *dsn) status() []byte {
	e := d.Entry
	var b bytes.Buffer
	dsnField(&b, "Reporting-MTA", "dns; "+d.Hostname)
	if e.Envelope.EnvID != "" {
		dsnField(&b, "Original-Envelope-Id", e.Envelope.EnvID)
	}
	dsnField(&b, "Arrival-Date", e.Created.Format(time.RFC1123Z))
	for _, i := range d.Rcpts {
		r, to := e.Rcpts[i], e.Envelope.To[i]
		b.WriteString("\r\n")
		if to.ORcpt != "" {
			// RFC 3461 §6.3: the ORCPT, as given.
			dsnField(&b, "Original-Recipient", to.ORcpt)
		}
		dsnField(&b, "Final-Recipient", addressType(r.Addr)+"; "+r.Addr)
		dsnField(&b, "Action", "failed")
		dsnField(&b, "Status", failureStatus(r))
		if h := remoteHost(r.Host); h != "" {
			dsnField(&b, "Remote-MTA", "dns; "+h)
		}
		if r.Reply != nil {
			dsnField(&b, "Diagnostic-Code", "smtp; "+r.Reply.Error())
		}
	}
	return b.Bytes()
}

// addressType is the address-type of an address in a DSN: rfc822, or
// utf-8 for an address that needs it (RFC 6533 §3).
func addressType(addr string) string {
	if isASCIIText(addr) {
		return "rfc822"
	}
	return "utf-8"
}

// failureStatus is the Status of a failed recipient (RFC 3464 §2.3.4):
// 4.4.7 when the message expired (RFC 3463 §3.5), else the enhanced code
// of the reply, else the class of its code alone.
func failureStatus(r RcptState) string {
	switch {
	case r.Expired:
		return "4.4.7"
	case r.Reply == nil:
		return "5.0.0"
	case r.Reply.Enhanced != (EnhancedCode{}):
		return r.Reply.Enhanced.String()
	case r.Reply.Code/100 == 4:
		return "4.0.0"
	}
	return "5.0.0"
}

// remoteHost is the host of a host:port, an address in brackets (the
// address literal of RFC 5321 §4.1.3); "" for none, or for a list of
// hosts (an MXSender's Receipt for several domains), of which the one
// that answered a given recipient is not known.
func remoteHost(hostport string) string {
	if hostport == "" || strings.Contains(hostport, ",") {
		return ""
	}
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = h
	}
	if strings.Contains(hostport, ":") || net.ParseIP(hostport) != nil {
		return "[" + hostport + "]"
	}
	return hostport
}

// dsnField writes a header field, folded at spaces to keep lines near 78
// octets, with any line break or other control character of the value
// made a space.
func dsnField(b *bytes.Buffer, name, value string) {
	line := name + ": "
	lineLen := len(line)
	b.WriteString(line)
	for i, word := range strings.Split(oneLine(value), " ") {
		if i > 0 {
			if lineLen+1+len(word) > 78 && lineLen > len(name)+2 {
				b.WriteString("\r\n ")
				lineLen = 1
			} else {
				b.WriteByte(' ')
				lineLen++
			}
		}
		b.WriteString(word)
		lineLen += len(word)
	}
	b.WriteString("\r\n")
}

// oneLine makes every control character of s a space.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func isASCIIText(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// headerReader reads the header of a message, up to and including the
// empty line that ends it (or the whole, when it has no body).
type headerReader struct {
	r       *bufio.Reader
	line    []byte // what is left of the line read
	partial bool   // line is the start of a line longer than r's buffer
	done    bool
}

func (h *headerReader) Read(p []byte) (int, error) {
	for len(h.line) == 0 {
		if h.done {
			return 0, io.EOF
		}
		start := !h.partial
		line, err := h.r.ReadSlice('\n')
		h.partial = errors.Is(err, bufio.ErrBufferFull)
		switch {
		case h.partial:
		case err == io.EOF:
			h.done = true
		case err != nil:
			return 0, err
		case start && (string(line) == "\r\n" || string(line) == "\n"):
			h.done = true
		}
		h.line = line
	}
	n := copy(p, h.line)
	h.line = h.line[n:]
	return n, nil
}
