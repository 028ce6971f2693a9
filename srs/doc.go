// Package srs implements the Sender Rewriting Scheme (SRS) as postsrsd and
// libsrs2 write it, so that the addresses it makes are the same strings
// postsrsd makes, and the addresses postsrsd makes reverse here.
//
// A relay that forwards a message with the original sender as envelope
// sender fails the receiver's SPF check (RFC 7208 appendix D, SPF/Mediator
// Interactions): the relay's address is not in the sender domain's record. SRS
// rewrites the reverse-path (RFC 5321 section 4.1.1.2) into an address of the
// relay's own domain that carries the original address, a timestamp and an
// HMAC, so bounces can be routed back and forged bounces refused:
//
//	SRS0=HHHH=TT=orig.example=alice@relay.example
//	SRS1=HHHH=hop1.example==HHHH=TT=orig.example=alice@relay.example
//
// HHHH is the first HashLength characters of the base64 encoding of
// HMAC-SHA1(secret, lc(TT) || lc(orig-domain) || lc(orig-local)) (for SRS1:
// over lc(hop) || lc(opaque)); TT is the day number modulo 1024 in two RFC 4648
// base32 characters. The scheme is described in Shevek's "Sender Rewriting
// Scheme" paper and implemented by libsrs2, Mail::SRS and postsrsd.
//
// A [Rewriter] made by [NewRewriter] does both directions: [Rewriter.Forward]
// and [Rewriter.Reverse]. Addresses whose SRS form would not fit in the 64 octets
// RFC 5321 section 4.5.3.1.1 allows for a local part can be kept in a [Store]
// (postsrsd 2.x database mode, "SRS0=HHHH=TT=1=KEY@domain"); [MemoryStore] is
// an in-memory one.
//
// # Conventions
//
// The packages of this module share one set of conventions. A dependency a
// value cannot work without (a resolver) is a constructor argument;
// everything optional is an Options struct, where nil means every default;
// constructors check what they are given and return an error. A package
// function using net.DefaultResolver may sit beside a configured type for
// one-off use. Results are *Result values: Status is an RFC 8601 result
// keyword (msgauth.Status, with the same constant names, Pass, Fail, None
// and so on, in every package), Err is nil exactly on pass and says why for
// every other status, and AuthResult gives the Authentication-Results
// entry; msgauth.Header writes any mix of results as one header field.
// Errors begin with the package name and wrap sentinel errors whose names
// are shared (ErrNoRecord, ErrMultipleRecords, ErrDNS, ErrSyntax). Every
// call that may do I/O takes a context.Context first. Logging goes to the
// *slog.Logger of the options, at debug level, one record per operation;
// nothing is global, and clocks and randomness are fields of the options.
package srs
