package dkim

import (
	"runtime"
	"sync/atomic"
)

// Hashing the canonical body is the one step of signing and verifying a
// large message that cannot be split: SHA-256 is sequential. Canonicalizing
// costs a quarter as much again or more. For a large body the two overlap:
// the canonicalizer copies its output into a ring of fixed buffers, and a
// second goroutine hashes them in order while the canonicalizer reads on.
// Small bodies never start the goroutine.
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
// with one writer and one reader.
//
// The writer fills ring[filled%pipeBuffers] and then advances filled; the
// goroutine hashes ring[hashed%pipeBuffers] and then advances hashed. A
// side that waits for the other yields the processor (runtime.Gosched)
// instead of sleeping: the other side frees or fills a buffer within
// microseconds, and waking a sleeping goroutine costs more than that. The
// goroutine ends when wait returns, or when it finds nothing to hash for a
// while, so a writer that is abandoned leaves nothing running.
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
	_       [62]byte

	dst  []*bodyHash
	ring [pipeBuffers][]byte
	cur  []byte // ring[filled%pipeBuffers] while the writer fills it
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

// next returns the next free buffer of the ring, emptied, waiting for the
// goroutine to hash it when it is still queued.
func (p *hashPipe) next() []byte {
	f := p.filled.Load()
	for f-p.hashed.Load() >= pipeBuffers {
		runtime.Gosched()
	}
	i := f % pipeBuffers
	if p.ring[i] == nil {
		p.ring[i] = make([]byte, 0, pipeChunk)
	}
	return p.ring[i][:0]
}

// push hands the current buffer to the goroutine, starting it if it is
// not running.
func (p *hashPipe) push() {
	p.ring[p.filled.Load()%pipeBuffers] = p.cur
	p.cur = nil
	p.filled.Add(1)
	if !p.running.Load() && p.running.CompareAndSwap(false, true) {
		go p.drain()
	}
}

// drain hashes filled buffers in order until none has come for a while.
func (p *hashPipe) drain() {
	for {
		for spins := 0; spins < pipeSpins && !p.closed.Load(); spins++ {
			for h := p.hashed.Load(); h < p.filled.Load(); h++ {
				b := p.ring[h%pipeBuffers]
				for _, d := range p.dst {
					d.write(b)
				}
				p.hashed.Store(h + 1)
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
// written has been hashed.
func (p *hashPipe) wait() {
	if len(p.cur) > 0 {
		p.push()
	}
	p.cur = nil
	// push left a goroutine running that takes every buffer pushed
	// before it ends (see drain).
	for p.hashed.Load() < p.filled.Load() {
		runtime.Gosched()
	}
	p.closed.Store(true) // the goroutine ends now rather than wait for more
}
