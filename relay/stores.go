package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
)

// Building blocks for key stores and suppression lists kept outside this
// package (relay/natsqueue keeps both in NATS JetStream): the same key
// format, hash and checks as KeyFile and SuppressionFile, so that a key or
// a suppression means the same in every store.

// KeyHasher makes API keys and hashes them under a store's hash key, as
// KeyFile does (see KeyPrefix for the format and why the hash is a keyed
// HMAC-SHA256). It is safe for concurrent use. Its String shows nothing of
// the hash key.
type KeyHasher struct {
	hashKey []byte
	id      string
	// dummy is what Hash returns the hash of for a string that is no key,
	// so that such a string costs the same HMAC as a key.
	dummy keySecret
}

// NewKeyHasher returns the KeyHasher of hashKey, at least 32 octets of a
// random source (crypto/rand).
func NewKeyHasher(hashKey []byte) (*KeyHasher, error) {
	if len(hashKey) < hashKeyLen {
		return nil, fmt.Errorf("relay: hash key of %d octets, under %d", len(hashKey), hashKeyLen)
	}
	h := &KeyHasher{hashKey: slices.Clone(hashKey), id: hashKeyID(hashKey)}
	rand.Read(h.dummy[:])
	return h, nil
}

// hashKeyID names a hash key without showing it: the first 8 octets of
// an HMAC of a fixed text under it, in hex. A KeyFile records it.
func hashKeyID(hashKey []byte) string {
	m := hmac.New(sha256.New, hashKey)
	m.Write([]byte("smarthost relay hash key id v1"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// ID names the hash key, as KeyFile's hash_key_id does: 16 hex digits
// from which the key cannot be found, the same for the same key, so that
// a store can tell that it is opened with another one.
func (h *KeyHasher) ID() string { return h.id }

// NewKey makes a key with an ID and a secret from r (crypto/rand.Reader
// outside tests), and returns it, to be shown once, with its ID (as in
// KeyInfo.ID) and its hash, what a store keeps.
func (h *KeyHasher) NewKey(r io.Reader) (key, id string, hash [sha256.Size]byte, err error) {
	kid, secret, err := newKey(r)
	if err != nil {
		return "", "", hash, err
	}
	return formatKey(kid, &secret), kid.String(), keyHash(h.hashKey, kid, &secret), nil
}

// Hash returns the ID and the hash of key; ok is false when key is not an
// API key. Hash computes an HMAC whatever key is, so that a caller which
// compares the hash in constant time (crypto/subtle) with a stored one, or
// with a random one when the ID is unknown, takes the same time for every
// outcome. It never puts anything of key in an error or a log.
func (h *KeyHasher) Hash(key string) (id string, hash [sha256.Size]byte, ok bool) {
	kid, secret, ok := parseKey(key)
	if !ok {
		return "", keyHash(h.hashKey, kid, &h.dummy), false
	}
	return kid.String(), keyHash(h.hashKey, kid, &secret), true
}

// String shows nothing of the hash key but its ID.
func (h *KeyHasher) String() string { return "relay.KeyHasher(" + h.id + ")" }

// GoString is String, so that %#v shows no hash key either.
func (h *KeyHasher) GoString() string { return h.String() }

// Check checks a key's description as KeyFile's Create and its file do:
// a name of 1 to MaxKeyName octets of UTF-8 without control characters or
// spaces at either end, an ID as KeyHasher.NewKey makes them, known
// scopes, and, for ScopeSend, at least one sender domain (a host name of
// two labels or more, or "*." and one). It sorts the scopes and domains,
// each once, the domains in lower case without a final dot.
func (k *KeyInfo) Check() error {
	if err := checkKeyName(k.Name); err != nil {
		return err
	}
	if _, ok := parseKeyID(k.ID); !ok {
		return fmt.Errorf("relay: key ID %q is not %d characters of base32", k.ID, keyIDChars)
	}
	scopes, err := normalizeScopes(k.Scopes)
	if err != nil {
		return err
	}
	domains, err := normalizeDomains(k.Domains, scopes)
	if err != nil {
		return err
	}
	k.Scopes, k.Domains = scopes, domains
	return nil
}

// SuppressionKey returns the text that identifies the suppression of
// rcpt for account in every Suppressions of this module: the account, a
// NUL, and the recipient with its domain in lower case (RFC 5321 §2.4:
// the local part may be case-sensitive, the domain is not). Two
// suppressions with the same key are one.
func SuppressionKey(account, rcpt string) string { return suppressionKey(account, rcpt) }

// Check checks a suppression as SuppressionFile's Add does: an account,
// a recipient local-part@domain, no NUL, CR or LF in either, a known
// source.
func (s *Suppression) Check() error {
	if err := checkSuppression(s); err != nil {
		return fmt.Errorf("relay: suppression: %w", err)
	}
	return nil
}
