package relay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// API keys
//
// An API key is the string
//
//	shk_<id>_<secret>
//
// where id is 10 random octets (80 bits) and secret 35 random octets (280
// bits) from crypto/rand, both in lower-case base32 (RFC 4648 §6, alphabet
// a-z and 2-7) without padding: 16 and 56 characters, 77 in all. The prefix
// makes a leaked key easy to recognize (secret scanners, logs); the ID names
// the key in List and in logs, and lets a store find the key's record with
// one map access; only the secret is secret. The alphabet has no character
// that a terminal's double click, a URL or a shell treats specially.
//
// A store keeps, for each key, only HMAC-SHA256 (RFC 2104) of the ID and the
// secret, keyed with a hash key of the store's own. A fast keyed hash is the
// right one here, not a password hash such as bcrypt or Argon2: those are
// slow on purpose, so that an attacker who has the hashes can try only few
// guesses of a low-entropy human password per second. A 280-bit random
// secret cannot be guessed at any speed, so the hash only has to be one-way,
// and slowness would buy nothing against an attacker while making every SMTP
// AUTH, which the relay checks once per session, cost milliseconds of CPU
// and hand a flood of AUTH attempts an easy denial of service. The hash key
// means that the stored hashes alone do not even let anyone test candidate
// keys offline: that needs the hash key too, which is kept apart from the
// key file (see KeyFileOptions).
const (
	// KeyPrefix begins every API key.
	KeyPrefix = "shk_"
	// KeyUser is the SMTP AUTH user name that goes with an API key as the
	// password (RFC 4954 with the PLAIN or LOGIN mechanism).
	KeyUser = "apikey"
)

const (
	keyIDLen     = 10 // octets of a key ID
	keySecretLen = 35 // octets of a key secret: 280 bits
	// keyHashContext begins the input of every key hash, so that the hash
	// key could serve another purpose without two hashes ever meeting.
	keyHashContext = "smarthost relay api key v1\x00"
)

// keyEncoding is lower-case base32 without padding. The lengths above are
// multiples of 5 octets, so every encoding is 8-character groups with no
// partial last character: each key has exactly one spelling.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var (
	keyIDChars     = keyEncoding.EncodedLen(keyIDLen)
	keySecretChars = keyEncoding.EncodedLen(keySecretLen)
	keyChars       = len(KeyPrefix) + keyIDChars + 1 + keySecretChars
)

type keyID [keyIDLen]byte

type keySecret [keySecretLen]byte

func (id keyID) String() string { return keyEncoding.EncodeToString(id[:]) }

// newKey reads a new ID and secret from r, which is crypto/rand.Reader
// outside tests.
func newKey(r io.Reader) (keyID, keySecret, error) {
	var id keyID
	var secret keySecret
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return id, secret, fmt.Errorf("relay: reading random key ID: %w", err)
	}
	if _, err := io.ReadFull(r, secret[:]); err != nil {
		return id, secret, fmt.Errorf("relay: reading random key secret: %w", err)
	}
	return id, secret, nil
}

// formatKey writes the key string that parseKey reads.
func formatKey(id keyID, secret *keySecret) string {
	b := make([]byte, 0, keyChars)
	b = append(b, KeyPrefix...)
	b = keyEncoding.AppendEncode(b, id[:])
	b = append(b, '_')
	b = keyEncoding.AppendEncode(b, secret[:])
	return string(b)
}

// parseKey reads a key string of formatKey. It reports only whether the
// string is one: its errors are never shown, so that nothing about a
// secret ends up in a message.
func parseKey(s string) (id keyID, secret keySecret, ok bool) {
	if len(s) != keyChars || !strings.HasPrefix(s, KeyPrefix) || s[len(KeyPrefix)+keyIDChars] != '_' {
		return id, secret, false
	}
	idText := s[len(KeyPrefix) : len(KeyPrefix)+keyIDChars]
	secretText := s[len(KeyPrefix)+keyIDChars+1:]
	// The decoder would skip CR and LF; the key has neither.
	if !isKeyText(idText) || !isKeyText(secretText) {
		return id, secret, false
	}
	if n, err := keyEncoding.Decode(id[:], []byte(idText)); err != nil || n != keyIDLen {
		return id, secret, false
	}
	if n, err := keyEncoding.Decode(secret[:], []byte(secretText)); err != nil || n != keySecretLen {
		return id, secret, false
	}
	return id, secret, true
}

// parseKeyID reads the ID of a key as List and the key file show it.
func parseKeyID(s string) (keyID, bool) {
	var id keyID
	if len(s) != keyIDChars || !isKeyText(s) {
		return id, false
	}
	n, err := keyEncoding.Decode(id[:], []byte(s))
	return id, err == nil && n == keyIDLen
}

func isKeyText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// keyHash is what a store keeps of a key: HMAC-SHA256 under the store's
// hash key of the ID and the secret, both of fixed length.
func keyHash(hashKey []byte, id keyID, secret *keySecret) [sha256.Size]byte {
	m := hmac.New(sha256.New, hashKey)
	m.Write([]byte(keyHashContext))
	m.Write(id[:])
	m.Write(secret[:])
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// KeyInfo describes an API key without its secret or hash: what a store
// shows of it.
type KeyInfo struct {
	// Name is the key's unique name, the Account's Name.
	Name string `json:"name"`
	// ID is the part of the key after KeyPrefix and before the secret.
	ID      string    `json:"id"`
	Scopes  []string  `json:"scopes"`
	Domains []string  `json:"domains"`
	Created time.Time `json:"created"`
}

// Account returns the account the key authenticates, with copies of its
// scopes and domains.
func (k *KeyInfo) Account() *Account {
	return &Account{Name: k.Name, Scopes: slices.Clone(k.Scopes), Domains: slices.Clone(k.Domains)}
}

// MaxKeyName is the longest key name, in octets.
const MaxKeyName = 128

// checkKeyName checks a key's name: 1 to MaxKeyName octets of UTF-8, no
// control or format character (a name goes into logs and events, where a
// newline or a bidirectional override could forge or hide a line), and no
// space at either end.
func checkKeyName(name string) error {
	switch {
	case name == "":
		return errors.New("relay: empty key name")
	case len(name) > MaxKeyName:
		return fmt.Errorf("relay: key name of %d octets, over %d", len(name), MaxKeyName)
	case !utf8.ValidString(name):
		return fmt.Errorf("relay: key name %q is not UTF-8", name)
	}
	for _, r := range name {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("relay: key name %q holds the control character %U", name, r)
		}
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("relay: key name %q begins or ends with a space", name)
	}
	return nil
}

// knownScopes are the scopes a key may have.
var knownScopes = []string{ScopeSend}

// normalizeScopes checks scopes against the known ones and returns them
// sorted, each once.
func normalizeScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, errors.New("relay: a key needs at least one scope")
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if !slices.Contains(knownScopes, s) {
			return nil, fmt.Errorf("relay: unknown scope %q (known: %s)", s, strings.Join(knownScopes, ", "))
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeDomains checks sender domains and returns them in lower case
// without a final dot, sorted, each once. A domain is a host name of at
// least two labels (RFC 1035 §2.3.1: letters, digits and inner hyphens,
// RFC 1123 §2.1; A-labels of RFC 5890 for internationalized names), or
// "*." and one, which also allows every subdomain (Account.MaySendFrom).
// A key that may send needs at least one.
func normalizeDomains(domains []string, scopes []string) ([]string, error) {
	if len(domains) == 0 && slices.Contains(scopes, ScopeSend) {
		return nil, fmt.Errorf("relay: a key with scope %s needs at least one sender domain", ScopeSend)
	}
	out := make([]string, 0, len(domains))
	for _, d := range domains {
		n := strings.ToLower(strings.TrimSuffix(d, "."))
		if err := checkSenderDomain(strings.TrimPrefix(n, "*.")); err != nil {
			return nil, fmt.Errorf("relay: sender domain %q: %w", d, err)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func checkSenderDomain(d string) error {
	if err := dnsname.Check(d); err != nil {
		return err
	}
	if !strings.Contains(d, ".") {
		return errors.New("a single label, not a domain of its own")
	}
	for label := range strings.SplitSeq(d, ".") {
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q begins or ends with a hyphen", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				if c >= utf8.RuneSelf {
					return errors.New("not ASCII: give an internationalized name in its A-label (xn--) form")
				}
				return fmt.Errorf("%q is not a letter, digit or hyphen", c)
			}
		}
	}
	return nil
}
