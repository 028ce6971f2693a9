package dnsauth

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/internal/dnsrr"
)

type cacheKey struct {
	name  string // absolute, lower case
	qtype uint16
}

// entry is an answer or a not-found error, cached until expires; a
// temporary error is never cached.
type entry struct {
	answer  *Answer
	txt     []string // for TXT answers: each record's strings joined, once
	err     error
	ttl     time.Duration // how long it may be cached; 0: not at all
	expires time.Time
}

// call is a lookup in flight that identical lookups wait for.
type call struct {
	done    chan struct{}
	e       *entry
	waiters int // lookups waiting for it, for tests
}

// cached returns the entry for abs and qtype from the cache, from a lookup
// already in flight, or from a new one. The new lookup runs apart from the
// caller's cancellation (not its values), so that one waiter giving up does
// not fail the others; it ends by the resolver's own timeouts.
func (r *Resolver) cached(ctx context.Context, abs string, qtype uint16) (*entry, error) {
	k := cacheKey{dnsname.Key(abs), qtype}
	r.mu.Lock()
	if e, ok := r.cache[k]; ok {
		if r.now().Before(e.expires) {
			r.mu.Unlock()
			return e, nil
		}
		delete(r.cache, k)
	}
	c, ok := r.inflight[k]
	if !ok {
		c = &call{done: make(chan struct{})}
		r.inflight[k] = c
		go r.fill(context.WithoutCancel(ctx), k, abs, c)
	}
	c.waiters++
	r.mu.Unlock()
	select {
	case <-c.done:
		return c.e, nil
	case <-ctx.Done():
		return nil, dnsname.Context(abs, ctx.Err())
	}
}

func (r *Resolver) fill(ctx context.Context, k cacheKey, abs string, c *call) {
	e := r.resolve(ctx, abs, k.qtype, "")
	if e.answer != nil && k.qtype == dns.TypeTXT {
		e.txt = dnsrr.TXTs(e.answer.Records)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inflight, k)
	if e.ttl > 0 && r.capacity > 0 {
		e.expires = r.now().Add(min(e.ttl, r.maxTTL))
		r.evict()
		r.cache[k] = e
	}
	c.e = e
	close(c.done)
}

// evict makes room for one entry: expired entries go first, then an
// arbitrary one (map order is random). Called with r.mu held.
func (r *Resolver) evict() {
	if len(r.cache) < r.capacity {
		return
	}
	now, scanned := r.now(), 0
	for k, e := range r.cache {
		if !now.Before(e.expires) {
			delete(r.cache, k)
		}
		if scanned++; scanned == 16 {
			break
		}
	}
	for k := range r.cache {
		if len(r.cache) < r.capacity {
			return
		}
		delete(r.cache, k)
	}
}

// Flush empties the cache.
func (r *Resolver) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.cache)
}
