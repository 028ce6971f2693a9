package dnsauth

import "github.com/smarthost-go/smarthost/internal/dnsname"

// SameVerdicts is sameVerdicts, for the tests of package dnsauth_test.
var SameVerdicts = sameVerdicts

// SetBeforeSend makes u run f between reading the zone and sending the
// update, so that tests can change the zone in between.
func SetBeforeSend(u *Updater, f func()) { u.beforeSend = f }

// Waiters returns how many lookups wait for the query in flight for name
// and qtype.
func Waiters(r *Resolver, name string, qtype uint16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.inflight[cacheKey{dnsname.Key(name), qtype}]; c != nil {
		return c.waiters
	}
	return 0
}
