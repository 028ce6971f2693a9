package bounce

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// ErrSyntax is wrapped by the error of Parse when its input is not a
// message at all: no header field before the body (RFC 5322 §2.1).
var ErrSyntax = errors.New("bounce: syntax error")

// The defaults of Options.
const (
	DefaultMaxBytes      = 10 << 20
	DefaultMaxParts      = 100
	DefaultMaxDepth      = 8
	DefaultMaxRecipients = 1000
)

const (
	// maxText caps the text of the text parts kept for the scanners: the
	// report is at their start, a returned message may follow.
	maxText = 256 << 10
	// maxReportPart caps one delivery-status or feedback-report part.
	maxReportPart = 1 << 20
)

// Options configure Parse. A nil *Options, like the zero value, means
// every default.
type Options struct {
	// MaxBytes is how much of the message is read. A longer message is
	// read no further: the report holds what the first MaxBytes gave, and
	// Report.Truncated is LimitSize. Memory does not grow with the
	// message: parts are read as streams, and what is kept of them is
	// capped (256 KiB of text, 1 MiB for each report part, 256 KiB for
	// each header). Default (0 or less): DefaultMaxBytes, 10 MiB.
	MaxBytes int64
	// MaxParts caps the MIME parts read (RFC 2046 §5.1); the parts after
	// it are not read (LimitParts). Default: DefaultMaxParts, 100; a DSN
	// has three.
	MaxParts int
	// MaxDepth caps the nesting of multiparts; a multipart nested deeper
	// is skipped (LimitDepth). Default: DefaultMaxDepth, 8.
	MaxDepth int
	// MaxRecipients caps the recipients of a report (LimitRecipients).
	// Default: DefaultMaxRecipients, 1000.
	MaxRecipients int
	// EnvelopeTo is the address the report was delivered to (the RCPT TO
	// of the receiving session: the return path of the original message),
	// given back in Report.BounceTo. Default: the first address of the To
	// field.
	EnvelopeTo string
	// Logger receives a debug record of each Parse. Default: none.
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.MaxBytes <= 0 {
		out.MaxBytes = DefaultMaxBytes
	}
	if out.MaxParts <= 0 {
		out.MaxParts = DefaultMaxParts
	}
	if out.MaxDepth <= 0 {
		out.MaxDepth = DefaultMaxDepth
	}
	if out.MaxRecipients <= 0 {
		out.MaxRecipients = DefaultMaxRecipients
	}
	return out
}

// Parse reads one received message (RFC 5322) and tells what it reports:
// a delivery status notification (RFC 3464), a non-standard bounce, a
// feedback report (RFC 5965), an auto-reply (RFC 3834), or nothing it
// knows (KindUnknown, with a nil error).
//
// The message is read through the limits of opts before it is parsed:
// see Options. A message that exceeds one gives the report of what was
// read before, with Report.Truncated naming the limit. Parse fails only
// when reading r fails, or, wrapping ErrSyntax, when the input has no
// header. Malformed parts never make it fail: a report part it cannot
// read leaves the message to the other readers, and at worst to
// KindUnknown.
//
// Reports are read in this order: a feedback-report part; a
// delivery-status part (or a multipart/report of that report-type); an
// Amazon SES notification; DSN fields in a text part; an auto-reply; a
// bounce text in a known format; a bounce text of a mail daemon in no
// known format.
func Parse(r io.Reader, opts *Options) (*Report, error) {
	o := opts.withDefaults()
	lr := &limitReader{r: r, n: o.MaxBytes}
	br := bufio.NewReaderSize(lr, lineBuffer)
	h, rest, _, err := readHeader(br)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("bounce: reading the message: %w", err)
	}
	if h.Len() == 0 {
		return nil, fmt.Errorf("%w: the message has no header fields", ErrSyntax)
	}
	var body io.Reader = br
	if rest != nil {
		body = io.MultiReader(bytes.NewReader(rest), br)
	}
	e := entity(h, body)
	p := &parser{o: o, header: e.Header, textLeft: maxText}
	if !p.walk(e, 0) && p.truncated == "" {
		_, _ = io.Copy(io.Discard, br)
	}
	if lr.err != nil && lr.err != io.EOF {
		return nil, fmt.Errorf("bounce: reading the message: %w", lr.err)
	}
	if lr.hit {
		p.limit(LimitSize)
	}
	rep := p.report()
	if o.Logger != nil {
		o.Logger.LogAttrs(context.Background(), slog.LevelDebug, "bounce: parsed",
			slog.String("kind", string(rep.Kind)), slog.String("format", rep.Format),
			slog.Int("recipients", len(rep.Recipients)), slog.String("truncated", string(rep.Truncated)))
	}
	return rep, nil
}

// parser collects the parts of one message that the readers need.
type parser struct {
	o          Options
	header     message.Header
	parts      int
	truncated  Limit
	reportType string   // of the first multipart/report
	dsnParts   []string // message/delivery-status, message/global-delivery-status
	arfParts   []string // message/feedback-report
	texts      []string // text/plain parts and bodies without a type
	htmls      []string // text/html parts, as text
	textLeft   int      // of maxText
	original   *Original
}

func (p *parser) limit(l Limit) {
	if p.truncated == "" {
		p.truncated = l
	}
}

// walk reads entity e, nested in depth multiparts, and its parts. It
// returns true when a limit or a read error ended the walk.
func (p *parser) walk(e *message.Entity, depth int) bool {
	t, params := mediaType(e.Header)
	switch {
	case strings.HasPrefix(t, "multipart/"):
		if t == "multipart/report" && p.reportType == "" {
			p.reportType = strings.ToLower(params["report-type"])
		}
		if depth >= p.o.MaxDepth {
			p.limit(LimitDepth)
			return false
		}
		mr := newMultipartReader(e.Body, params["boundary"])
		n := 0
		for part := mr.next(); part != nil; part = mr.next() {
			if p.parts++; p.parts > p.o.MaxParts {
				p.limit(LimitParts)
				return true
			}
			n++
			child, err := newEntity(part)
			if err != nil {
				return true
			}
			if p.walk(child, depth+1) {
				return true
			}
		}
		if n == 0 {
			p.addText(string(mr.preamble), false)
		}
	case t == "message/delivery-status" || t == "message/global-delivery-status":
		p.dsnParts = append(p.dsnParts, readCapped(e.Body, maxReportPart))
	case t == "message/feedback-report":
		p.arfParts = append(p.arfParts, readCapped(e.Body, maxReportPart))
	case t == "message/rfc822" || t == "message/global" || t == "text/rfc822-headers" || t == "text/rfc822-header" ||
		t == "message/rfc822-headers" || t == "message/global-headers":
		br := bufio.NewReader(e.Body)
		h, rest, _, _ := readHeader(br)
		if inner, _ := mediaType(message.Header{Header: h}); inner == "multipart/report" && p.reportType == "" &&
			len(p.dsnParts) == 0 && len(p.arfParts) == 0 && strings.HasPrefix(t, "message/") {
			// A report forwarded inside a notice that is none: read it.
			var body io.Reader = br
			if rest != nil {
				body = io.MultiReader(bytes.NewReader(rest), br)
			}
			return p.walk(entity(h, body), depth+1)
		}
		if p.original == nil && h.Len() > 0 {
			o := originalFrom(h)
			p.original = &o
		}
	case t == "" || t == "text/plain" || t == "text/enriched":
		p.addText(p.readText(e.Body), false)
	case t == "text/html":
		p.addText(htmlText(p.readText(e.Body)), true)
	}
	return false
}

// readText reads a text part within what is left of maxText.
func (p *parser) readText(r io.Reader) string {
	s := readCapped(r, p.textLeft)
	p.textLeft -= len(s)
	return s
}

func (p *parser) addText(s string, html bool) {
	if strings.TrimSpace(s) == "" {
		return
	}
	if html {
		p.htmls = append(p.htmls, s)
	} else {
		p.texts = append(p.texts, s)
	}
}

// readCapped reads at most max bytes of r.
func readCapped(r io.Reader, max int) string {
	if max <= 0 {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(r, int64(max)))
	return string(b)
}

// report chooses the reader for what was collected and fills the report.
func (p *parser) report() *Report {
	rep := &Report{Kind: KindUnknown, Truncated: p.truncated, BounceTo: p.o.EnvelopeTo}
	if rep.BounceTo == "" {
		if to := headerAddresses(p.header.Get("To")); len(to) > 0 {
			rep.BounceTo = to[0]
		}
	}
	text := strings.Join(p.texts, "\n")
	if strings.TrimSpace(text) == "" {
		text = strings.Join(p.htmls, "\n")
	}
	lines := splitLines(text)
	if p.original != nil {
		rep.Original = *p.original
	} else if o := textOriginal(lines); o != nil {
		rep.Original = *o
	}
	max := p.o.MaxRecipients
	var a *arf
	if len(p.arfParts) > 0 {
		// RFC 5965 §3.1: Feedback-Type is required; without it the part
		// is no report.
		if a = parseARF(p.arfParts[0], max); a.fb.Type == "" {
			a = nil
		}
	}
	switch {
	case a != nil:
		feedbackReport(rep, a, max)
	case len(p.dsnParts) > 0 || p.reportType == "delivery-status" || p.reportType == "global-delivery-status":
		d := &dsn{}
		for _, body := range p.dsnParts {
			d.add(parseDSN(body, max, false), max)
		}
		if len(d.rcpts) == 0 {
			d.add(parseDSN(text, max, true), max)
		}
		p.dsnReport(rep, d, lines)
	default:
		if n := findSES(text); n != nil {
			sesReport(rep, n, max)
			break
		}
		if d := parseDSN(text, max, true); len(d.rcpts) > 0 {
			p.dsnReport(rep, d, lines)
			break
		}
		if p.autoReply(rep) || p.unsubscribe(rep) {
			break
		}
		if f, i := findFormat(lines); f != nil {
			p.plainReport(rep, scanPlain(lines, f, i, max))
			break
		}
		if p.fromDaemon() {
			p.plainReport(rep, scanPlain(lines, &genericFormat, 0, max))
			if len(rep.Recipients) == 0 || rep.Recipients[0].Address == "" {
				// A daemon's message that names no recipient is not taken
				// for a bounce.
				*rep = Report{Kind: KindUnknown, Truncated: rep.Truncated, BounceTo: rep.BounceTo, Original: rep.Original}
			}
		}
	}
	if len(rep.Recipients) > max {
		rep.Recipients = rep.Recipients[:max]
		rep.Truncated = LimitRecipients
	}
	if p.truncated != "" {
		rep.Truncated = p.truncated
	}
	return rep
}

// add appends the recipients and the missing per-message fields of e.
func (d *dsn) add(e *dsn, max int) {
	if d.reportingMTA == "" {
		d.reportingMTA = e.reportingMTA
	}
	if d.envid == "" {
		d.envid = e.envid
	}
	if d.arrival.IsZero() {
		d.arrival = e.arrival
	}
	for _, r := range e.rcpts {
		if len(d.rcpts) >= max {
			d.truncated = true
			break
		}
		d.rcpts = append(d.rcpts, r)
	}
	d.truncated = d.truncated || e.truncated
}

// dsnReport fills rep from the fields of a DSN. A recipient without a
// Diagnostic-Code takes the reason the human-readable part gives for its
// address; a DSN that names no recipient takes those of that part, else
// the To addresses of the returned message.
func (p *parser) dsnReport(rep *Report, d *dsn, lines []string) {
	rep.Kind, rep.Format = KindDSN, "rfc3464"
	rep.ReportingMTA, rep.OriginalEnvelopeID, rep.ArrivalDate = d.reportingMTA, d.envid, d.arrival
	if d.truncated {
		rep.Truncated = LimitRecipients
	}
	f, i := findFormat(lines)
	if f == nil {
		f, i = &genericFormat, 0
	}
	plain := scanPlain(lines, f, i, p.o.MaxRecipients)
	for _, r := range d.rcpts {
		if r.Diagnostic == "" {
			b := plain.find(r.Address)
			if b == nil && r.OriginalAddress != "" {
				b = plain.find(r.OriginalAddress)
			}
			if b != nil {
				text := strings.Join(b.lines, "\n")
				r.Diagnostic = oneLine(text)
				if r.RemoteMTA == "" {
					r.RemoteMTA = remoteHost(text)
				}
			}
		}
		r.settle()
		classify(&r.Recipient, r.Diagnostic)
		rep.Recipients = append(rep.Recipients, r.Recipient)
	}
	if len(rep.Recipients) == 0 {
		rep.Recipients = plain.recipients()
	}
	if len(rep.Recipients) == 0 {
		rep.Recipients = p.unnamed(rep, plain)
	}
	if len(rep.Recipients) == 0 {
		// A report part that names no recipient, and nothing else does:
		// there is nothing to act on.
		rep.Kind, rep.Format = KindUnknown, ""
	}
}

// plainReport fills rep from a bounce text. When the message lists the
// failed recipients in X-Failed-Recipients (Exim, Gmail), that list is
// authoritative: addresses the text names that it does not are left out
// (the text greets the sender by address, or quotes another), and those
// it adds take the text's reason.
func (p *parser) plainReport(rep *Report, res *plainResult) {
	rep.Kind, rep.Format = KindBounce, res.format.name
	if res.truncated {
		rep.Truncated = LimitRecipients
	}
	rcpts := res.recipients()
	if failed := p.failedRecipients(); len(failed) > 0 {
		var kept []Recipient
		for _, addr := range failed {
			found := false
			for _, rc := range rcpts {
				if strings.EqualFold(rc.Address, addr) {
					kept, found = append(kept, rc), true
					break
				}
			}
			if !found {
				kept = append(kept, res.recipient(addr, res.sectionText()))
			}
		}
		rcpts = kept
	}
	if len(rcpts) == 0 {
		rcpts = p.unnamed(rep, res)
	}
	rep.Recipients = rcpts
}

// unnamed makes the recipients of a report that names none: the To
// addresses of the returned message, with the reason of the whole text.
func (p *parser) unnamed(rep *Report, res *plainResult) []Recipient {
	var out []Recipient
	for _, addr := range rep.Original.To {
		out = append(out, res.recipient(addr, res.sectionText()))
	}
	return out
}

// failedRecipients reads X-Failed-Recipients, the addresses Exim and
// Gmail list as failed.
func (p *parser) failedRecipients() []string {
	var out []string
	fields := p.header.FieldsByKey("X-Failed-Recipients")
	for fields.Next() && len(out) < p.o.MaxRecipients {
		out = append(out, headerAddresses(fields.Value())...)
	}
	return out
}

var (
	daemonFromRE    = regexp.MustCompile(`(?i)mailer-daemon|postmaster|post_master|mail delivery|mail administrator|delivery subsystem|mmsc|ndr administrator`)
	bounceSubjectRE = regexp.MustCompile(`(?i)undeliver|undelivered|returned mail|delivery (status|failure|notification|failed|problem)|failure notice|mail delivery failed|not delivered|failed delivery|delivery has failed|returning message to sender|mail system error|could not send message`)
	autoSubjectRE   = regexp.MustCompile(`(?i)^\s*(auto(matic)?[ -]?(reply|response|antwort|réponse)|out of (the )?office|abwesenheit|absence|away from|vacation|réponse automatique|risposta automatica|respuesta automática)`)
)

// fromDaemon reports whether the message comes from a mail system rather
// than a person: its From names a mailer daemon or postmaster, or its
// Subject is that of a bounce, or it lists failed recipients.
func (p *parser) fromDaemon() bool {
	return daemonFromRE.MatchString(p.header.Get("From")) || bounceSubjectRE.MatchString(p.header.Get("Subject")) ||
		p.header.Has("X-Failed-Recipients")
}

// autoReply recognises an automatic reply (RFC 3834): Auto-Submitted:
// auto-replied (§5.1), the X-Autoreply and X-Autorespond fields of common
// vacation programs, Precedence: auto_reply, or an auto-reply subject.
// Its one recipient is the sender of the reply, who exists.
func (p *parser) autoReply(rep *Report) bool {
	h := p.header
	as := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted")))
	mh := gomail.Header{Header: h}
	subject, err := mh.Subject()
	if err != nil {
		subject = h.Get("Subject")
	}
	auto := strings.HasPrefix(as, "auto-replied") || h.Has("X-Autoreply") || h.Has("X-Autorespond") ||
		strings.EqualFold(strings.TrimSpace(h.Get("Precedence")), "auto_reply") || autoSubjectRE.MatchString(subject)
	if !auto || p.fromDaemon() {
		return false
	}
	rep.Kind, rep.Format = KindAutoReply, "rfc3834"
	var from string
	if a := headerAddresses(h.Get("From")); len(a) > 0 {
		from = a[0]
	}
	rep.Recipients = []Recipient{{Address: from, Reason: ReasonVacation, Diagnostic: oneLine(subject)}}
	return true
}

// unsubscribe recognises the unsubscribe request a mail client sends for
// its user (Apple Mail: X-Apple-Unsubscribe: true), a feedback of type
// opt-out from the sender of the request.
func (p *parser) unsubscribe(rep *Report) bool {
	if !strings.EqualFold(strings.TrimSpace(p.header.Get("X-Apple-Unsubscribe")), "true") {
		return false
	}
	var from string
	if a := headerAddresses(p.header.Get("From")); len(a) > 0 {
		from = a[0]
	}
	rep.Kind, rep.Format = KindFeedback, "unsubscribe"
	rep.Feedback = &Feedback{Type: "opt-out", UserAgent: "Apple Mail", Incidents: 1, OriginalRcptTo: []string{from}}
	rep.Recipients = []Recipient{{Address: from, Reason: ReasonFeedback}}
	return true
}

// textOriginal finds the header of a message returned inline in a text,
// after the line that introduces it.
func textOriginal(lines []string) *Original {
	for i, line := range lines {
		if isEnd(line) {
			if o := originalFromText(lines, i+1); o != nil {
				return o
			}
		}
	}
	return nil
}

// originalFrom reads the fields of the original message that map a report
// back to it.
func originalFrom(h textproto.Header) Original {
	mh := gomail.Header{Header: message.Header{Header: h}}
	var o Original
	if id, err := mh.MessageID(); err == nil && id != "" {
		o.MessageID = id
	} else {
		o.MessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	}
	if from := headerAddresses(h.Get("From")); len(from) > 0 {
		o.From = from[0]
	}
	o.To = headerAddresses(h.Get("To"))
	if s, err := mh.Subject(); err == nil {
		o.Subject = s
	} else {
		o.Subject = h.Get("Subject")
	}
	o.Subject = oneLine(o.Subject)
	o.Date = parseDate(h.Get("Date"))
	o.ReturnPath = cleanAddress(h.Get("Return-Path"))
	return o
}
