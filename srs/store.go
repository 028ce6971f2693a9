package srs

import (
	"context"
	"sync"
	"time"
)

// Store keeps the original addresses of database-mode SRS addresses
// (postsrsd 2.x: SRS0=HHHH=TT=1=KEY@domain, where KEY is the base32hex
// SHA-1 of the original address and the hash covers KEY like any SRS0
// local part). Implementations must be safe for concurrent use.
type Store interface {
	// Put records addr under key for at least ttl (MaxAge).
	Put(ctx context.Context, key, addr string, ttl time.Duration) error
	// Get returns the address recorded under key (upper case), or an error
	// for which errors.Is(err, ErrUnknownAlias) holds when there is none or
	// it has expired.
	Get(ctx context.Context, key string) (string, error)
}

// MemoryStore is an in-memory Store whose entries expire after their ttl.
// The zero value is ready to use; it is lost when the process ends, so a
// relay fleet needs a shared Store instead.
type MemoryStore struct {
	// Now is the clock used for expiry. Default time.Now.
	Now func() time.Time

	mu        sync.Mutex
	m         map[string]memEntry
	nextSweep int
}

type memEntry struct {
	addr    string
	expires time.Time
}

func (s *MemoryStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Put implements Store.
func (s *MemoryStore) Put(ctx context.Context, key, addr string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]memEntry)
	}
	if len(s.m) >= s.nextSweep {
		for k, e := range s.m {
			if !now.Before(e.expires) {
				delete(s.m, k)
			}
		}
		s.nextSweep = 2*len(s.m) + 64
	}
	s.m[key] = memEntry{addr: addr, expires: now.Add(ttl)}
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	now := s.now()
	s.mu.Lock()
	e, ok := s.m[key]
	s.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return "", ErrUnknownAlias
	}
	return e.addr, nil
}

// Len returns the number of entries, expired ones included until the next
// sweep.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
