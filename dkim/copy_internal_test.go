package dkim

import (
	"bytes"
	"context"
	"testing"
	"testing/iotest"
)

// chunkWriter records the size of each write.
type chunkWriter struct {
	bytes.Buffer
	sizes []int
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.Buffer.Write(p)
}

// TestCopyFullChunks: copyFull writes whole buffers however little each
// Read gives, and the rest once at the end, so that a reader giving a line
// at a time costs one spool-file write per chunk rather than per line.
func TestCopyFullChunks(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	var w chunkWriter
	if err := copyFull(context.Background(), &w, iotest.OneByteReader(bytes.NewReader(src)), make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), src) {
		t.Fatal("copied bytes differ")
	}
	if want := []int{4096, 4096, 1808}; len(w.sizes) != 3 || w.sizes[0] != want[0] || w.sizes[1] != want[1] || w.sizes[2] != want[2] {
		t.Errorf("write sizes %v, want %v", w.sizes, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := copyFull(ctx, &w, bytes.NewReader(src), make([]byte, 16)); err != context.Canceled {
		t.Errorf("cancelled context: %v, want context.Canceled", err)
	}
}
