package dmarc

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
)

// maxReportSize is the default of ReportOptions.MaxSize.
const maxReportSize = 32 << 20

// ReportOptions configure ParseReport. A nil *ReportOptions, like the zero
// value, means every default.
type ReportOptions struct {
	// MaxSize caps the bytes read and the bytes any decompression may
	// produce, against zip and gzip bombs. Default (0 or less): 32 MiB.
	MaxSize int64
}

// reportParser is ParseReport with its limit.
type reportParser struct {
	max      int64
	inflated int64 // bytes decompressed so far, against max
	// mimeBytes counts the bytes every level of an e-mail's MIME
	// structure reads, for the tests.
	mimeBytes int64
}

// ParseReport reads an aggregate report: RFC 7489 Appendix C XML, gzip- or
// zip-compressed XML, or a whole report e-mail (RFC 7489 §7.2.1.1) whose
// first report attachment is read. The form is recognised from the content,
// not from names or media types, which senders get wrong.
//
// ParseReport is lenient: unknown elements, namespaces, elements out of
// order, windows-1252 or ISO-8859-1 documents, numbers written as
// "1337270400.0" and unparsable addresses are tolerated; an XML document
// that breaks off after the report has begun gives what was read before,
// with the problem in Feedback.Problems. It fails, wrapping ErrSyntax,
// when the input is not a report at all or is nested beyond reason (an
// e-mail whose parts lie in more than 8 multiparts, XML elements nested
// more than 64 deep anywhere in the document), and wrapping ErrTooLarge
// when the input, or what it inflates to, exceeds ReportOptions.MaxSize.
// XML entities other than the predefined ones are never expanded
// (encoding/xml ignores DTDs), so an entity bomb cannot inflate.
//
// A record's count must be a whole number of messages from 0 to 2^63-1
// (white space, a sign and a fraction of zeros are tolerated: "+12.0" is
// 12). A record whose count is negative, fractional, too large, not a
// decimal number or absent is refused: it is left out of
// Feedback.Records, so no total includes it, and Feedback.Problems names
// it by its place in the document and says why. A count of 0 is kept and
// noted in Problems.
func ParseReport(r io.Reader, opts *ReportOptions) (*Feedback, error) {
	p := &reportParser{max: maxReportSize}
	if opts != nil && opts.MaxSize > 0 {
		p.max = opts.MaxSize
	}
	b, err := readLimited(r, p.max)
	if err != nil {
		return nil, err
	}
	return p.parseBytes(b, 0)
}

// inflate reads decompressed data within what is left of the budget of
// MaxSize bytes that all the decompression of one report shares, so that
// the members of an archive cannot each inflate to the limit.
func (p *reportParser) inflate(r io.Reader) ([]byte, error) {
	b, err := readLimited(r, p.max-p.inflated)
	p.inflated += int64(len(b))
	return b, err
}

// maxProblems bounds Feedback.Problems: a report of millions of broken
// records is described, not copied.
const maxProblems = 100

// note adds a problem to fb.Problems; past maxProblems the last entry
// counts the problems left out.
func (fb *Feedback) note(s string) {
	if len(fb.Problems) < maxProblems-1 {
		fb.Problems = append(fb.Problems, s)
		return
	}
	fb.unlisted++
	msg := fmt.Sprintf("and %d more problems", fb.unlisted)
	if len(fb.Problems) < maxProblems {
		fb.Problems = append(fb.Problems, msg)
	} else {
		fb.Problems[maxProblems-1] = msg
	}
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("dmarc: reading report: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return b, nil
}

func (p *reportParser) parseBytes(b []byte, depth int) (*Feedback, error) {
	if depth > 3 {
		return nil, fmt.Errorf("%w: report nested too deeply", ErrSyntax)
	}
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrSyntax, err)
		}
		zr.Multistream(false)
		inner, err := p.inflate(zr)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, fmt.Errorf("%w: gzip data inflates to more than %d bytes", ErrTooLarge, p.max)
			}
			return nil, fmt.Errorf("%w: gzip: %w", ErrSyntax, err)
		}
		return p.parseBytes(inner, depth+1)
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("%w: zip: %w", ErrSyntax, err)
		}
		var firstErr error
		for _, f := range zr.File {
			if f.FileInfo().IsDir() {
				continue
			}
			if f.UncompressedSize64 > uint64(p.max) {
				return nil, fmt.Errorf("%w: zip member %q inflates to %d bytes, more than %d", ErrTooLarge, f.Name, f.UncompressedSize64, p.max)
			}
			rc, err := f.Open()
			if err != nil {
				firstErr = cmpErr(firstErr, fmt.Errorf("%w: zip member %q: %w", ErrSyntax, f.Name, err))
				continue
			}
			inner, err := p.inflate(rc)
			rc.Close()
			if err != nil {
				if errors.Is(err, ErrTooLarge) {
					return nil, fmt.Errorf("%w: zip member %q inflates to more than %d bytes", ErrTooLarge, f.Name, p.max)
				}
				firstErr = cmpErr(firstErr, fmt.Errorf("%w: zip member %q: %w", ErrSyntax, f.Name, err))
				continue
			}
			fb, err := p.parseBytes(inner, depth+1)
			if err == nil {
				return fb, nil
			}
			if errors.Is(err, ErrTooLarge) {
				return nil, err
			}
			firstErr = cmpErr(firstErr, err)
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: empty zip archive", ErrSyntax)
		}
		return nil, firstErr
	case looksLikeXML(b):
		return parseFeedbackXML(b)
	}
	return p.parseMessage(b, depth)
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func looksLikeXML(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '<'
}

// maxMIMEDepth is how many multiparts deep parseMessage looks for the
// report. Report e-mails nest one or two; eight leaves room for
// forwarding and wrapping software.
const maxMIMEDepth = 8

// maxMIMEParts bounds the entities of one report e-mail: a real report
// has a text part and the report, a few more at most.
const maxMIMEParts = 1000

// parseMessage finds the report in an e-mail (RFC 7489 §7.2.1.1): the
// first part, in order, that holds a gzip, zip or XML report. A part
// nested in more than maxMIMEDepth multiparts is refused as soon as it is
// reached, wrapping ErrSyntax. Every level reads its parts through the
// levels above it, so the depth limit bounds the work to maxMIMEDepth+1
// passes over the message.
func (p *reportParser) parseMessage(b []byte, depth int) (*Feedback, error) {
	e, err := message.Read(bytes.NewReader(b))
	if e == nil {
		return nil, fmt.Errorf("%w: neither a report nor an e-mail: %w", ErrSyntax, err)
	}
	w := &mimeWalk{p: p, depth: depth}
	found, err := w.entity(e, 0)
	switch {
	case found != nil:
		return found, nil
	case err != nil:
		return nil, err
	case w.firstErr != nil:
		return nil, w.firstErr
	}
	return nil, fmt.Errorf("%w: no aggregate report in the message", ErrSyntax)
}

// mimeWalk is the search of one e-mail for its report.
type mimeWalk struct {
	p        *reportParser
	depth    int   // of the e-mail in parseBytes
	parts    int   // entities visited
	firstErr error // of the first part that looked like a report but was not
}

// entity returns the report in e, the entity at level (the number of
// multiparts around it), or nil when it holds none. The error is
// non-nil only when the e-mail as a whole is refused: too deep or too
// large.
func (w *mimeWalk) entity(e *message.Entity, level int) (*Feedback, error) {
	e.Body = &countingReader{r: e.Body, n: &w.p.mimeBytes}
	if w.parts++; w.parts > maxMIMEParts {
		return nil, fmt.Errorf("%w: an e-mail of more than %d parts", ErrSyntax, maxMIMEParts)
	}
	if mr := e.MultipartReader(); mr != nil {
		if level >= maxMIMEDepth {
			return nil, fmt.Errorf("%w: e-mail parts nested in more than %d multiparts", ErrSyntax, maxMIMEDepth)
		}
		for {
			// An unknown transfer encoding or charset comes with a part
			// that can still be read; other errors end this multipart.
			part, _ := mr.NextPart()
			if part == nil {
				return nil, nil
			}
			if fb, err := w.entity(part, level+1); fb != nil || err != nil {
				return fb, err
			}
		}
	}
	body, err := readLimited(e.Body, w.p.max)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, nil
	}
	if !(bytes.HasPrefix(body, []byte{0x1f, 0x8b}) || bytes.HasPrefix(body, []byte("PK\x03\x04")) || looksLikeXML(body)) {
		return nil, nil
	}
	fb, err := w.p.parseBytes(body, w.depth+1)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		w.firstErr = cmpErr(w.firstErr, err)
		return nil, nil
	}
	return fb, nil
}

// countingReader adds the bytes read to *n.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	*c.n += int64(n)
	return n, err
}

// maxXMLDepth is how deep elements may nest in a report. The schema's
// deepest is 5 (feedback, record, auth_results, dkim, domain); the rest
// is room for extensions.
const maxXMLDepth = 64

// errXMLTooDeep refuses a report whose elements nest too deeply.
var errXMLTooDeep = fmt.Errorf("%w: XML elements nested more than %d deep", ErrSyntax, maxXMLDepth)

// depthLimiter passes on the tokens of a decoder and fails, from the
// first element nested more than maxXMLDepth deep on, with errXMLTooDeep.
// The decoder keeps a stack entry for every open element, even in a
// subtree that is skipped, so without a limit unclosed elements hold
// about a hundred bytes of memory for every three bytes of input.
type depthLimiter struct {
	dec   *xml.Decoder
	depth int
	err   error
}

func (l *depthLimiter) Token() (xml.Token, error) {
	if l.err != nil {
		return nil, l.err
	}
	tok, err := l.dec.Token()
	switch tok.(type) {
	case xml.StartElement:
		if l.depth++; l.depth > maxXMLDepth {
			l.err = errXMLTooDeep
			return nil, l.err
		}
	case xml.EndElement:
		l.depth--
	}
	return tok, err
}

// parseFeedbackXML decodes the feedback element by element, so that a
// document that breaks off still yields the records before the break.
// A document with elements nested more than maxXMLDepth deep is refused,
// wrapping ErrSyntax, as soon as the first such element is read;
// elements that are not kept (unknown ones, the content of extensions)
// are skipped as they are read, not held.
func parseFeedbackXML(b []byte) (*Feedback, error) {
	raw := xml.NewDecoder(bytes.NewReader(b))
	raw.Strict = false // tolerate "AT&T" and unknown entities; never expand them
	raw.CharsetReader = charsetReader
	// The decoder on top sees the elements, already matched and
	// translated, through the limiter; every read, including those of
	// DecodeElement and Skip, goes through it.
	dec := xml.NewTokenDecoder(&depthLimiter{dec: raw})
	fb := &Feedback{}
	started := false
	records := 0 // read, to name them in problems
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errXMLTooDeep) {
			return nil, err
		}
		if err != nil {
			if !started {
				return nil, fmt.Errorf("%w: not an XML report: %w", ErrSyntax, err)
			}
			fb.note("the XML breaks off: " + err.Error())
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !started {
			if se.Name.Local != "feedback" {
				return nil, fmt.Errorf("%w: root element <%s>, not <feedback>", ErrSyntax, se.Name.Local)
			}
			started = true
			continue
		}
		switch se.Name.Local {
		case "version":
			var s string
			err = dec.DecodeElement(&s, &se)
			fb.Version = strings.TrimSpace(s)
		case "report_metadata":
			err = dec.DecodeElement(&fb.Metadata, &se)
		case "policy_published":
			err = dec.DecodeElement(&fb.Policy, &se)
		case "record":
			records++
			// Row.UnmarshalXML replaces the error when there is a row.
			rec := ReportRecord{Row: Row{countErr: "no count"}}
			err = dec.DecodeElement(&rec, &se)
			if err == nil || rec.Row.SourceIPText != "" {
				fb.addRecord(&rec, records)
			}
		case "extensions":
			err = dec.DecodeElement(&fb.Extensions, &se)
		default:
			err = dec.Skip()
		}
		if errors.Is(err, errXMLTooDeep) {
			return nil, err
		}
		if err != nil {
			fb.note(fmt.Sprintf("the XML breaks off in <%s>: %v", se.Name.Local, err))
			break
		}
	}
	if !started {
		return nil, fmt.Errorf("%w: no <feedback> element", ErrSyntax)
	}
	fb.normalize()
	return fb, nil
}

func lower(s *string) { *s = strings.ToLower(strings.TrimSpace(*s)) }
func trim(s *string)  { *s = strings.TrimSpace(*s) }

// normalize trims and lower-cases the enumerated values of the metadata and
// policy, and notes what is missing.
func (fb *Feedback) normalize() {
	m := &fb.Metadata
	for _, s := range []*string{&m.OrgName, &m.Email, &m.ExtraContactInfo, &m.ReportID, &m.Generator} {
		trim(s)
	}
	pp := &fb.Policy
	trim(&pp.Domain)
	for _, s := range []*string{&pp.ADKIM, &pp.ASPF, &pp.P, &pp.SP, &pp.NP, &pp.T, &pp.Testing, &pp.PSD, &pp.Pct, &pp.FO, &pp.DiscoveryMethod} {
		lower(s)
	}
	if m.ReportID == "" && m.OrgName == "" {
		fb.note("no report_metadata")
	}
	if pp.Domain == "" {
		fb.note("no policy_published domain")
	}
}

// addRecord adds r, the nth record of the document, to Records, trimming
// and lower-casing its values and noting its problems, unless its count
// was refused: then it only notes that.
func (fb *Feedback) addRecord(r *ReportRecord, n int) {
	if r.Row.countErr != "" {
		fb.note(fmt.Sprintf("record %d: %s; the record is left out", n, r.Row.countErr))
		return
	}
	pe := &r.Row.PolicyEvaluated
	lower(&pe.Disposition)
	lower(&pe.DKIM)
	lower(&pe.SPF)
	for j := range pe.Reasons {
		lower(&pe.Reasons[j].Type)
		trim(&pe.Reasons[j].Comment)
	}
	for _, s := range []*string{&r.Identifiers.EnvelopeTo, &r.Identifiers.EnvelopeFrom, &r.Identifiers.HeaderFrom} {
		trim(s)
	}
	for j := range r.AuthResults.DKIM {
		d := &r.AuthResults.DKIM[j]
		trim(&d.Domain)
		trim(&d.Selector)
		lower(&d.Result)
		trim(&d.HumanResult)
	}
	for j := range r.AuthResults.SPF {
		s := &r.AuthResults.SPF[j]
		trim(&s.Domain)
		lower(&s.Scope)
		lower(&s.Result)
	}
	if !r.Row.SourceIP.IsValid() {
		fb.note(fmt.Sprintf("record %d: source_ip %q is not an IP address", n, r.Row.SourceIPText))
	}
	if r.Row.Count == 0 {
		fb.note(fmt.Sprintf("record %d: count 0", n))
	}
	fb.Records = append(fb.Records, *r)
}

// charsetReader decodes the single-byte charsets reports are seen in.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1", "iso8859-1", "l1":
		return &singleByteReader{r: in}, nil
	case "windows-1252", "cp1252", "x-cp1252":
		return &singleByteReader{r: in, high: &cp1252}, nil
	}
	return nil, fmt.Errorf("unsupported charset %q", label)
}

// cp1252 maps 0x80 to 0x9F of windows-1252 (the rest is ISO-8859-1).
var cp1252 = [32]rune{
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
	0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
}

type singleByteReader struct {
	r    io.Reader
	high *[32]rune
	buf  []byte
	in   [512]byte
}

func (s *singleByteReader) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		n, err := s.r.Read(s.in[:])
		for _, c := range s.in[:n] {
			r := rune(c)
			if s.high != nil && c >= 0x80 && c < 0xA0 {
				r = s.high[c-0x80]
			}
			s.buf = utf8.AppendRune(s.buf, r)
		}
		if n == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}
