package srs

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by [Rewriter.Forward] and
// [Rewriter.Reverse] is an [*AddressError] that wraps one of them (or an error
// of the [Store]), so callers test with errors.Is.
var (
	// ErrNotSRS: Reverse was given an address that is not an SRS0 or SRS1
	// address. Postfix-style callers treat it as "no rewrite needed".
	ErrNotSRS = errors.New("srs: not an SRS address")
	// ErrBadHash: the hash does not verify under any configured secret.
	ErrBadHash = errors.New("srs: hash invalid")
	// ErrExpired: the timestamp is older than MaxAge (or in the future).
	ErrExpired = errors.New("srs: timestamp out of date")
	// ErrSyntax: the address is malformed (missing domain, missing SRS
	// field, bad timestamp character, hash shorter than HashMin).
	ErrSyntax = errors.New("srs: syntax error")
	// ErrTooLong: the input of Forward exceeds 512 octets (postsrsd 2.x's
	// limit) or that of Reverse 1024 octets (postsrsd 1.x's), or the SRS
	// form's local part would exceed 64 octets (RFC 5321 section 4.5.3.1.1)
	// and there is no Store and AllowLongLocalPart is false.
	ErrTooLong = errors.New("srs: address too long")
	// ErrNoStore: Reverse was given a database-mode address
	// (SRS0=HHHH=TT=1=KEY@domain) but the Rewriter has no Store.
	ErrNoStore = errors.New("srs: no store for database alias")
	// ErrUnknownAlias: the Store does not know (or no longer knows) the key
	// of a database-mode address. Store implementations return it (wrapped or
	// not) from Get.
	ErrUnknownAlias = errors.New("srs: unknown alias")
)

// AddressError is the error type of Forward and Reverse. It names the
// operation and the address; Err is one of the sentinel errors or a Store's
// error.
type AddressError struct {
	Op     string // "forward" or "reverse"
	Addr   string // the address given (truncated to 128 octets)
	Reason string // human-readable reason, e.g. "hash invalid in SRS address"
	Err    error
}

func (e *AddressError) Error() string {
	return "srs: " + e.Op + " " + strconv.Quote(e.Addr) + ": " + e.Reason
}

func (e *AddressError) Unwrap() error { return e.Err }

func addrErr(op, addr string, sentinel error, reason string) error {
	if len(addr) > 128 {
		addr = addr[:128] + "..."
	}
	return &AddressError{Op: op, Addr: addr, Reason: reason, Err: sentinel}
}
