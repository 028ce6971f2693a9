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
// A [Rewriter] made by [New] does both directions: [Rewriter.Forward] and
// [Rewriter.Reverse]. Addresses whose SRS form would not fit in the 64 octets
// RFC 5321 section 4.5.3.1.1 allows for a local part can be kept in a [Store]
// (postsrsd 2.x database mode, "SRS0=HHHH=TT=1=KEY@domain"); [MemoryStore] is
// an in-memory one.
package srs
