package dkim

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
)

// pipeInput is n random bytes and the write sizes to cut them into.
func pipeInput(seed uint64, n int) ([]byte, []int) {
	r := rand.New(rand.NewPCG(seed, 1))
	in := make([]byte, n)
	for i := range in {
		in[i] = byte(r.Uint32())
	}
	var cuts []int
	for rest := n; rest > 0; {
		k := min(rest, 1+r.IntN(3*pipeChunk))
		cuts = append(cuts, k)
		rest -= k
	}
	return in, cuts
}

// TestHashPipeWriterHashes: with a goroutine that never runs (as when
// every processor is busy), the writer hashes the ring itself, and every
// byte reaches the hashes once, in order.
func TestHashPipeWriterHashes(t *testing.T) {
	t.Parallel()
	in, cuts := pipeInput(1, 1<<20)
	var out bytes.Buffer
	p := &hashPipe{dst: []*bodyHash{{h: &captureHash{&out}, limit: -1}}, noHelper: true}
	rest := in
	for _, k := range cuts {
		p.write(rest[:k])
		rest = rest[k:]
		if q := p.filled.Load() - p.hashed.Load(); q > pipeBuffers {
			t.Fatalf("%d buffers queued in a ring of %d", q, pipeBuffers)
		}
	}
	p.wait()
	if want := uint64(len(in) / pipeChunk); p.filled.Load() != want || p.hashed.Load() != want {
		t.Errorf("%d buffers filled, %d hashed; want %d", p.filled.Load(), p.hashed.Load(), want)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("hashed %d bytes, not the %d written in order", out.Len(), len(in))
	}
}

// TestIdleProcessorBusy: with a goroutine spinning on every processor, no
// processor is idle, and a large body is hashed in line. Not parallel,
// so that only these goroutines run.
func TestIdleProcessorBusy(t *testing.T) {
	n := runtime.GOMAXPROCS(0)
	var started, stop atomic.Int32
	for range n {
		go func() {
			started.Add(1)
			for stop.Load() == 0 {
			}
		}()
	}
	defer stop.Store(1)
	for started.Load() < int32(n) {
		runtime.Gosched()
	}
	if idleProcessor() {
		t.Error("a processor was reported idle with every one spinning")
	}
	c := &bodyCanon{dst: []*bodyHash{{h: &captureHash{&bytes.Buffer{}}, limit: -1}}}
	c.Write(bytes.Repeat([]byte("a line of the body\r\n"), 2*pipeAfter/20))
	if c.pipe != nil {
		t.Error("the pipe started with every processor busy")
	}
	c.Close()
}
