package dnsauth

// SameVerdicts is sameVerdicts, for the tests of package dnsauth_test.
var SameVerdicts = sameVerdicts
