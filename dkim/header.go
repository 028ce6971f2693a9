package dkim

import (
	"bytes"
	"fmt"
	"strings"
)

// DefaultMaxHeaderBytes is the default cap on the header block, the only
// part of a message held in memory.
const DefaultMaxHeaderBytes = 256 << 10

// headerCollector gathers the header block of a streamed message, up to the
// empty line that ends it (RFC 5322 §2.1).
type headerCollector struct {
	buf   []byte
	max   int
	state uint8 // 0 at a line start, 1 after a CR at a line start, 2 inside a line
	done  bool
}

// feed takes bytes of the message and returns how many belong to the header
// block (the empty line included). Once done is set, the rest is body.
func (h *headerCollector) feed(p []byte) (int, error) {
	i := 0
	for i < len(p) && !h.done {
		switch h.state {
		case 2:
			k := bytes.IndexByte(p[i:], '\n')
			if k < 0 {
				i = len(p)
				continue
			}
			i += k + 1
			h.state = 0
		case 0:
			switch p[i] {
			case '\n':
				h.done = true
			case '\r':
				h.state = 1
			default:
				h.state = 2
			}
			i++
		case 1:
			if p[i] == '\n' {
				h.done = true
				i++
			} else {
				h.state = 2
			}
		}
	}
	if len(h.buf)+i > h.max {
		return 0, fmt.Errorf("%w: over %d bytes", ErrTooLarge, h.max)
	}
	h.buf = append(h.buf, p[:i]...)
	return i, nil
}

// field is one header field with its line breaks made CRLF.
type field struct {
	raw   string // the whole field, ending in CRLF
	lname string // the field name in lower case, WSP trimmed
	colon int    // index of the colon in raw
}

// parseHeader splits a header block into fields (RFC 5322 §2.2). Line
// breaks may be CRLF or LF; the fields keep CRLF. A line that is not a
// continuation and has no colon is an error, so is a block that starts with
// a continuation line.
func parseHeader(b []byte) ([]field, error) {
	// Drop the empty line that ends the block.
	switch {
	case bytes.HasSuffix(b, []byte("\n\r\n")):
		b = b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n\n")):
		b = b[:len(b)-1]
	case bytes.Equal(b, []byte("\r\n")), bytes.Equal(b, []byte("\n")):
		return nil, nil
	}
	var norm strings.Builder
	norm.Grow(len(b) + bytes.Count(b, []byte("\n")))
	type span struct{ start, colon int }
	var spans []span
	line := 0
	for len(b) > 0 {
		line++
		k := bytes.IndexByte(b, '\n')
		var l []byte
		if k < 0 {
			l, b = b, nil
		} else {
			l, b = b[:k], b[k+1:]
		}
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) > 0 && isWSP(l[0]) {
			if len(spans) == 0 {
				return nil, fmt.Errorf("%w: header starts with a continuation line", ErrSyntax)
			}
		} else {
			c := bytes.IndexByte(l, ':')
			if c < 0 {
				return nil, fmt.Errorf("%w: header line %d has no colon: %q", ErrSyntax, line, clip(string(l)))
			}
			if c == 0 {
				return nil, fmt.Errorf("%w: header line %d has an empty field name", ErrSyntax, line)
			}
			spans = append(spans, span{norm.Len(), norm.Len() + c})
		}
		norm.Write(l)
		norm.WriteString(crlf)
	}
	all := norm.String()
	fields := make([]field, len(spans))
	for i, s := range spans {
		end := len(all)
		if i+1 < len(spans) {
			end = spans[i+1].start
		}
		raw := all[s.start:end]
		c := s.colon - s.start
		fields[i] = field{raw: raw, colon: c, lname: strings.ToLower(strings.Trim(raw[:c], " \t"))}
	}
	return fields, nil
}

// canonHeader appends the canonical form of a header field
// (RFC 6376 §3.4.1 simple, §3.4.2 relaxed), ending in CRLF.
func canonHeader(dst []byte, f field, c Canonicalization) []byte {
	if c == Simple {
		return append(dst, f.raw...)
	}
	dst = append(dst, f.lname...)
	dst = append(dst, ':')
	return appendRelaxedValue(dst, f.raw[f.colon+1:])
}

// appendRelaxedValue unfolds v, turns each WSP run into one SP, drops WSP
// at both ends, and appends it with a final CRLF (RFC 6376 §3.4.2).
func appendRelaxedValue(dst []byte, v string) []byte {
	wsp := false
	start := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' && i+1 < len(v) && v[i+1] == '\n' {
			i++ // unfold; a final CRLF is dropped here too
			continue
		}
		if isWSP(c) {
			wsp = true
			continue
		}
		if wsp && !start {
			dst = append(dst, ' ')
		}
		wsp, start = false, false
		dst = append(dst, c)
	}
	return append(dst, crlf...)
}

// headerPicker selects fields for an h= list: each name takes the last
// instance not yet taken, going up from the bottom (RFC 6376 §5.4.2); a
// name with no instance left selects nothing.
type headerPicker struct {
	fields []field
	index  map[string][]int
}

func newHeaderPicker(fields []field) *headerPicker {
	p := &headerPicker{fields: fields, index: make(map[string][]int)}
	for i, f := range fields {
		p.index[f.lname] = append(p.index[f.lname], i)
	}
	return p
}

// pick returns the fields the h= names select, in h= order.
func (p *headerPicker) pick(names []string) []field {
	used := make(map[string]int, len(names))
	out := make([]field, 0, len(names))
	for _, n := range names {
		ln := strings.ToLower(n)
		idx := p.index[ln]
		k := used[ln]
		if k >= len(idx) {
			continue
		}
		used[ln] = k + 1
		out = append(out, p.fields[idx[len(idx)-1-k]])
	}
	return out
}

// count returns how many fields have the (lower-case) name.
func (p *headerPicker) count(lname string) int { return len(p.index[lname]) }
