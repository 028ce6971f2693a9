package relay

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func enhancedAlways(int) bool { return true }

func TestReadReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		enhanced bool
		code     int
		enh      EnhancedCode
		text     string
		err      error // wrapped by the error; nil for success
	}{
		{name: "one line", in: "250 OK\r\n", code: 250, text: "OK"},
		{name: "multi-line", in: "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n", code: 250, text: "mx.example\nPIPELINING\nSIZE 100"},
		{name: "code alone", in: "354\r\n", code: 354},
		{name: "bare LF", in: "220 ready\n", code: 220, text: "ready"},
		{name: "enhanced", in: "550 5.1.1 No such user\r\n", enhanced: true, code: 550, enh: EnhancedCode{5, 1, 1}, text: "No such user"},
		{name: "enhanced on every line", in: "550-5.7.1 Refused\r\n550 5.7.1 see the policy\r\n", enhanced: true, code: 550, enh: EnhancedCode{5, 7, 1}, text: "Refused\nsee the policy"},
		{name: "enhanced on the first line only", in: "451-4.3.0 Try\r\n451 later\r\n", enhanced: true, code: 451, enh: EnhancedCode{4, 3, 0}, text: "Try\nlater"},
		{name: "enhanced of another class", in: "550 4.1.1 odd\r\n", enhanced: true, code: 550, text: "4.1.1 odd"},
		{name: "enhanced not offered", in: "550 5.1.1 No such user\r\n", code: 550, text: "5.1.1 No such user"},
		{name: "enhanced alone", in: "250 2.0.0\r\n", enhanced: true, code: 250, enh: EnhancedCode{2, 0, 0}},
		{name: "control characters", in: "250 a\x1b[31mb\x00\r\n", code: 250, text: "a\uFFFD[31mb\uFFFD"},
		{name: "invalid UTF-8", in: "250 a\xffb\r\n", code: 250, text: "a\uFFFDb"},
		{name: "garbage", in: "hello there\r\n", err: ErrProtocol},
		{name: "code 1xx", in: "150 no\r\n", err: ErrProtocol},
		{name: "code 6xx", in: "650 no\r\n", err: ErrProtocol},
		{name: "short", in: "25\r\n", err: ErrProtocol},
		{name: "no separator", in: "250OK\r\n", err: ErrProtocol},
		{name: "codes differ", in: "250-a\r\n251 b\r\n", err: ErrProtocol},
		{name: "empty", in: "", err: io.EOF},
		{name: "cut short", in: "250-a\r\n250-b", err: io.ErrUnexpectedEOF},
		{name: "line too long", in: "250 " + strings.Repeat("x", 1000) + "\r\n", err: ErrProtocol},
		{name: "endless", in: strings.Repeat("250-x\r\n", 200) + "250 x\r\n", err: ErrProtocol},
		{name: "too many octets", in: strings.Repeat("250-"+strings.Repeat("x", 990)+"\r\n", 70) + "250 x\r\n", err: ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var enh func(int) bool
			if tt.enhanced {
				enh = enhancedAlways
			}
			r, err := readReply(bufio.NewReader(strings.NewReader(tt.in)), enh)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("readReply = %v, %v; want an error wrapping %v", r, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != tt.code || r.Enhanced != tt.enh || r.Message != tt.text {
				t.Errorf("readReply = %d %v %q, want %d %v %q", r.Code, r.Enhanced, r.Message, tt.code, tt.enh, tt.text)
			}
		})
	}
}

// Limits hold with line lengths at the edge: 1000 octets of text in a
// line pass, and a reply of 100 lines passes.
func TestReadReplyLimits(t *testing.T) {
	t.Parallel()
	line := "250 " + strings.Repeat("x", 996) + "\r\n"
	if _, err := readReply(bufio.NewReader(strings.NewReader(line)), nil); err != nil {
		t.Errorf("a line of 1000 octets: %v", err)
	}
	many := strings.Repeat("250-x\r\n", 99) + "250 x\r\n"
	if r, err := readReply(bufio.NewReader(strings.NewReader(many)), nil); err != nil || strings.Count(r.Message, "\n") != 99 {
		t.Errorf("a reply of 100 lines: %v", err)
	}
}

// FuzzReadReply: whatever a server sends, the reader gives replies or an
// error, never panics, and holds no more than its limits.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n",
		"250-mx.example\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 100\r\n",
		"550-5.1.1 No\r\n550 5.1.1 user\r\n",
		"354\r\n250 2.0.0 queued\n",
		"421 4.3.2 bye\r\n",
		"hello\r\n",
		"250-a\r\n251 b\r\n",
		"250 " + strings.Repeat("x", 1200),
		strings.Repeat("250-x\r\n", 120),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		for {
			r, err := readReply(br, enhancedAlways)
			if err != nil {
				if r != nil {
					t.Fatalf("a reply %v with the error %v", r, err)
				}
				return
			}
			if r.Code < 200 || r.Code > 599 {
				t.Fatalf("code %d", r.Code)
			}
			if len(r.Message) > 3*maxReplyBytes || strings.Count(r.Message, "\n") >= maxReplyLines {
				t.Fatalf("a reply of %d octets, %d lines", len(r.Message), strings.Count(r.Message, "\n")+1)
			}
			if r.Enhanced != (EnhancedCode{}) && r.Enhanced[0] != r.Code/100 {
				t.Fatalf("enhanced code %v in a %d reply", r.Enhanced, r.Code)
			}
		}
	})
}
