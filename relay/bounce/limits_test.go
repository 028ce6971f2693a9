package bounce_test

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

// repeatReader yields n bytes of line, repeated: a large message without
// the memory to hold it.
type repeatReader struct {
	line []byte
	n    int64
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	r.n -= int64(n)
	return n, nil
}

// dsnHead is a DSN up to the start of its returned message part.
const dsnHead = `From: MAILER-DAEMON@mx.example.org
To: bounces+1@em.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown

--b
Content-Type: message/rfc822

Message-ID: <big@em.example.com>
To: gone@example.net
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

`

const mib = 1 << 20

// TestMaxBytes: a message longer than Options.MaxBytes is read up to it and
// no further; what came before gives the report, marked LimitSize.
func TestMaxBytes(t *testing.T) {
	t.Parallel()
	msg := crlf(dsnHead) + strings.Repeat("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n", 1000) + "--b--\r\n"
	for _, tc := range []struct {
		max       int64
		truncated bounce.Limit
	}{
		{int64(len(msg)), ""},
		{int64(len(msg)) - 1, bounce.LimitSize},
		{int64(len(dsnHead)) + 100, bounce.LimitSize},
	} {
		r := &countingReader{r: strings.NewReader(msg)}
		rep, err := bounce.Parse(r, &bounce.Options{MaxBytes: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Truncated != tc.truncated || rep.Kind != bounce.KindDSN || len(rep.Recipients) != 1 || rep.Recipients[0].Address != "gone@example.net" {
			t.Errorf("MaxBytes %d of %d: Truncated %q, Kind %q, %+v", tc.max, len(msg), rep.Truncated, rep.Kind, rep.Recipients)
		}
		// MaxBytes and the one byte that tells there is more.
		if r.n > tc.max+1 {
			t.Errorf("MaxBytes %d: read %d bytes", tc.max, r.n)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestMaxPartsDepthRecipients: the limits on MIME parts, multipart
// nesting and recipients stop the parse there and say so.
func TestMaxPartsDepthRecipients(t *testing.T) {
	t.Parallel()
	head := "From: MAILER-DAEMON@mx.example.org\nTo: s@example.com\nMIME-Version: 1.0\n"
	dsnPart := "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n"

	// 150 parts after the report: the report is read, the rest is not.
	var b strings.Builder
	b.WriteString(head + "Content-Type: multipart/report; report-type=delivery-status; boundary=p\n\n--p\n" + dsnPart)
	for i := range 150 {
		fmt.Fprintf(&b, "--p\nContent-Type: text/plain\n\npart %d\n", i)
	}
	b.WriteString("--p--\n")
	rep := parse(t, b.String(), nil)
	if rep.Truncated != bounce.LimitParts || len(rep.Recipients) != 1 {
		t.Errorf("150 parts: Truncated %q, %d recipients", rep.Truncated, len(rep.Recipients))
	}
	if rep = parse(t, b.String(), &bounce.Options{MaxParts: 200}); rep.Truncated != "" {
		t.Errorf("150 parts, MaxParts 200: Truncated %q", rep.Truncated)
	}

	// A report nested in 12 multiparts: beyond the default depth of 8.
	b.Reset()
	b.WriteString(head + "Content-Type: multipart/mixed; boundary=d0\n\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "--d%d\nContent-Type: multipart/mixed; boundary=d%d\n\n", i-1, i)
	}
	b.WriteString("--d12\n" + dsnPart)
	rep = parse(t, b.String(), nil)
	if rep.Truncated != bounce.LimitDepth || rep.Kind != bounce.KindUnknown {
		t.Errorf("depth 13: Truncated %q, Kind %q", rep.Truncated, rep.Kind)
	}
	if rep = parse(t, b.String(), &bounce.Options{MaxDepth: 20}); rep.Truncated != "" || len(rep.Recipients) != 1 {
		t.Errorf("depth 13, MaxDepth 20: Truncated %q, %d recipients", rep.Truncated, len(rep.Recipients))
	}

	// 1500 recipients in a DSN, a bounce text and a feedback report.
	var dsn, text, arf strings.Builder
	dsn.WriteString(head + "Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n")
	text.WriteString(head + "Subject: failure notice\n\nHi. This is the qmail-send program at mx.example.org.\n")
	arf.WriteString(head + "Content-Type: multipart/report; report-type=feedback-report; boundary=r\n\n--r\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: X/1\nVersion: 1\n")
	for i := range 1500 {
		fmt.Fprintf(&dsn, "\nFinal-Recipient: rfc822; r%d@example.net\nAction: failed\nStatus: 5.1.1\n", i)
		fmt.Fprintf(&text, "<r%d@example.net>:\nRemote host said: 550 5.1.1 unknown\n", i)
		fmt.Fprintf(&arf, "Original-Rcpt-To: r%d@example.net\n", i)
	}
	for name, msg := range map[string]string{"dsn": dsn.String(), "bounce text": text.String(), "feedback": arf.String()} {
		rep := parse(t, msg, nil)
		if len(rep.Recipients) != bounce.DefaultMaxRecipients || rep.Truncated != bounce.LimitRecipients ||
			rep.Recipients[999].Address != "r999@example.net" {
			t.Errorf("%s: %d recipients, Truncated %q", name, len(rep.Recipients), rep.Truncated)
		}
		if rep := parse(t, msg, &bounce.Options{MaxRecipients: 5}); len(rep.Recipients) != 5 || rep.Truncated != bounce.LimitRecipients {
			t.Errorf("%s, MaxRecipients 5: %d recipients, Truncated %q", name, len(rep.Recipients), rep.Truncated)
		}
	}
}

// TestLargeMessageMemory parses 50 MiB bounces made on the fly and checks
// that the bytes allocated meanwhile (runtime.MemStats.TotalAlloc, an upper
// bound of the heap's growth) stay far below the size of the message, with
// the default limit (read up to 10 MiB) and with a limit above the size
// (read to the end; not with -short).
func TestLargeMessageMemory(t *testing.T) {
	const size = 50 * mib
	const budget = 16 * mib
	cases := []struct {
		name string
		make func() io.Reader
		want string // the recipient the report must still find
	}{{
		name: "DSN with a 50 MiB returned message",
		make: func() io.Reader {
			return io.MultiReader(strings.NewReader(crlf(dsnHead)),
				&repeatReader{line: []byte("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"), n: size},
				strings.NewReader("\r\n--b--\r\n"))
		},
		want: "gone@example.net",
	}, {
		name: "bounce text followed by 50 MiB in one part",
		make: func() io.Reader {
			return io.MultiReader(strings.NewReader(crlf("From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\nHi. This is the qmail-send program at mx.example.org.\n<gone@example.net>:\nRemote host said: 550 5.1.1 unknown user\n\n--- Below this line is a copy of the message.\n\n")),
				&repeatReader{line: []byte("All work and no play makes Jack a dull boy.\r\n"), n: size})
		},
		want: "gone@example.net",
	}, {
		name: "a returned header of 50 MiB of short fields",
		make: func() io.Reader {
			return io.MultiReader(strings.NewReader(crlf(strings.TrimSuffix(dsnHead, "\n"))),
				&repeatReader{line: []byte("X-A: b\r\n"), n: size},
				strings.NewReader("\r\nbody\r\n--b--\r\n"))
		},
		want: "gone@example.net",
	}, {
		name: "a part header of 50 MiB of short fields",
		make: func() io.Reader {
			head, _, _ := strings.Cut(dsnHead, "Message-ID:")
			return io.MultiReader(strings.NewReader(crlf(strings.TrimSuffix(head, "\n"))),
				&repeatReader{line: []byte("X-A: b\r\n"), n: size},
				strings.NewReader("\r\nMessage-ID: <big@em.example.com>\r\n\r\nbody\r\n--b--\r\n"))
		},
		want: "gone@example.net",
	}, {
		name: "a line of 50 MiB",
		make: func() io.Reader {
			return io.MultiReader(strings.NewReader(crlf(dsnHead)),
				&repeatReader{line: []byte("QUFB"), n: size},
				strings.NewReader("\r\n--b--\r\n"))
		},
		want: "gone@example.net",
	}}
	limits := []int64{0, 64 * mib}
	if testing.Short() {
		limits = limits[:1]
	}
	for _, tc := range cases {
		for _, max := range limits {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rep, err := bounce.Parse(tc.make(), &bounce.Options{MaxBytes: max})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s, MaxBytes %d MiB: %.1f MiB allocated, Truncated %q", tc.name, max/mib, float64(alloc)/mib, rep.Truncated)
			if alloc > budget {
				t.Errorf("%s, MaxBytes %d: %d bytes allocated for a %d-byte message", tc.name, max, alloc, size)
			}
			wantTrunc := bounce.LimitSize
			if max > size {
				wantTrunc = ""
			}
			if rep.Truncated != wantTrunc || len(rep.Recipients) != 1 || rep.Recipients[0].Address != tc.want || !rep.Recipients[0].Hard {
				t.Errorf("%s, MaxBytes %d: Truncated %q, recipients %+v", tc.name, max, rep.Truncated, rep.Recipients)
			}
		}
	}
}

// An error of the reader is Parse's error; a short read is not.
func TestReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader(crlf(dsnHead)), &failingReader{err: boom})
	if _, err := bounce.Parse(r, nil); !errors.Is(err, boom) {
		t.Errorf("Parse: %v, want %v", err, boom)
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }
