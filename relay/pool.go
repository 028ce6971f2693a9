package relay

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// pool holds a Client's idle connections and limits those in use.
type pool struct {
	cl    *Client
	slots chan struct{} // one per connection in use; nil: no limit

	mu     sync.Mutex
	idle   []*conn // the most recently used last
	closed bool
	quits  sync.WaitGroup // QUITs under way; Add only while !closed
}

func newPool(cl *Client) *pool {
	p := &pool{cl: cl}
	if n := cl.opts.MaxConns; n > 0 {
		p.slots = make(chan struct{}, n)
	}
	return p
}

// acquire waits for a connection slot (MaxConns), as long as ctx allows.
func (p *pool) acquire(ctx context.Context) error {
	if p.slots == nil {
		return nil
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("relay: %s: waiting for a connection (MaxConns %d in use): %w", p.cl.addr, cap(p.slots), context.Cause(ctx))
	}
}

// release frees the slot of acquire.
func (p *pool) release() {
	if p.slots != nil {
		<-p.slots
	}
}

// get takes the most recently used idle connection that is still within
// its limits; nil when there is none. It fails after close.
func (p *pool) get() (*conn, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false, ErrClientClosed
	}
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		stopTimer(c)
		if p.fit(c) {
			return c, true, nil
		}
		p.quitLocked(c)
	}
	return nil, false, nil
}

// fit reports whether c may carry another message: within its age and
// message count.
func (p *pool) fit(c *conn) bool {
	o := &p.cl.opts
	return !c.broken &&
		(o.MaxMessagesPerConn == 0 || c.messages < o.MaxMessagesPerConn) &&
		(o.MaxConnAge == 0 || time.Since(c.created) < o.MaxConnAge)
}

// put gives back a connection after a Send: kept if it is fit and there
// is room, else closed (with QUIT when its session is sound).
func (p *pool) put(c *conn) {
	c.retry = false
	if c.broken {
		c.close()
		return
	}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		c.quit()
		return
	case !p.fit(c) || len(p.idle) >= p.cl.opts.MaxIdleConns:
		p.quitLocked(c)
	default:
		p.idle = append(p.idle, c)
		c.idleTimer = nil
		if d := p.cl.opts.IdleTimeout; d > 0 {
			c.idleTimer = time.AfterFunc(d, func() { p.expire(c) })
		}
	}
	p.mu.Unlock()
}

// expire closes c if it is still idle: its IdleTimeout has passed.
func (p *pool) expire(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == c {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.quitLocked(c)
			return
		}
	}
}

// quitLocked ends c with QUIT in the background; close waits for it. p.mu
// is held, and the pool is open.
func (p *pool) quitLocked(c *conn) { p.quits.Go(c.quit) }

// stopTimer stops the idle timer of a connection taken from the pool.
func stopTimer(c *conn) {
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
}

// close closes the idle connections, and waits for every QUIT under way.
// Connections in use are closed as they come back.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range idle {
		stopTimer(c)
		wg.Go(c.quit)
	}
	wg.Wait()
	p.quits.Wait()
}
