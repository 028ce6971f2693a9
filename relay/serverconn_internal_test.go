package relay

import (
	"bytes"
	"strings"
	"testing"
)

// lineOK is the reference of checkLine: a line that ends in LF must end
// in CRLF, hold no other CR or LF and no NUL, and be at most max octets.
func lineOK(line []byte, max int) bool {
	n := len(line)
	return n >= 2 && n <= max && line[n-2] == '\r' && line[n-1] == '\n' &&
		!bytes.ContainsAny(line[:n-2], "\r\n\x00")
}

func FuzzServerLineCheck(f *testing.F) {
	for _, s := range []string{
		"a\r\n", "\n", "\r\n", ".\r\n", "a\nb\r\n", "a\rb\r\n", "a\r\r\n", "\r\n.\r\n",
		"x\x00\r\n", "first\n.\nMAIL FROM:<a@b>\r\n", "a\r", "a\r\nb\r", strings.Repeat("y", 40) + "\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	const max = 32
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		// checkLine, line by line, against the reference.
		ok := true
		rest := in
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			line := rest[:i+1]
			rest = rest[i+1:]
			got := checkLine(line, max) == nil
			if got != lineOK(line, max) {
				t.Fatalf("checkLine(%q) ok = %v", line, got)
			}
			ok = ok && got
		}
		// The unended rest of a stream is fine so far if it holds no NUL
		// and no CR but a last one, and is not too long already.
		tail := rest
		if n := len(tail); n > 0 && tail[n-1] == '\r' {
			tail = tail[:n-1]
		}
		ok = ok && !bytes.ContainsAny(tail, "\r\x00") && len(tail)+2 <= max
		// contentCheck, on the same octets in pieces, agrees.
		var k contentCheck
		scanOK := true
		step := int(split%7) + 1
		for i := 0; i < len(in) && scanOK; i += step {
			scanOK = k.scan(in[i:min(i+step, len(in))], max) == nil
		}
		if scanOK != ok {
			t.Fatalf("scan of %q ok = %v, line by line %v", in, scanOK, ok)
		}
	})
}
