package dkim

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// refBody is a plain, line-by-line body canonicalizer written straight from
// RFC 6376 §3.4.3 and §3.4.4, to check the streaming one against. Line
// breaks are CRLF or a lone LF; a lone CR is an ordinary byte.
func refBody(in []byte, relaxed bool) []byte {
	s := strings.ReplaceAll(string(in), "\r\n", "\n")
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var b strings.Builder
	for _, l := range lines {
		if relaxed {
			l = wspRun.ReplaceAllString(l, " ")
			l = strings.TrimRight(l, " ")
		}
		b.WriteString(l + "\r\n")
	}
	out := b.String()
	for strings.HasSuffix(out, "\r\n\r\n") {
		out = out[:len(out)-2]
	}
	if out == "\r\n" || out == "" {
		if relaxed {
			return nil
		}
		return []byte("\r\n")
	}
	return []byte(out)
}

var wspRun = regexp.MustCompile(`[ \t]+`)

// canonChunks runs the streaming canonicalizer over in, cut into pieces.
func canonChunks(in []byte, relaxed bool, cuts []int) []byte {
	var out bytes.Buffer
	h := &bodyHash{h: &captureHash{&out}, limit: -1}
	c := &bodyCanon{relaxed: relaxed, dst: []*bodyHash{h}}
	prev := 0
	for _, k := range cuts {
		if k > prev && k <= len(in) {
			c.Write(in[prev:k])
			prev = k
		}
	}
	c.Write(in[prev:])
	c.Close()
	return out.Bytes()
}

// captureHash is a hash.Hash that records what it is given.
type captureHash struct{ b *bytes.Buffer }

func (c *captureHash) Write(p []byte) (int, error) { return c.b.Write(p) }
func (c *captureHash) Sum(b []byte) []byte         { return append(b, c.b.Bytes()...) }
func (c *captureHash) Reset()                      { c.b.Reset() }
func (c *captureHash) Size() int                   { return sha256.Size }
func (c *captureHash) BlockSize() int              { return 64 }

var bodySeeds = []string{
	"", "\r\n", "\n", "\r", "abc", "abc\r\n", "abc\r\n\r\n\r\n", " \t \r\n", "a  b\t\tc \r\n",
	"a\rb", "a \rb", "a\r\r\nb", "x\n\ny\n", "  lead\r\n\r\n mid \t\r\n\r\n", "tail  ",
	"a\r", "a \r", "\r\n\r\nx", strings.Repeat("word ", 40) + "\r\n", strings.Repeat("A", 200) + "  \r\n",
	"é 8-bit\xff\x00\x01 \x0c\r\n",
	// Long enough for the scanner's 32-byte blocks.
	strings.Repeat("ab ", 10) + "c  d \r\n" + strings.Repeat("QUJD", 10) + " \r\n\te\nf !  g\r\r\n \r\n",
	// WSP runs inside lines and before line breaks, in every context.
	"a  b\t \r\nc\td \t\r\n\te  \r\n \t\r\nf \t g\t\r\n\r\n  \r\nh\t \n i \r\r\n",
}

func FuzzBodyCanon(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s), uint16(3), uint16(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, c1, c2 uint16) {
		cuts := []int{int(c1) % (len(in) + 1), int(c2) % (len(in) + 1)}
		if cuts[0] > cuts[1] {
			cuts[0], cuts[1] = cuts[1], cuts[0]
		}
		for _, relaxed := range []bool{false, true} {
			want := refBody(in, relaxed)
			if got := canonChunks(in, relaxed, cuts); !bytes.Equal(got, want) {
				t.Fatalf("relaxed=%v cuts=%v in=%q\n got %q\nwant %q", relaxed, cuts, in, got, want)
			}
		}
	})
}

func TestBodyCanonSeedsEveryCut(t *testing.T) {
	t.Parallel()
	for _, s := range bodySeeds {
		in := []byte(s)
		for relaxed := range 2 {
			want := refBody(in, relaxed == 1)
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j++ {
					if got := canonChunks(in, relaxed == 1, []int{i, j}); !bytes.Equal(got, want) {
						t.Fatalf("relaxed=%d cuts=%d,%d in=%q: got %q want %q", relaxed, i, j, in, got, want)
					}
				}
			}
		}
	}
}

// TestBodyCanonRFCExamples checks RFC 6376 §3.4.5's examples.
func TestBodyCanonRFCExamples(t *testing.T) {
	t.Parallel()
	in := " C \r\nD \t E\r\n\r\n\r\n"
	if got := string(canonChunks([]byte(in), true, nil)); got != " C\r\nD E\r\n" {
		t.Errorf("relaxed: %q", got)
	}
	if got := string(canonChunks([]byte(in), false, nil)); got != " C \r\nD \t E\r\n" {
		t.Errorf("simple: %q", got)
	}
}

func TestHeaderCanonRFCExample(t *testing.T) {
	t.Parallel()
	// RFC 6376 §3.4.5
	fields, err := parseHeader([]byte("A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	var relaxed, simple []byte
	for _, f := range fields {
		relaxed = canonHeader(relaxed, f, Relaxed)
		simple = canonHeader(simple, f, Simple)
	}
	if string(relaxed) != "a:X\r\nb:Y Z\r\n" {
		t.Errorf("relaxed: %q", relaxed)
	}
	if string(simple) != "A: X\r\nB : Y\t\r\n\tZ  \r\n" {
		t.Errorf("simple: %q", simple)
	}
}

func FuzzTagList(f *testing.F) {
	for _, s := range []string{
		"v=1; a=rsa-sha256; d=example.net; s=brisbane;", "a=b;;c=d", "=x", "a", "a=b; a=c",
		"k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", " h = from : to ;\r\n\tb= abc\r\n def",
		"x=\x00", "1a=b", "a_1=;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := parseTagList(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, tg := range tags {
			if seen[tg.name] || !validTagName(tg.name) {
				t.Fatalf("bad or duplicate tag %q", tg.name)
			}
			seen[tg.name] = true
			if tg.start < 0 || tg.end > len(s) || tg.start > tg.end {
				t.Fatalf("value span %d..%d of %d", tg.start, tg.end, len(s))
			}
			if strings.TrimSpace(s[tg.start:tg.end]) != strings.TrimSpace(tg.value) {
				t.Fatalf("span %q does not hold value %q", s[tg.start:tg.end], tg.value)
			}
		}
	})
}

func FuzzHeader(f *testing.F) {
	for _, s := range []string{
		"From: a\r\nTo: b\r\n\r\nbody", "From: a\n folded\n\n", "no colon\r\n\r\n", " cont\r\n\r\n",
		"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n", "\r\n", "X:\r\rY\r\n\r\n", "a:b", ":empty\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(5))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		hc := headerCollector{max: 1 << 16}
		k := int(cut) % (len(in) + 1)
		n1, err := hc.feed(in[:k])
		if err != nil {
			return
		}
		n := n1
		if !hc.done {
			n2, err := hc.feed(in[k:])
			if err != nil {
				return
			}
			n += n2
		}
		if !bytes.Equal(hc.buf, in[:n]) {
			t.Fatal("collector kept other bytes than it consumed")
		}
		fields, err := parseHeader(hc.buf)
		if err != nil {
			return
		}
		for _, f := range fields {
			if !strings.HasSuffix(f.raw, "\r\n") || f.raw[f.colon] != ':' {
				t.Fatalf("bad field %q", f.raw)
			}
			r := canonHeader(nil, f, Relaxed)
			if !bytes.HasSuffix(r, []byte("\r\n")) || bytes.Contains(r[:len(r)-2], []byte("\r\n")) {
				t.Fatalf("relaxed form %q of %q", r, f.raw)
			}
		}
	})
}

// TestBodyCanonWriteBoundaries checks relaxed body canonicalization (RFC
// 6376 §3.4.4: WSP runs become one SP, WSP at the end of a line goes,
// trailing empty lines go) where the spots it changes meet a Write
// boundary or a 32-byte block edge of the scanner. The expected forms are
// worked out by hand from the RFC rules.
func TestBodyCanonWriteBoundaries(t *testing.T) {
	t.Parallel()
	x31 := strings.Repeat("x", 31)
	b64 := strings.Repeat("QUJD", 19) // a 76-column base64 line
	for _, tc := range []struct {
		writes []string
		want   string
	}{
		{[]string{"a ", "b\r\n"}, "a b\r\n"},                   // SP at a boundary
		{[]string{"a ", " b\r\n"}, "a b\r\n"},                  // double SP across two writes
		{[]string{"a", "\tb\r\n"}, "a b\r\n"},                  // tab at the start of a write
		{[]string{"a\tb\r\n"}, "a b\r\n"},                      // tab between words
		{[]string{"a \t", "b\r\n"}, "a b\r\n"},                 // SP tab across writes
		{[]string{"a ", "\r\nb\r\n"}, "a\r\nb\r\n"},            // trailing SP, CRLF in the next write
		{[]string{"a \r", "\nb\r\n"}, "a\r\nb\r\n"},            // trailing SP, CR | LF
		{[]string{"a\r", "\nb"}, "a\r\nb\r\n"},                 // CR | LF
		{[]string{"a\r", "b"}, "a\rb\r\n"},                     // a lone CR is an ordinary byte
		{[]string{"a \r", "b"}, "a \rb\r\n"},                   // SP before a lone CR stays
		{[]string{"a\nb"}, "a\r\nb\r\n"},                       // lone LF
		{[]string{"a\r\n", " b\r\n"}, "a\r\n b\r\n"},           // a line starting with one SP
		{[]string{"a\r\n", "\r\n"}, "a\r\n"},                   // trailing empty line
		{[]string{"a\r\n \r\n", "\t\r\n"}, "a\r\n"},            // trailing WSP-only lines
		{[]string{"a !  b\r\n"}, "a ! b\r\n"},                  // SP before "!", then a double SP
		{[]string{x31 + "  y\r\n"}, x31 + " y\r\n"},            // double SP across a block edge
		{[]string{x31 + " \r\nz\r\n"}, x31 + "\r\nz\r\n"},      // trailing SP at a block edge
		{[]string{x31 + "x \tz\r\n"}, x31 + "x z\r\n"},         // SP tab at a block edge
		{[]string{x31 + x31 + "\nz"}, x31 + x31 + "\r\nz\r\n"}, // lone LF after long text
		{[]string{b64 + "\r\n" + b64 + "\r\n\r\n"}, b64 + "\r\n" + b64 + "\r\n"},
		{[]string{b64 + "\r\n" + b64[:40] + "\t" + b64[40:] + " \r\n"}, b64 + "\r\n" + b64[:40] + " " + b64[40:] + "\r\n"},
		{[]string{b64 + "\r\n" + x31 + " the  end  \r\n\r\n"}, b64 + "\r\n" + x31 + " the end\r\n"},
	} {
		var out bytes.Buffer
		c := &bodyCanon{relaxed: true, dst: []*bodyHash{{h: &captureHash{&out}, limit: -1}}}
		for _, w := range tc.writes {
			c.Write([]byte(w))
		}
		c.Close()
		if got := out.String(); got != tc.want {
			t.Errorf("writes %q:\n got %q\nwant %q", tc.writes, got, tc.want)
		}
		if want := string(refBody([]byte(strings.Join(tc.writes, "")), true)); want != tc.want {
			t.Errorf("reference disagrees on %q: %q", tc.writes, want)
		}
	}
}

// TestBodyCanonPipe checks large bodies, whose hashing moves to another
// goroutine part way through, against the line-by-line reference: random
// writes, every kind of line, runs of empty lines across the switch, and
// an l= limit beside a whole-body hash. Each body goes through a pipe
// started past pipeAfter (whether or not a processor is idle), and through
// one whose goroutine never runs, so that the writer hashes the ring.
func TestBodyCanonPipe(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 9))
	pieces := []string{
		strings.Repeat("QUJD", 19) + "\r\n", "word  word\t \r\n", "a b c\n", "lone\rCR\r\n",
		" lead\r\n", "\r\n", "\r\n\r\n\r\n", "8bit \xe9\xff  \r\n", strings.Repeat("x", 900) + " \r\n",
	}
	for round := range 8 {
		var body bytes.Buffer
		for body.Len() < 300<<10+r.IntN(300<<10) {
			if r.IntN(50) == 0 {
				body.WriteString(strings.Repeat("\r\n", 20000)) // an empty-line run
			}
			body.WriteString(pieces[r.IntN(len(pieces))])
		}
		if round%2 == 0 {
			body.WriteString("tail  \r\n\r\n\r\n")
		}
		in := body.Bytes()
		for _, relaxed := range []bool{false, true} {
			// stalled: the pipe's goroutine never runs, as when every
			// processor is busy; the writer hashes the ring itself.
			for _, stalled := range []bool{false, true} {
				want := refBody(in, relaxed)
				limit := int64(len(want) / 3)
				var all, part bytes.Buffer
				c := &bodyCanon{relaxed: relaxed, forcePipe: true, dst: []*bodyHash{
					{h: &captureHash{&all}, limit: -1}, {h: &captureHash{&part}, limit: limit}}}
				if stalled {
					c.pipe = &hashPipe{dst: c.dst, noHelper: true}
				}
				for rest := in; len(rest) > 0; {
					k := min(len(rest), 1+r.IntN(70000))
					c.Write(rest[:k])
					rest = rest[k:]
				}
				piped := c.pipe != nil
				c.Close()
				if !piped {
					t.Fatalf("round %d: a %d-byte body was hashed without the pipe", round, len(in))
				}
				if !bytes.Equal(all.Bytes(), want) {
					t.Fatalf("round %d relaxed=%v stalled=%v: canonical body differs from the reference (%d vs %d bytes)", round, relaxed, stalled, all.Len(), len(want))
				}
				if !bytes.Equal(part.Bytes(), want[:limit]) || c.dst[1].n != int64(len(want)) {
					t.Fatalf("round %d relaxed=%v stalled=%v: l=%d hash got %d bytes, counted %d", round, relaxed, stalled, limit, part.Len(), c.dst[1].n)
				}
			}
		}
	}
}

// FuzzBodyCanonLarge repeats the input past pipeAfter, so that the hashing
// moves to the pipe's goroutine, and checks the result against the
// reference with the writes cut where the fuzzer says; also with a pipe
// whose goroutine never runs, so that the writer hashes the ring.
func FuzzBodyCanonLarge(f *testing.F) {
	for _, s := range bodySeeds {
		if s != "" {
			f.Add([]byte(s), uint32(pipeAfter-1), uint16(7))
		}
	}
	f.Fuzz(func(t *testing.T, unit []byte, cut uint32, step uint16) {
		if len(unit) == 0 || len(unit) > 4096 {
			return
		}
		in := bytes.Repeat(unit, pipeAfter*2/len(unit)+1)
		for i := range 4 {
			relaxed, stalled := i&1 == 1, i&2 == 2
			want := refBody(in, relaxed)
			var out bytes.Buffer
			c := &bodyCanon{relaxed: relaxed, forcePipe: true, dst: []*bodyHash{{h: &captureHash{&out}, limit: -1}}}
			if stalled {
				// A pipe from the first byte whose goroutine never runs:
				// the writer hashes the ring itself.
				c.pipe = &hashPipe{dst: c.dst, noHelper: true}
			}
			k := int(cut) % len(in)
			c.Write(in[:k])
			for rest, n := in[k:], int(step)%9000+1; len(rest) > 0; {
				m := min(n, len(rest))
				c.Write(rest[:m])
				rest = rest[m:]
			}
			c.Close()
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("relaxed=%v stalled=%v unit=%q cut=%d step=%d: differs from the reference", relaxed, stalled, unit, k, step)
			}
		}
	})
}
