package bounce

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/htmlindex"
)

// The MIME structure is read here rather than with go-message's multipart
// reader so that every read is bounded: a part's header is read through
// its own limit (go-message bounds only the message's header, and keeps a
// structure for every field: with the limits below lifted, the part
// header of short fields of TestLargeMessageMemory allocated 397 MiB for
// its first 10 MiB), lines longer than the buffer are read in pieces, and
// a multipart whose boundary parameter is missing (real reports have
// that) finds its boundary in the body. go-message still holds the header
// fields, parses Content-Type and decodes each part's transfer encoding.

const (
	// lineBuffer is the buffer of each multipart level; a longer line is
	// read in pieces, and no piece but the first can be a delimiter.
	lineBuffer = 16 << 10
	// maxHeaderBytes bounds one header block (the message's or a part's);
	// the rest of a longer block is skipped.
	maxHeaderBytes = 256 << 10
	// maxHeaderFields bounds the fields of one header block.
	maxHeaderFields = 1000
	// maxPreamble is how much of a multipart's preamble is kept: it is the
	// text of a report whose boundary never comes.
	maxPreamble = 64 << 10
)

// readHeader reads a header block (RFC 5322 §2.2) from br, tolerant of
// what bounces contain: a leading mbox "From " line is skipped, a line
// that is not a field ends the block and is given back as the first line
// of the body (rest), and a block larger than maxHeaderBytes or with more
// than maxHeaderFields fields is cut there, the rest of it skipped
// (truncated is then true).
func readHeader(br *bufio.Reader) (h textproto.Header, rest []byte, truncated bool, err error) {
	var (
		fields  [][2]string
		size    int
		first   = true
		scratch []byte
	)
	for {
		var line []byte
		line, err = readLine(br, maxHeaderBytes+1, scratch[:0])
		scratch = line
		if len(line) == 0 && err != nil {
			break
		}
		err = nil
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			break
		}
		if first && bytes.HasPrefix(trimmed, []byte("From ")) {
			first = false
			continue
		}
		first = false
		if truncated {
			continue
		}
		if size += len(line); size > maxHeaderBytes || len(fields) >= maxHeaderFields {
			truncated = true
			continue
		}
		if trimmed[0] == ' ' || trimmed[0] == '\t' {
			if len(fields) > 0 {
				fields[len(fields)-1][1] += " " + string(bytes.TrimSpace(trimmed))
			}
			continue
		}
		i := bytes.IndexByte(trimmed, ':')
		if i <= 0 || bytes.ContainsAny(trimmed[:i], " \t") {
			rest = append([]byte(nil), line...)
			break
		}
		fields = append(fields, [2]string{string(trimmed[:i]), string(bytes.TrimSpace(trimmed[i+1:]))})
	}
	// textproto.Header's Get gives the field added last: add in reverse.
	for i := len(fields) - 1; i >= 0; i-- {
		h.Add(fields[i][0], fields[i][1])
	}
	return h, rest, truncated, err
}

// readLine appends one line of br, with its ending, to buf; of a line
// longer than max only max bytes are kept (the rest is read and dropped),
// so that no line costs more.
func readLine(br *bufio.Reader, max int, buf []byte) ([]byte, error) {
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if n+len(chunk) <= max {
			buf = append(buf, chunk...)
		}
		n += len(chunk)
		if err != bufio.ErrBufferFull {
			return buf, err
		}
	}
}

// newEntity reads the header of a part and returns it as a go-message
// entity whose body is decoded from its transfer encoding. A part whose
// header is cut short by the limits is still returned.
func newEntity(r io.Reader) (*message.Entity, error) {
	br := bufio.NewReader(r)
	h, rest, _, err := readHeader(br)
	if err != nil && err != io.EOF {
		return nil, err
	}
	var body io.Reader = br
	if rest != nil {
		body = io.MultiReader(bytes.NewReader(rest), br)
	}
	return entity(h, body), nil
}

// entity makes the go-message entity of a header and a raw body, the body
// decoded from its transfer encoding and, for text, its charset: by
// go-message when it knows the charset, else by golang.org/x/text's
// encodings under their WHATWG names (iso-2022-jp, shift_jis,
// windows-1252 ...). An unknown encoding or charset leaves the body as it
// is.
func entity(h textproto.Header, body io.Reader) *message.Entity {
	e, err := message.New(message.Header{Header: h}, body)
	if message.IsUnknownCharset(err) {
		_, params := mediaType(e.Header)
		if enc, err := htmlindex.Get(params["charset"]); err == nil {
			e.Body = enc.NewDecoder().Reader(e.Body)
		}
	}
	return e
}

var looseParamRE = regexp.MustCompile(`(?i)([a-z][a-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([^;\s]+))`)

// mediaType reads a Content-Type (RFC 2045 §5.1) with go-message and, when
// it does not parse, loosely: the type before the first semicolon and
// every name=value after it.
func mediaType(h message.Header) (string, map[string]string) {
	t, params, err := h.ContentType()
	if err == nil {
		return strings.ToLower(t), params
	}
	v := h.Get("Content-Type")
	if v == "" {
		return "", nil
	}
	t, rest, _ := strings.Cut(v, ";")
	t = strings.ToLower(strings.TrimSpace(t))
	if i := strings.IndexAny(t, " \t"); i >= 0 {
		t, rest = t[:i], t[i:]+";"+rest
	}
	params = map[string]string{}
	for _, m := range looseParamRE.FindAllStringSubmatch(rest, 20) {
		val := m[2]
		if val == "" {
			val = m[3]
		}
		params[strings.ToLower(m[1])] = val
	}
	if mt, _, err := mime.ParseMediaType(t); err == nil {
		t = mt
	}
	return t, params
}

// multipartReader splits a multipart body (RFC 2046 §5.1.1) into parts.
type multipartReader struct {
	br       *bufio.Reader
	dash     []byte // "--" and the boundary; nil until found when the parameter is missing
	atStart  bool   // the next read starts a line
	done     bool   // the close delimiter or the end was reached
	part     *partReader
	preamble []byte
}

func newMultipartReader(r io.Reader, boundary string) *multipartReader {
	m := &multipartReader{br: bufio.NewReaderSize(r, lineBuffer), atStart: true}
	if boundary != "" {
		m.dash = []byte("--" + boundary)
	}
	return m
}

// line returns the next line or piece of a long line, and whether it
// starts a line. It is valid until the next call.
func (m *multipartReader) line() (b []byte, start bool, err error) {
	start = m.atStart
	b, err = m.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		err = nil
	}
	m.atStart = len(b) > 0 && b[len(b)-1] == '\n'
	return b, start, err
}

type delimiter int

const (
	notDelimiter delimiter = iota
	partDelimiter
	closeDelimiter
)

// delimiter tells whether a line is a delimiter line: the boundary, then
// "--" for the close delimiter, then only transport padding.
func (m *multipartReader) delimiter(b []byte) delimiter {
	if m.dash == nil || !bytes.HasPrefix(b, m.dash) {
		return notDelimiter
	}
	rest := bytes.TrimRight(b[len(m.dash):], " \t\r\n")
	switch {
	case len(rest) == 0:
		return partDelimiter
	case bytes.Equal(rest, []byte("--")):
		return closeDelimiter
	}
	return notDelimiter
}

// guessBoundary takes a preamble line that looks like a delimiter ("--"
// and a boundary of up to 70 characters, RFC 2046 §5.1.1, not only
// hyphens) as the boundary of a multipart that names none.
func (m *multipartReader) guessBoundary(b []byte) bool {
	t := bytes.TrimRight(b, " \t\r\n")
	if len(t) < 4 || len(t) > 72 || !bytes.HasPrefix(t, []byte("--")) || len(bytes.Trim(t, "-")) == 0 || bytes.ContainsAny(t, " \t") {
		return false
	}
	m.dash = append([]byte(nil), t...)
	return true
}

// next skips the rest of the current part and returns the raw bytes
// (header and body) of the next one, nil at the end.
func (m *multipartReader) next() io.Reader {
	if m.part != nil {
		_, _ = io.Copy(io.Discard, m.part)
		m.part = nil
	} else {
		for !m.done {
			b, start, err := m.line()
			if start && (m.delimiter(b) == partDelimiter || m.dash == nil && m.guessBoundary(b)) {
				break
			}
			if start && m.delimiter(b) == closeDelimiter {
				m.done = true
			} else if len(m.preamble) < maxPreamble {
				m.preamble = append(m.preamble, b[:min(len(b), maxPreamble-len(m.preamble))]...)
			}
			if err != nil {
				m.done = true
			}
		}
	}
	if m.done {
		return nil
	}
	m.part = &partReader{m: m}
	return m.part
}

var (
	lf   = []byte("\n")
	crlf = []byte("\r\n")
)

// partReader reads one part: the lines up to the next delimiter, without
// the line ending before it (RFC 2046 §5.1.1: it belongs to the delimiter).
type partReader struct {
	m       *multipartReader
	buf     []byte // bytes to deliver
	eol     []byte // the ending of the last line, withheld
	scratch []byte
	end     bool
}

func (p *partReader) Read(b []byte) (int, error) {
	for len(p.buf) == 0 {
		if p.end {
			return 0, io.EOF
		}
		line, start, err := p.m.line()
		if start {
			switch p.m.delimiter(line) {
			case closeDelimiter:
				p.m.done = true
				fallthrough
			case partDelimiter:
				p.end = true
				continue
			}
		}
		content := line
		var eol []byte
		if n := len(content); n > 0 && content[n-1] == '\n' {
			content, eol = content[:n-1], lf
			if n := len(content); n > 0 && content[n-1] == '\r' {
				content, eol = content[:n-1], crlf
			}
		}
		p.scratch = append(append(p.scratch[:0], p.eol...), content...)
		p.buf, p.eol = p.scratch, eol
		if err != nil {
			p.end, p.m.done = true, true
		}
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, nil
}

// limitReader reads at most n bytes of r and records whether r had more:
// Options.MaxBytes.
type limitReader struct {
	r   io.Reader
	n   int64
	hit bool
	err error
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.n <= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(l.r, one[:]); n > 0 {
			l.hit = true
		}
		l.err = io.EOF
		return 0, io.EOF
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}
