package relay

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNormalizer(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, data, bdat string }{
		{"", "", ""},
		{"a", "a\r\n", "a\r\n"},
		{"a\r\n", "a\r\n", "a\r\n"},
		{"a\nb\n", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\rb", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\r", "a\r\n", "a\r\n"},
		{"a\r\r\nb", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
		{"a\n\r\nb\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
		{".", "..\r\n", ".\r\n"},
		{".a\n..b\n.\n", "..a\r\n...b\r\n..\r\n", ".a\r\n..b\r\n.\r\n"},
		{"a\n.\r\nb", "a\r\n..\r\nb\r\n", "a\r\n.\r\nb\r\n"},
		{"a\r.b", "a\r\n..b\r\n", "a\r\n.b\r\n"},
		{"a.b\n", "a.b\r\n", "a.b\r\n"},
		{"\n", "\r\n", "\r\n"},
		{"bin\x00ary\xff\n", "bin\x00ary\xff\r\n", "bin\x00ary\xff\r\n"},
		{"\r", "\r\n", "\r\n"},
		{"\r\r", "\r\n\r\n", "\r\n\r\n"},
		{"\n\r", "\r\n\r\n", "\r\n\r\n"},
		{"\r\n\r", "\r\n\r\n", "\r\n\r\n"},
		{"x\r\n\n\r", "x\r\n\r\n\r\n", "x\r\n\r\n\r\n"},
		{"abc\r\r\n\n", "abc\r\n\r\n\r\n", "abc\r\n\r\n\r\n"},
		{"From: x\r\n\r\nbody\r\n", "From: x\r\n\r\nbody\r\n", "From: x\r\n\r\nbody\r\n"},
		{"From: x\n\nbody", "From: x\r\n\r\nbody\r\n", "From: x\r\n\r\nbody\r\n"},
	}
	for _, tt := range tests {
		for _, stuff := range []bool{true, false} {
			want := tt.bdat
			if stuff {
				want = tt.data
			}
			for name, r := range map[string]io.Reader{
				"whole":    strings.NewReader(tt.in),
				"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
				"data err": iotest.DataErrReader(strings.NewReader(tt.in)),
			} {
				z := newNormalizer(r, stuff)
				got, err := io.ReadAll(z)
				if err != nil || string(got) != want || z.n != int64(len(want)) {
					t.Errorf("%s, stuff %v: %q = %q, %v (%d octets); want %q", name, stuff, tt.in, got, err, z.n, want)
				}
				if z.changed() != (want != tt.in) {
					t.Errorf("%s, stuff %v: %q: changed() = %v", name, stuff, tt.in, z.changed())
				}
			}
		}
	}
}

func TestNormalizerError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	z := newNormalizer(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom)), true)
	got, err := io.ReadAll(z)
	var me *messageError
	if !errors.Is(err, boom) || !errors.As(err, &me) {
		t.Errorf("error %v, want a messageError wrapping %v", err, boom)
	}
	if string(got) != "a\r\nb" {
		t.Errorf("read %q before the error, want %q", got, "a\r\nb")
	}
}

// FuzzNormalizer: the output has only CRLF line endings and ends in one
// (unless empty); with stuffing, no line is "." alone and unstuffing gives
// the lines back; changed() says whether the output is the input.
func FuzzNormalizer(f *testing.F) {
	for _, s := range []string{"", "a", ".\n.", "a\r\r\n.b\r", "x\n\n\r\r..\r\n."} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, stuff bool) {
		z := newNormalizer(iotest.HalfReader(bytes.NewReader(in)), stuff)
		out, err := io.ReadAll(z)
		if err != nil {
			t.Fatal(err)
		}
		if z.changed() == bytes.Equal(out, in) {
			t.Fatalf("%q gave %q, and changed() = %v", in, out, z.changed())
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("%q does not end in CRLF", out)
		}
		lines := bytes.Split(bytes.TrimSuffix(out, []byte("\r\n")), []byte("\r\n"))
		var back [][]byte
		for _, l := range lines {
			if bytes.ContainsAny(l, "\r\n") {
				t.Fatalf("%q has a bare CR or LF", out)
			}
			if stuff {
				if string(l) == "." {
					t.Fatalf("%q has a line with a lone dot", out)
				}
				if l2, ok := bytes.CutPrefix(l, []byte(".")); ok {
					l = l2
				}
			}
			back = append(back, l)
		}
		if len(out) == 0 {
			back = nil
		}
		// The input's lines, every line ending counted once.
		norm := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\r"), []byte("\n"))
		var want [][]byte
		if len(norm) > 0 {
			want = bytes.Split(bytes.TrimSuffix(norm, []byte("\n")), []byte("\n"))
		}
		if len(back) != len(want) {
			t.Fatalf("%q gave %d lines, want %d", in, len(back), len(want))
		}
		for i := range want {
			if !bytes.Equal(back[i], want[i]) {
				t.Fatalf("%q: line %d is %q, want %q", in, i, back[i], want[i])
			}
		}
	})
}
