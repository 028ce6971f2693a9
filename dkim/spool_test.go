package dkim_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/smarthost-go/smarthost/dkim"
)

// endReader reads r and, at its end, calls atEOF once.
type endReader struct {
	r     io.Reader
	atEOF func()
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && e.atEOF != nil {
		e.atEOF()
		e.atEOF = nil
	}
	return n, err
}

// TestSignUnseekable: a message Sign cannot rewind comes out the same as
// one it can. A small one stays in memory; a large one goes to a temporary
// file (seen in TMPDIR while the reader ends), which is gone afterwards.
func TestSignUnseekable(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	ctx := context.Background()
	s := edSigner(t, dkim.SignOptions{NoTimestamp: true})
	for _, size := range []int{100, dkim.SpoolMemory - 200, 3 * dkim.SpoolMemory} {
		msg := append(bytes.Clone(unsignedMsg), strings.Repeat("body line  \r\n", size/13)...)
		var want, got bytes.Buffer
		if err := dkim.Sign(ctx, &want, bytes.NewReader(msg), s); err != nil {
			t.Fatal(err)
		}
		var during []os.DirEntry
		r := &endReader{r: bytes.NewReader(msg), atEOF: func() { during, _ = os.ReadDir(dir) }}
		if err := dkim.Sign(ctx, &got, r, s); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%d bytes: unseekable output differs from seekable", len(msg))
		}
		if !bytes.HasSuffix(got.Bytes(), msg) {
			t.Fatalf("%d bytes: the message is not after the signature", len(msg))
		}
		spilled := len(msg) > dkim.SpoolMemory
		if (len(during) == 1) != spilled {
			t.Errorf("%d bytes: %d temporary files while reading, want spill=%v", len(msg), len(during), spilled)
		}
		if after, _ := os.ReadDir(dir); len(after) != 0 {
			t.Errorf("%d bytes: %d temporary files left", len(msg), len(after))
		}
	}
}

// TestSignShortReads: a reader that hands over a byte at a time, or half
// of what is asked, or its last bytes with io.EOF, signs to the same
// output as a bytes.Reader: Sign fills whole chunks before it hashes and
// keeps them.
func TestSignShortReads(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	ctx := context.Background()
	s := edSigner(t, dkim.SignOptions{NoTimestamp: true})
	msg := append(bytes.Clone(unsignedMsg), strings.Repeat("a  line\t \r\n", 3*dkim.SpoolMemory/12+5)...)
	var want bytes.Buffer
	if err := dkim.Sign(ctx, &want, bytes.NewReader(msg), s); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]func() io.Reader{
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewBuffer(msg)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewBuffer(msg)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewBuffer(msg)) },
	} {
		var got bytes.Buffer
		if err := dkim.Sign(ctx, &got, r(), s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s: output differs from the bytes.Reader's", name)
		}
	}
}

// TestSignLogger: one debug record per signature, naming d=, s=, a= and
// the canonical body length ("Hi.\r\n" is 5 octets), and nothing of the key.
func TestSignLogger(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := edSigner(t, dkim.SignOptions{Logger: l})
	if err := dkim.Sign(context.Background(), io.Discard, bytes.NewReader(unsignedMsg), s); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	for _, want := range []string{"msg=\"dkim sign\"", "d=football.example.com", "s=brisbane", "a=ed25519-sha256", "body=5"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	seed := strings.TrimSpace(string(readFile(t, "testdata/rfc8463/ed25519-private-seed.b64")))
	if strings.Count(got, "\n") != 1 || strings.Contains(got, seed) {
		t.Errorf("want one record without the key, got %q", got)
	}
}
