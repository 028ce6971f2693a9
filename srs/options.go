package srs

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Alphabet selects the base64 alphabet of the hash Forward writes. Reverse
// accepts both, case-insensitively, with '+' equivalent to '-' and '/' to
// '_' (postsrsd 2.x base64_equivalent).
type Alphabet int

const (
	// Base64URL is "A-Za-z0-9-_" (RFC 4648 section 5), what postsrsd 2.x
	// writes. The default.
	Base64URL Alphabet = iota
	// Base64Std is "A-Za-z0-9+/" (RFC 4648 section 4), what libsrs2, Mail::SRS
	// and postsrsd 1.x write.
	Base64Std
)

func (a Alphabet) String() string {
	switch a {
	case Base64URL:
		return "base64url"
	case Base64Std:
		return "base64"
	}
	return "Alphabet(" + strconv.Itoa(int(a)) + ")"
}

// StoreMode says which addresses Forward keeps in the Store.
type StoreMode int

const (
	// StoreLong keeps only addresses whose SRS form would have a local part
	// over 64 octets (RFC 5321 section 4.5.3.1.1). The default.
	StoreLong StoreMode = iota
	// StoreAll keeps every sender that is not already an SRS address, as
	// postsrsd 2.x does when it has a database; SRS addresses are rewritten
	// to SRS1 as usual unless too long.
	StoreAll
)

// Options hold the optional settings of a Rewriter. nil, and every zero
// field, mean the default written next to the field.
type Options struct {
	// Separator is the character after "SRS0"/"SRS1": '=', '+' or '-'
	// (libsrs2 srs_separators). Default '='. All other separators are '='.
	Separator byte

	// HashLength is the number of hash characters Forward writes, 1 to 26.
	// Default 4 (libsrs2, postsrsd). A longer hash given to Reverse is
	// truncated to HashLength before it is compared.
	HashLength int

	// HashMin is the shortest hash Reverse accepts, 1 to HashLength.
	// Default HashLength (libsrs2 srs_new).
	HashMin int

	// MaxAge is how long a rewritten SRS0 address reverses: a whole number
	// of days from 1 to 1023 (the two-character timestamp wraps every 1024
	// days). Default 21 days (libsrs2 srs_new).
	MaxAge time.Duration

	// Alphabet of the hash Forward writes. Default Base64URL (postsrsd 2.x);
	// Base64Std makes the strings postsrsd 1.x makes.
	Alphabet Alphabet

	// LocalDomains are further domains (besides Domain) whose senders are not
	// rewritten, compared ignoring ASCII case. An entry starting with "." also
	// matches every subdomain (postsrsd -X). Default none.
	LocalDomains []string

	// AlwaysRewrite rewrites senders in Domain and LocalDomains too
	// (postsrsd -A). Default false.
	AlwaysRewrite bool

	// Store keeps addresses by key for the database mode
	// "SRS0=HHHH=TT=1=KEY@Domain" (postsrsd 2.x). Default nil: no database;
	// an over-long address is then an ErrTooLong (see AllowLongLocalPart),
	// and a database-mode address does not reverse (ErrNoStore).
	Store Store

	// StoreMode says which addresses go to the Store. Default StoreLong.
	StoreMode StoreMode

	// AllowLongLocalPart lets Forward write SRS addresses whose local part
	// exceeds the 64 octets of RFC 5321 section 4.5.3.1.1 when there is no
	// Store, as postsrsd does. Default false: ErrTooLong.
	AllowLongLocalPart bool

	// Now is the clock used for timestamps. Default time.Now.
	Now func() time.Time

	// Logger receives one debug record per operation. Default nil: discard.
	Logger *slog.Logger
}

// Rewriter forwards and reverses addresses with a fixed configuration. It is
// safe for concurrent use (so is its Store, if the Store is).
type Rewriter struct {
	domain    string
	locals    []string // a leading "." matches subdomains
	keys      []hmacKey
	sep       byte
	hashLen   int
	hashMin   int
	maxAge    int // days
	alphabet  Alphabet
	enc       *[64]byte
	always    bool
	store     Store
	storeMode StoreMode
	allowLong bool
	now       func() time.Time
	log       *slog.Logger
	hashers   sync.Pool // of *hasher
}

const (
	maxAddrLen    = 512  // longest Forward input (postsrsd 2.x)
	maxReverseLen = 1024 // longest Reverse input (postsrsd 1.x); every Forward output fits
	maxLocalLen   = 64   // RFC 5321 section 4.5.3.1.1
	day           = 24 * time.Hour
)

// NewRewriter returns a Rewriter for the SRS domain (rewritten addresses
// end in "@domain", and senders in it are not rewritten unless
// AlwaysRewrite) with the HMAC keys secrets: the first one signs, every one
// verifies, so a new secret is rotated in by putting it first and the old
// one is kept until MaxAge has passed. At least one secret, none empty.
// opts may be nil. Secrets never appear in errors, logs or String output.
func NewRewriter(domain string, secrets []string, opts *Options) (*Rewriter, error) {
	if opts == nil {
		opts = &Options{}
	}
	r := &Rewriter{
		sep:       opts.Separator,
		hashLen:   opts.HashLength,
		hashMin:   opts.HashMin,
		alphabet:  opts.Alphabet,
		always:    opts.AlwaysRewrite,
		store:     opts.Store,
		storeMode: opts.StoreMode,
		allowLong: opts.AllowLongLocalPart,
		now:       opts.Now,
		log:       opts.Logger,
	}
	if err := checkDomain(domain); err != nil {
		return nil, fmt.Errorf("srs: domain: %w", err)
	}
	r.domain = domain
	r.locals = append(r.locals, domain)
	for _, d := range opts.LocalDomains {
		if err := checkDomain(strings.TrimPrefix(d, ".")); err != nil {
			return nil, fmt.Errorf("srs: LocalDomains: %w", err)
		}
		r.locals = append(r.locals, d)
	}
	if len(secrets) == 0 {
		return nil, errors.New("srs: at least one secret required")
	}
	for i, s := range secrets {
		if s == "" {
			return nil, fmt.Errorf("srs: secret %d is empty", i+1)
		}
		r.keys = append(r.keys, newHMACKey(s))
	}
	if r.sep == 0 {
		r.sep = '='
	}
	if r.sep != '=' && r.sep != '+' && r.sep != '-' {
		return nil, fmt.Errorf("srs: Separator %q is not one of = + -", r.sep)
	}
	if r.hashLen == 0 {
		r.hashLen = 4
	}
	if r.hashLen < 1 || r.hashLen > 26 {
		return nil, fmt.Errorf("srs: HashLength %d is not between 1 and 26", r.hashLen)
	}
	if r.hashMin == 0 {
		r.hashMin = r.hashLen
	}
	if r.hashMin < 1 || r.hashMin > r.hashLen {
		return nil, fmt.Errorf("srs: HashMin %d is not between 1 and HashLength %d", r.hashMin, r.hashLen)
	}
	switch {
	case opts.MaxAge == 0:
		r.maxAge = 21
	case opts.MaxAge%day != 0 || opts.MaxAge < day || opts.MaxAge > 1023*day:
		return nil, fmt.Errorf("srs: MaxAge %v is not a whole number of days from 1 to 1023", opts.MaxAge)
	default:
		r.maxAge = int(opts.MaxAge / day)
	}
	switch r.alphabet {
	case Base64URL:
		r.enc = &base64URLChars
	case Base64Std:
		r.enc = &base64StdChars
	default:
		return nil, fmt.Errorf("srs: unknown %v", r.alphabet)
	}
	if r.storeMode != StoreLong && r.storeMode != StoreAll {
		return nil, fmt.Errorf("srs: unknown StoreMode %d", r.storeMode)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.hashers.New = newHasher
	return r, nil
}

// checkDomain accepts what can follow "@" in an SRS address: no "@", "=",
// white space or control characters, at most 255 octets (RFC 5321 section
// 4.5.3.1.2).
//
// It is looser than the DNS-name check the other packages share
// (dnsname.Check: 253 octets, labels of 1 to 63): this package never looks
// a domain up, only writes it into addresses and compares it, so it
// refuses only what would break the address itself ("@" splits it, "="
// separates the SRS fields, white space ends it in SMTP); a stricter
// check would refuse configurations that work today.
func checkDomain(d string) error {
	if d == "" {
		return errors.New("empty domain")
	}
	if len(d) > 255 {
		return errors.New("domain longer than 255 octets")
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c <= ' ' || c == 0x7f || c == '@' || c == '=' {
			return fmt.Errorf("domain %q contains %q", d, c)
		}
	}
	return nil
}

// String describes the configuration without the secrets.
func (r *Rewriter) String() string {
	store := "none"
	if r.store != nil {
		store = "long"
		if r.storeMode == StoreAll {
			store = "all"
		}
	}
	return fmt.Sprintf("srs.Rewriter{domain=%s secrets=%d separator=%c hash=%d min=%d max-age=%dd alphabet=%v always-rewrite=%t store=%s}",
		r.domain, len(r.keys), r.sep, r.hashLen, r.hashMin, r.maxAge, r.alphabet, r.always, store)
}

// Domain returns the SRS domain.
func (r *Rewriter) Domain() string { return r.domain }

// isLocal reports whether host is Domain or one of LocalDomains.
func (r *Rewriter) isLocal(host string) bool {
	for _, d := range r.locals {
		if d[0] == '.' {
			if len(host) > len(d) && asciiEqualFold(host[len(host)-len(d):], d) {
				return true
			}
			continue
		}
		if asciiEqualFold(host, d) {
			return true
		}
	}
	return false
}
