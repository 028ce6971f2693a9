package dkim

import (
	"runtime"
	"sync"
)

// Hashing the canonical body is the one step of signing and verifying a
// large message that cannot be split: SHA-256 is sequential. Canonicalizing
// costs a fifth to a third as much again. For a large body the two overlap:
// the canonicalizer copies its output into a few fixed buffers, and a second
// goroutine hashes them in order while the canonicalizer reads on. Small
// bodies never start the goroutine.
const (
	// pipeAfter is how many canonical body bytes are hashed in line
	// before the pipe starts.
	pipeAfter = 64 << 10
	// pipeChunk is the size of one buffer, pipeBuffers how many there are.
	pipeChunk   = 8 << 10
	pipeBuffers = 6
	pipeSpins   = 200
)

// chunkPool keeps pipe buffers between messages.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, pipeChunk); return &b }}

// hashPipe feeds body hashes from a goroutine. The goroutine runs only
// while filled buffers wait: it ends when it empties the queue, so a
// writer that is abandoned leaves nothing running.
//
// All bytes given to write reach the hashes in order; after wait returns,
// every byte written has been hashed and the hashes may be read.
type hashPipe struct {
	dst []*bodyHash

	mu      sync.Mutex
	cond    sync.Cond // signalled when a buffer is freed or the goroutine ends
	queue   [pipeBuffers]*[]byte
	head, n int // the queue of filled buffers, in order
	free    []*[]byte
	made    int
	running bool
	waiting bool // the writer waits in get
	closing bool // the writer has no more to give

	cur *[]byte // the buffer being filled, owned by the writer
}

func newHashPipe(dst []*bodyHash) *hashPipe {
	p := &hashPipe{dst: dst}
	p.cond.L = &p.mu
	return p
}

// write copies b into the buffers, handing each full one to the goroutine.
func (p *hashPipe) write(b []byte) {
	for len(b) > 0 {
		if p.cur == nil {
			p.cur = p.get()
		}
		c := *p.cur
		k := copy(c[len(c):cap(c)], b)
		c = c[:len(c)+k]
		*p.cur = c
		b = b[k:]
		if len(c) == cap(c) {
			p.push()
		}
	}
}

// get returns an empty buffer, waiting for the goroutine to free one when
// all are in use.
func (p *hashPipe) get() *[]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	spins := 0
	for len(p.free) == 0 {
		if p.made < pipeBuffers {
			p.made++
			return chunkPool.Get().(*[]byte)
		}
		if spins < pipeSpins {
			// The goroutine frees a buffer within a few microseconds;
			// waking a sleeping writer would cost it more than that.
			spins++
			p.mu.Unlock()
			runtime.Gosched()
			p.mu.Lock()
			continue
		}
		p.waiting = true
		p.cond.Wait()
		p.waiting = false
	}
	b := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return b
}

// push queues the current buffer, starting the goroutine if it is not
// running.
func (p *hashPipe) push() {
	p.mu.Lock()
	p.queue[(p.head+p.n)%pipeBuffers] = p.cur
	p.n++
	p.cur = nil
	if !p.running {
		p.running = true
		go p.drain()
	}
	p.mu.Unlock()
}

// drain hashes queued buffers until the queue is empty.
func (p *hashPipe) drain() {
	p.mu.Lock()
	for spins := 0; ; spins++ {
		if p.n == 0 {
			if spins >= pipeSpins || p.closing {
				break
			}
			// The writer is likely to fill a buffer soon; starting
			// this goroutine again would cost more than waiting.
			p.mu.Unlock()
			runtime.Gosched()
			p.mu.Lock()
			continue
		}
		spins = 0
		b := p.queue[p.head]
		p.queue[p.head] = nil
		p.head = (p.head + 1) % pipeBuffers
		p.n--
		p.mu.Unlock()
		for _, d := range p.dst {
			d.write(*b)
		}
		*b = (*b)[:0]
		p.mu.Lock()
		p.free = append(p.free, b)
		if p.waiting && len(p.free) >= pipeBuffers/2 {
			p.cond.Signal()
		}
	}
	p.running = false
	p.cond.Signal()
	p.mu.Unlock()
}

// wait hands over the last partial buffer and returns when everything
// written has been hashed. The buffers go back to the pool.
func (p *hashPipe) wait() {
	if p.cur != nil {
		if len(*p.cur) > 0 {
			p.push()
		} else {
			p.mu.Lock()
			p.free = append(p.free, p.cur)
			p.cur = nil
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	p.closing = true
	for p.running {
		p.cond.Wait()
	}
	for _, b := range p.free {
		chunkPool.Put(b)
	}
	p.free = nil
	p.made = 0
	p.mu.Unlock()
}
