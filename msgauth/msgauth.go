// Package msgauth is what the message-authentication packages of this module
// (spf, dkim, dmarc) share: the result vocabulary of RFC 8601 and the
// Authentication-Results header field (RFC 8601 §2.2) that carries their
// results.
//
// Every result of those packages is a *Result with a Status of this
// vocabulary, an Err that is nil exactly on pass, an AuthResult method
// giving its entry and an AuthResults method that makes it a Result of
// this package, so that any mix of them becomes one header field:
//
//	msgauth.Header("mx.example.org", spfResult, dkimResults, dmarcResult)
//
// The entries are go-msgauth's authres values
// (github.com/emersion/go-msgauth/authres); Entries adapts a list of them,
// for results from elsewhere (authres.Parse of a header written by a
// trusted upstream host, for instance).
package msgauth

import (
	"github.com/emersion/go-msgauth/authres"
)

// Status is a result keyword of RFC 8601 §2.7 (the IANA "Email
// Authentication Result Names"). spf, dkim and dmarc alias it and name the
// values they give with the same constant names.
type Status string

// The result keywords of RFC 8601 §2.7.1 (dkim), §2.7.2 (spf) and RFC 7489
// §11.2 (dmarc).
const (
	None      Status = "none"      // nothing to evaluate: no record, no signature
	Pass      Status = "pass"      // authenticated
	Fail      Status = "fail"      // evaluated and refused
	SoftFail  Status = "softfail"  // spf: weakly refused (RFC 7208 §2.6.5)
	Neutral   Status = "neutral"   // neither authenticated nor refused
	Policy    Status = "policy"    // valid, but refused by local policy
	TempError Status = "temperror" // a temporary failure, usually DNS
	PermError Status = "permerror" // a permanent error: a broken record or signature
)

func (s Status) String() string { return string(s) }

// Result is anything that gives Authentication-Results entries: every
// result of spf, dkim and dmarc, a dkim.Results list, and Entries.
type Result interface {
	AuthResults() []authres.Result
}

// Entries is a list of go-msgauth entries as a Result.
type Entries []authres.Result

// AuthResults returns the entries.
func (e Entries) AuthResults() []authres.Result { return e }
