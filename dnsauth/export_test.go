package dnsauth

// SameVerdicts is sameVerdicts, for the tests of package dnsauth_test.
var SameVerdicts = sameVerdicts

// SetBeforeSend makes u run f between reading the zone and sending the
// update, so that tests can change the zone in between.
func SetBeforeSend(u *Updater, f func()) { u.beforeSend = f }
