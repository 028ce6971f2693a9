package relay

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/text/transform"
)

// crlfReference is what crlfNormalizer must do, written plainly.
func crlfReference(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// normalizeSmall runs the transformer with destinations of n octets and
// sources fed one octet at a time, so that every state crosses a call.
func normalizeSmall(t *testing.T, in string, n int) (string, bool) {
	t.Helper()
	var tr crlfNormalizer
	var out []byte
	dst := make([]byte, n)
	src := []byte(in)
	pending := 0 // octets of src offered but not consumed
	for i := 0; ; {
		end := min(i+1+pending, len(src))
		atEOF := end == len(src)
		nd, ns, err := tr.Transform(dst, src[i:end], atEOF)
		out = append(out, dst[:nd]...)
		i += ns
		pending = end - i
		switch {
		case err == transform.ErrShortDst:
			if nd == 0 && n < 2 {
				t.Fatalf("no progress with a destination of %d", n)
			}
		case err != nil:
			t.Fatal(err)
		case atEOF:
			return string(out), tr.changed
		}
	}
}

func checkNormalizer(t *testing.T, in string) {
	want := crlfReference(in)
	r := transform.NewReader(iotest.OneByteReader(strings.NewReader(in)), new(crlfNormalizer))
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("Reader: %q → %q, want %q", in, got, want)
	}
	var buf bytes.Buffer
	norm := new(crlfNormalizer)
	w := transform.NewWriter(&buf, norm)
	for i := range len(in) {
		w.Write([]byte{in[i]})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != want {
		t.Fatalf("Writer: %q → %q, want %q", in, buf.Bytes(), want)
	}
	if norm.changed != (want != in) {
		t.Fatalf("%q: changed = %v, want %v", in, norm.changed, want != in)
	}
	for _, n := range []int{2, 3, 7} {
		got, changed := normalizeSmall(t, in, n)
		if got != want || changed != (want != in) {
			t.Fatalf("dst %d: %q → %q (changed %v), want %q", n, in, got, changed, want)
		}
	}
}

func TestCRLFNormalizer(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "a", "\r", "\n", "\r\n", "\r\r", "\n\n", "\n\r", "\r\n\r\n",
		"a\r\nb\r\n", "a\nb\n", "a\rb\r", "a\r\nb", "a\r", "abc\r\r\n\n",
		"From: x\r\n\r\nbody\r\n", "From: x\n\nbody", "\r\n\r", "x\r\n\n\r",
	} {
		checkNormalizer(t, in)
	}
}

func FuzzCRLFNormalizer(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "a\nb\r", "\r\r\n\n", "From: x\n\nbody"} {
		f.Add(s)
	}
	f.Fuzz(checkNormalizer)
}
