package relay

import (
	"net/netip"
	"sync"
	"time"
)

// clientKey is the unit that the per-client limits count: an IPv4 address,
// or the /64 an IPv6 address is in, since one host is routinely given a
// whole /64 (RFC 7421) and could otherwise step around a per-address limit.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// connLimits counts the open connections, in all and per client.
type connLimits struct {
	max, perClient int // 0: no limit

	mu     sync.Mutex
	total  int
	client map[netip.Prefix]int
}

// acquire counts a new connection of client k, or says which limit it is
// over. An exempt client (a trusted one) is held to the limit in all
// only.
func (l *connLimits) acquire(k netip.Prefix, exempt bool) (ok bool, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return false, "Too many connections, try again later"
	}
	if l.perClient > 0 && !exempt && l.client[k] >= l.perClient {
		return false, "Too many connections from your address, try again later"
	}
	if l.client == nil {
		l.client = make(map[netip.Prefix]int)
	}
	l.total++
	l.client[k]++
	return true, ""
}

// release uncounts a connection that acquire counted.
func (l *connLimits) release(k netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.client[k] - 1; n > 0 {
		l.client[k] = n
	} else {
		delete(l.client, k)
	}
}

// authFailures keeps, per client, the times of its failed AUTH attempts
// within a sliding window. A client with max failures in the window is
// blocked until the oldest of them leaves it. Memory is bounded: at most
// max times per client, and at most clients clients; when that many are
// tracked, those whose failures have all left the window are forgotten
// first, then the one whose last failure is the oldest.
type authFailures struct {
	max     int           // failures in the window that block; 0: no limit
	window  time.Duration // how far back failures count
	clients int           // how many clients are tracked at most

	mu    sync.Mutex
	times map[netip.Prefix][]time.Time // oldest first, all within the window when last pruned
}

// recent returns k's failures within the window, dropping older ones.
// l.mu is held.
func (l *authFailures) recent(k netip.Prefix, now time.Time) []time.Time {
	ts, ok := l.times[k]
	if !ok {
		return nil
	}
	cut := now.Add(-l.window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == len(ts) {
		delete(l.times, k)
		return nil
	}
	if i > 0 {
		ts = append(ts[:0], ts[i:]...)
		l.times[k] = ts
	}
	return ts
}

// blocked reports whether client k has failed too often in the window.
func (l *authFailures) blocked(k netip.Prefix, now time.Time) bool {
	if l.max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(k, now)) >= l.max
}

// fail records a failure of client k and reports whether it is now
// blocked.
func (l *authFailures) fail(k netip.Prefix, now time.Time) bool {
	if l.max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.recent(k, now)
	if ts == nil {
		if l.times == nil {
			l.times = make(map[netip.Prefix][]time.Time)
		}
		if len(l.times) >= l.clients {
			l.evict(now)
		}
		ts = make([]time.Time, 0, l.max)
	}
	if len(ts) == l.max {
		ts = append(ts[:0], ts[1:]...)
	}
	ts = append(ts, now)
	l.times[k] = ts
	return len(ts) >= l.max
}

// evict makes room for one more client: it forgets the clients without a
// failure in the window and, if none was, the one whose last failure is
// the oldest. l.mu is held.
func (l *authFailures) evict(now time.Time) {
	cut := now.Add(-l.window)
	var oldest netip.Prefix
	var oldestAt time.Time
	freed := false
	for k, ts := range l.times {
		last := ts[len(ts)-1]
		if !last.After(cut) {
			delete(l.times, k)
			freed = true
			continue
		}
		if oldestAt.IsZero() || last.Before(oldestAt) {
			oldest, oldestAt = k, last
		}
	}
	if !freed && !oldestAt.IsZero() {
		delete(l.times, oldest)
	}
}
