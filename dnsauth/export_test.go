package dnsauth

// SetBeforeSend makes u run f between reading the zone and sending the
// update, so that tests can change the zone in between.
func SetBeforeSend(u *Updater, f func()) { u.beforeSend = f }
