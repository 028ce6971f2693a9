package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ErrProtocol is wrapped by the errors of a server that broke the SMTP
// protocol: a malformed reply, a reply over the limits, an unexpected
// reply, or bytes where none may be.
var ErrProtocol = errors.New("relay: SMTP protocol error")

// Limits on one reply of a server. RFC 5321 §4.5.3.1.5 limits a reply line
// to 512 octets; servers exceed it with long texts, so a line is allowed
// 1000 octets, the limit of a command line with extensions (§4.5.3.1.4).
// A multi-line reply (§4.2.1) has no limit in the RFC; 100 lines and
// 64 KiB hold any EHLO reply or error text seen in practice, and stop a
// server that sends lines forever.
const (
	maxReplyLine  = 1000
	maxReplyLines = 100
	maxReplyBytes = 64 << 10
)

// readReply reads one reply (RFC 5321 §4.2): lines "ddd-text" then a last
// line "ddd text" (or "ddd" alone), all with the same code. Lines may end
// in CRLF or a bare LF. enhanced says, given the code, whether to take an
// enhanced status code (RFC 2034 §4, "class.subject.detail" at the start
// of the text of every line) out of the text; nil is never.
//
// The reader is left at the end of the reply, or anywhere after an error:
// the connection cannot be used after one.
func readReply(r *bufio.Reader, enhanced func(code int) bool) (*Reply, error) {
	var (
		code  int
		lines []string
		total int
	)
	for {
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(lines) == 0 && len(line) == 0 {
					return nil, io.EOF
				}
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		total += len(line)
		if total > maxReplyBytes {
			return nil, fmt.Errorf("%w: a reply longer than %d octets", ErrProtocol, maxReplyBytes)
		}
		c, last, text, err := parseReplyLine(line)
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			code = c
		} else if c != code {
			return nil, fmt.Errorf("%w: reply line %q has code %d in a reply of code %d (RFC 5321 §4.2.1)", ErrProtocol, quoteLine(line), c, code)
		}
		lines = append(lines, text)
		if last {
			break
		}
		if len(lines) == maxReplyLines {
			return nil, fmt.Errorf("%w: a reply of more than %d lines", ErrProtocol, maxReplyLines)
		}
	}
	rep := &Reply{Code: code}
	if enhanced != nil && enhanced(code) {
		rep.Enhanced, lines = takeEnhanced(code, lines)
	}
	rep.Message = strings.Join(lines, "\n")
	return rep, nil
}

// readLine reads a line up to its LF, without it and without a CR before
// it. A line longer than maxReplyLine is an error, read no further: the
// memory held is that of r's buffer.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxReplyLine+2 {
			return nil, fmt.Errorf("%w: a reply line longer than %d octets", ErrProtocol, maxReplyLine)
		}
		line = append(line, chunk...)
		switch err {
		case nil:
			line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
			if len(line) > maxReplyLine {
				return nil, fmt.Errorf("%w: a reply line longer than %d octets", ErrProtocol, maxReplyLine)
			}
			return line, nil
		case bufio.ErrBufferFull:
			continue
		default:
			return line, err
		}
	}
}

// parseReplyLine reads "ddd", then "-" (more lines follow), " " or
// nothing (the last line), then the text.
func parseReplyLine(line []byte) (code int, last bool, text string, err error) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, false, "", fmt.Errorf("%w: malformed reply line %q", ErrProtocol, quoteLine(line))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	switch {
	case len(line) == 3:
		return code, true, "", nil
	case line[3] == ' ':
		last = true
	case line[3] == '-':
	default:
		return 0, false, "", fmt.Errorf("%w: malformed reply line %q", ErrProtocol, quoteLine(line))
	}
	return code, last, cleanText(line[4:]), nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// cleanText makes reply text safe to log and show: invalid UTF-8 and
// control characters (tab excepted) become U+FFFD, so that a server cannot
// write terminal escapes or forge lines in a log.
func cleanText(b []byte) string {
	clean := utf8.Valid(b)
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r < 0x20 && r != '\t' || r == 0x7f {
			r = utf8.RuneError
		}
		sb.WriteRune(r)
		b = b[n:]
	}
	return sb.String()
}

// quoteLine shortens a line for an error message.
func quoteLine(line []byte) string {
	if len(line) > 80 {
		return cleanText(line[:80]) + "..."
	}
	return cleanText(line)
}

// takeEnhanced takes the enhanced status code from the start of the first
// line (RFC 2034 §4), when its class is the reply code's first digit (RFC
// 3463 §2), and from the start of every other line that repeats it.
func takeEnhanced(code int, lines []string) (EnhancedCode, []string) {
	word, rest, _ := strings.Cut(lines[0], " ")
	enh, err := ParseEnhancedCode(word)
	if err != nil || enh[0] != code/100 {
		return EnhancedCode{}, lines
	}
	lines[0] = rest
	for i := 1; i < len(lines); i++ {
		if w, r, _ := strings.Cut(lines[i], " "); w == word {
			lines[i] = r
		}
	}
	return enh, lines
}
