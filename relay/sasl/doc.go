// Package sasl holds the SASL mechanisms (RFC 4422) a mail client and
// server authenticate with, as clients and servers of the interfaces of
// github.com/emersion/go-sasl, which go-smtp takes:
//
//   - PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), which send
//     the password;
//   - CRAM-MD5 (RFC 2195), a challenge and an HMAC-MD5 answer;
//   - XOAUTH2, Google's and Microsoft's OAuth 2.0 bearer token;
//   - SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), salted
//     challenge-response that authenticates the server too.
//
// A client gives its Credentials to NewClient for a named mechanism, or to
// Choose, which takes the strongest mechanism the server offers in the
// order SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN (XOAUTH2 when
// the credentials are a token); Choose says why. After a successful SCRAM
// exchange, Complete checks that the server proved itself.
//
// A server keeps its users in a Users store and makes a Server per
// exchange with Users.NewServer. The store keeps the SCRAM keys of RFC 5802
// §3, not passwords, except for CRAM-MD5, which needs the password in
// clear.
//
// SCRAM here has no channel binding: the client sends the GS2 header "n,,"
// (it does not support binding), the server refuses "p=", and the -PLUS
// mechanisms are not offered. User names and passwords go through SASLprep
// (RFC 4013); see SASLprep for where it departs from Unicode 3.2.
//
// Passwords, tokens and keys never appear in errors, nor in the String and
// GoString of the types that hold them, and are compared in constant time.
package sasl
