package relay

import (
	"net/netip"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.7":                "192.0.2.7/32",
		"::ffff:192.0.2.7":         "192.0.2.7/32",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":     "2001:db8:1:2::/64",
		"2001:db8:1:3:3:4:5:6":     "2001:db8:1:3::/64",
		"fe80::1234:5678:9abc:def": "fe80::/64",
	} {
		if got := clientKey(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("clientKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestConnLimits(t *testing.T) {
	t.Parallel()
	l := connLimits{max: 3, perClient: 2}
	a, b := clientKey(netip.MustParseAddr("192.0.2.1")), clientKey(netip.MustParseAddr("192.0.2.2"))
	for i, step := range []struct {
		k  netip.Prefix
		ok bool
	}{{a, true}, {a, true}, {a, false}, {b, true}, {b, false}} {
		if ok, why := l.acquire(step.k, false); ok != step.ok {
			t.Fatalf("step %d: acquire = %v (%s), want %v", i, ok, why, step.ok)
		}
	}
	l.release(a)
	if ok, _ := l.acquire(b, false); !ok {
		t.Error("a released place was not freed")
	}
	l.release(a)
	l.release(b)
	l.release(b)
	if l.total != 0 || len(l.client) != 0 {
		t.Errorf("after every release: total %d, clients %v", l.total, l.client)
	}
	// An exempt client passes the per-client limit, not the one in all.
	for i, want := range []bool{true, true, true, false} {
		if ok, _ := l.acquire(a, true); ok != want {
			t.Errorf("exempt acquire %d = %v, want %v", i, ok, want)
		}
	}
}

func TestAuthFailuresSlidingWindow(t *testing.T) {
	t.Parallel()
	l := authFailures{max: 3, window: 10 * time.Minute, clients: 10}
	k := clientKey(netip.MustParseAddr("192.0.2.1"))
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
	for _, step := range []struct {
		fail    bool
		min     float64
		blocked bool
	}{
		{true, 0, false},
		{true, 1, false},
		{false, 5, false},
		{true, 2, true}, // three in the window
		{false, 9, true},
		{false, 10.5, false}, // the first has left the window
		{true, 10.6, true},   // 1, 2, 10.6
		{false, 11.5, false}, // 2, 10.6
		{false, 30, false},   // none
	} {
		var got bool
		if step.fail {
			got = l.fail(k, at(step.min))
		} else {
			got = l.blocked(k, at(step.min))
		}
		if got != step.blocked {
			t.Fatalf("at %v min (fail %v): blocked %v, want %v", step.min, step.fail, got, step.blocked)
		}
	}
	if len(l.times) != 0 {
		t.Errorf("a client without failures in the window is still kept: %v", l.times)
	}
}

func TestAuthFailuresBoundedMemory(t *testing.T) {
	t.Parallel()
	l := authFailures{max: 3, window: time.Hour, clients: 100}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var last netip.Prefix
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		last = clientKey(a)
		for j := range 5 {
			l.fail(last, t0.Add(time.Duration(i*5+j)*time.Millisecond))
		}
		if len(l.times) > 100 {
			t.Fatalf("%d clients kept, at most 100", len(l.times))
		}
		if n := len(l.times[last]); n > 3 {
			t.Fatalf("%d failures kept for one client, at most 3", n)
		}
	}
	if !l.blocked(last, t0.Add(time.Minute)) {
		t.Error("the latest client was forgotten")
	}
	// Once the window has passed, a new client makes room by forgetting
	// every expired one.
	l.fail(clientKey(netip.MustParseAddr("192.0.2.1")), t0.Add(2*time.Hour))
	if len(l.times) != 1 {
		t.Errorf("%d clients kept after the window, want 1", len(l.times))
	}
}
