package dkim

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
)

// Hashing the canonical body is the one step of signing and verifying a
// large message that cannot be split: SHA-256 is sequential. Canonicalizing
// costs a quarter as much again or more. For a large body the two overlap:
// the canonicalizer copies its output into a ring of fixed buffers, and a
// second goroutine hashes them in order while the canonicalizer reads on.
// Small bodies never start the goroutine.
//
// The overlap only pays while the goroutine has a processor of its own.
// When every processor is busy (many messages at once), the goroutine runs
// late or not at all, and a writer that waited for it would hand its own
// processor to the scheduler, again and again, for nothing. So the pipe is
// only started when the scheduler has a processor idle (idleProcessor),
// and a writer that finds every buffer queued hashes the oldest itself
// rather than wait.
const (
	// pipeAfter is how many canonical body bytes are hashed in line
	// before the pipe starts.
	pipeAfter = 64 << 10
	// pipeChunk is the size of one buffer, pipeBuffers how many there
	// are (a power of two).
	pipeChunk   = 8 << 10
	pipeBuffers = 4
	// pipeSpins is how many times the hashing goroutine yields, waiting
	// for a buffer, before it ends.
	pipeSpins = 200
)

// hashPipe feeds body hashes from a goroutine, through a ring of buffers
// with one writer.
//
// The writer fills ring[filled%pipeBuffers] and then advances filled; the
// hashing side hashes ring[hashed%pipeBuffers] and then advances hashed.
// The hashing side is the goroutine, or the writer when it finds every
// buffer queued or waits for the end: busy makes them take turns, so the
// hashes see the buffers in order. The goroutine, waiting for a buffer,
// yields the processor (runtime.Gosched) instead of sleeping: the writer
// fills one within microseconds, and waking a sleeping goroutine costs
// more than that. It ends when wait returns, or when it finds nothing to
// hash for a while, so a writer that is abandoned leaves nothing running.
//
// All bytes given to write reach the hashes in order; after wait returns,
// every byte written has been hashed and the hashes may be read.
type hashPipe struct {
	// The counters each have a cache line of their own, away from the
	// writer's fields, which change on every write.
	_       [64]byte
	filled  atomic.Uint64
	_       [56]byte
	hashed  atomic.Uint64
	_       [56]byte
	running atomic.Bool
	closed  atomic.Bool // wait has returned: nothing more will come
	busy    atomic.Bool // a side is hashing: the hashes are its alone
	_       [61]byte

	dst     []*bodyHash
	ring    [pipeBuffers][]byte
	cur     []byte // ring[filled%pipeBuffers] while the writer fills it
	yielded bool   // the writer has yielded once to the goroutine

	noHelper bool // tests: never start the goroutine, as if it never ran
}

func newHashPipe(dst []*bodyHash) *hashPipe {
	return &hashPipe{dst: dst}
}

// write copies b into the ring, handing each full buffer to the goroutine.
func (p *hashPipe) write(b []byte) {
	for len(b) > 0 {
		if p.cur == nil {
			p.cur = p.next()
		}
		k := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur = p.cur[:len(p.cur)+k]
		b = b[k:]
		if len(p.cur) == cap(p.cur) {
			p.push()
		}
	}
}

// next returns the next free buffer of the ring, emptied. When every
// buffer is still queued, the writer hashes the oldest itself, unless the
// goroutine is at it. The first time only, it yields instead: the
// goroutine, just started, then runs on this processor at once while the
// writer moves to the idle one, which may take a while to wake.
func (p *hashPipe) next() []byte {
	f := p.filled.Load()
	for f-p.hashed.Load() >= pipeBuffers {
		if !p.yielded {
			p.yielded = true
			runtime.Gosched()
			continue
		}
		if !p.hashQueued(1) {
			runtime.Gosched() // the goroutine is hashing one now
		}
	}
	i := f % pipeBuffers
	if p.ring[i] == nil {
		p.ring[i] = make([]byte, 0, pipeChunk)
	}
	return p.ring[i][:0]
}

// hashQueued hashes up to max queued buffers in order, unless the other
// side is hashing. It reports whether it hashed any.
func (p *hashPipe) hashQueued(max int) bool {
	if !p.busy.CompareAndSwap(false, true) {
		return false
	}
	n := 0
	for h := p.hashed.Load(); h < p.filled.Load() && n < max; h++ {
		b := p.ring[h%pipeBuffers]
		for _, d := range p.dst {
			d.write(b)
		}
		p.hashed.Store(h + 1)
		n++
	}
	p.busy.Store(false)
	return n > 0
}

// push hands the current buffer to the goroutine, starting it if it is
// not running.
func (p *hashPipe) push() {
	p.ring[p.filled.Load()%pipeBuffers] = p.cur
	p.cur = nil
	p.filled.Add(1)
	if !p.running.Load() && !p.noHelper && p.running.CompareAndSwap(false, true) {
		go p.drain()
	}
}

// drain hashes filled buffers in order until none has come for a while.
func (p *hashPipe) drain() {
	for {
		for spins := 0; spins < pipeSpins && !p.closed.Load(); spins++ {
			if p.hashQueued(pipeBuffers) {
				spins = 0
			}
			runtime.Gosched()
		}
		p.running.Store(false)
		// A buffer pushed after the last check and before running was
		// cleared found the goroutine still running: take it.
		if p.hashed.Load() == p.filled.Load() || !p.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// wait hands over the last partial buffer and returns when everything
// written has been hashed, hashing what is queued itself when the
// goroutine is not at it.
func (p *hashPipe) wait() {
	if len(p.cur) > 0 {
		p.push()
	}
	p.cur = nil
	for p.hashed.Load() < p.filled.Load() {
		if !p.hashQueued(pipeBuffers) {
			runtime.Gosched()
		}
	}
	p.closed.Store(true) // the goroutine ends now rather than wait for more
}

// idleProcessor reports whether the scheduler has a processor with nothing
// to do: fewer goroutines running or ready to run than GOMAXPROCS. It is
// the view of a moment, taken when a body passes pipeAfter bytes and again
// after each further pipeAfter bytes while the answer is no.
func idleProcessor() bool {
	n := runtime.GOMAXPROCS(0)
	if n < 2 {
		return false
	}
	s := [2]metrics.Sample{
		{Name: "/sched/goroutines/running:goroutines"},
		{Name: "/sched/goroutines/runnable:goroutines"},
	}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return true // not known: assume so, as before these metrics
	}
	return s[0].Value.Uint64()+s[1].Value.Uint64() < uint64(n)
}
