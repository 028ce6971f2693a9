// Package dkim signs and verifies mail with DomainKeys Identified Mail
// (RFC 6376), with the rsa-sha256 and ed25519-sha256 (RFC 8463) algorithms
// and the cryptographic updates of RFC 8301.
//
// Both directions stream: the body passes once through a single-pass
// canonicalizer that feeds the hash directly, so signing and verifying hold
// only the header block and a fixed buffer, however large the body.
//
// Both use a second processor when there is one. Past the first 64 KiB of
// a body, the canonical bytes are copied into a ring of four 8 KiB buffers that
// another goroutine hashes while the canonicalizer reads on, so a large
// body costs little more than SHA-256 alone; a verifier also fetches each
// key and checks the signature over the header fields on its own
// goroutine as soon as the header block is complete, overlapping DNS
// latency and the public-key operation with the body. A goroutine waiting
// for the other yields the processor (runtime.Gosched) rather than sleep,
// which costs CPU time only when nothing else is runnable. With
// GOMAXPROCS=1 the body is hashed on the caller's goroutine.
//
// Sign signs a message with one or more Signers (NewSigner); NewSigningWriter
// is the streaming form for a relay that hashes while it spools. A Verifier
// (NewVerifier) checks every DKIM-Signature of a message and gives Results,
// one Result per signature; its NewWriter is the streaming form, whose
// Header hands the parsed header fields on to DMARC. GenerateKey,
// ParsePrivateKey and MarshalPrivateKey make and load keys; KeyRecordText
// and ParseKeyRecord write and read key records (RFC 6376 §3.6.1).
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
package dkim

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/smarthost-go/smarthost/msgauth"
)

// Resolver is the DNS interface dkim needs: the TXT records of a name, each
// record's character-strings joined. *net.Resolver satisfies it. A name that
// does not exist, or has no TXT record, must give a *net.DNSError with
// IsNotFound set; other failures are temporary. The keys of a message's
// signatures are looked up concurrently, so it must be safe for concurrent
// use.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Sentinel errors, wrapped with %w by the errors of this package.
var (
	// ErrSyntax marks malformed input: a header field, a tag-list, a key
	// record, a key.
	ErrSyntax = errors.New("dkim: syntax error")
	// ErrNoRecord is wrapped when no key record exists for a signature.
	ErrNoRecord = errors.New("dkim: no key record")
	// ErrMultipleRecords is wrapped when the key name holds several TXT
	// records and none of them is a usable key record.
	ErrMultipleRecords = errors.New("dkim: multiple key records")
	// ErrDNS is wrapped when a key lookup fails temporarily.
	ErrDNS = errors.New("dkim: DNS error")
	// ErrTooLarge is returned when the header block exceeds the limit.
	ErrTooLarge = errors.New("dkim: header block too large")
	// ErrKey is wrapped when a key is unusable (type, size, revoked).
	ErrKey = errors.New("dkim: unusable key")
)

// Status is the result of verifying one signature, in the vocabulary of
// RFC 8601 §2.7.1 shared by every package of the module.
type Status = msgauth.Status

// The statuses of RFC 8601 §2.7.1 that a DKIM verifier gives.
const (
	Pass      = msgauth.Pass      // the signature verified
	Fail      = msgauth.Fail      // hashes or signature do not match, or the key refuses it
	Neutral   = msgauth.Neutral   // failed, but the key is in testing mode (t=y)
	TempError = msgauth.TempError // the key could not be fetched for now
	PermError = msgauth.PermError // the signature or key record is unusable
	Policy    = msgauth.Policy    // valid but not acceptable by local policy (l=, key size, count)
	None      = msgauth.None      // the message has no signature (Results.AuthResults)
)

// Canonicalization is a canonicalization algorithm of RFC 6376 §3.4.
type Canonicalization string

// The two canonicalization algorithms of RFC 6376 §3.4.
const (
	Simple  Canonicalization = "simple"
	Relaxed Canonicalization = "relaxed"
)

// ParseCanonicalization parses a c= value (RFC 6376 §3.5): "header/body" or
// just "header", in which case the body algorithm is simple. The empty
// string gives simple/simple, the RFC default.
func ParseCanonicalization(s string) (header, body Canonicalization, err error) {
	h, b, found := strings.Cut(s, "/")
	if !found {
		b = string(Simple)
	}
	if h == "" && !found {
		h = string(Simple)
	}
	header, err1 := canonOf(h)
	body, err2 := canonOf(b)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", err
	}
	return header, body, nil
}

func canonOf(s string) (Canonicalization, error) {
	switch Canonicalization(strings.ToLower(s)) {
	case Simple:
		return Simple, nil
	case Relaxed:
		return Relaxed, nil
	}
	return "", fmt.Errorf("%w: unknown canonicalization %q", ErrSyntax, s)
}

const crlf = "\r\n"

// isWSP reports whether c is WSP (RFC 5234: SP or HTAB).
func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// isFWSByte reports whether c may occur in folding white space.
func isFWSByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// stripFWS removes every folding white space byte from s (for base64
// values, RFC 6376 §3.5 b= and bh=, §3.6.1 p=).
func stripFWS(s string) string {
	i := strings.IndexAny(s, " \t\r\n")
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for j := 0; j < len(s); j++ {
		if !isFWSByte(s[j]) {
			b.WriteByte(s[j])
		}
	}
	return b.String()
}
