package dnsauth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"strings"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// ErrTSIGKey is wrapped by the errors of NewTSIGKey and ParseTSIGKey.
// Their messages never hold the secret.
var ErrTSIGKey = errors.New("dnsauth: bad TSIG key")

// DefaultTSIGAlgorithm is the algorithm of a TSIG key that names none:
// HMAC-SHA256, which RFC 8945 §6 makes mandatory to implement and BIND's
// tsig-keygen uses by default.
const DefaultTSIGAlgorithm = "hmac-sha256"

// tsigAlgorithms are the algorithms of RFC 8945 §6 that a key may use,
// by their names without the final dot; HMAC-MD5 is left out (RFC 8945
// §6: deprecated), so is GSS-TSIG, which has no shared secret.
var tsigAlgorithms = map[string]func() hash.Hash{
	"hmac-sha1":   sha1.New,
	"hmac-sha224": sha256.New224,
	"hmac-sha256": sha256.New,
	"hmac-sha384": sha512.New384,
	"hmac-sha512": sha512.New,
}

// TSIGKey is a shared secret that signs DNS messages, the transaction
// signatures of RFC 8945, as a key statement of BIND's named.conf holds it:
// a name, an algorithm and a secret. Make one with NewTSIGKey or
// ParseTSIGKey; it cannot be changed afterwards and is safe for concurrent
// use.
//
// The secret never leaves the key except as a MAC: String, GoString,
// every fmt verb, LogValue and the errors of this package show the name and
// the algorithm only, and MACs are compared in constant time.
type TSIGKey struct {
	name      string // absolute, lower case (RFC 8945 §4.2: canonical form)
	algorithm string // as in tsigAlgorithms
	// secret is behind a pointer so that even a printer that reflects over
	// an unexported field holding a TSIGKey shows an address, not octets.
	secret *[]byte
}

// NewTSIGKey returns the key called name (such as "update-key", as in
// named.conf; absolute or not) with the given algorithm ("hmac-sha256",
// "hmac-sha512" ...; "" is DefaultTSIGAlgorithm; RFC 8945 §6) and secret,
// the key's octets in base64 as tsig-keygen prints them.
func NewTSIGKey(name, algorithm, secret string) (*TSIGKey, error) {
	abs, err := dnsname.Absolute(name)
	if err != nil || abs == "." {
		return nil, fmt.Errorf("%w: name %q is not a domain name", ErrTSIGKey, name)
	}
	alg := strings.ToLower(strings.TrimSuffix(algorithm, "."))
	if alg == "" {
		alg = DefaultTSIGAlgorithm
	}
	if tsigAlgorithms[alg] == nil {
		return nil, fmt.Errorf("%w: key %s: algorithm %q is not one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", ErrTSIGKey, abs, algorithm)
	}
	octets, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: the secret is not base64", ErrTSIGKey, abs) // not %v: it would quote the secret
	}
	if len(octets) == 0 {
		return nil, fmt.Errorf("%w: key %s: empty secret", ErrTSIGKey, abs)
	}
	return &TSIGKey{name: dns.CanonicalName(dnsname.Escape(abs)), algorithm: alg, secret: &octets}, nil
}

// ParseTSIGKey reads a key written NAME:ALGORITHM:SECRET, as in
// "update-key:hmac-sha256:c2VjcmV0...", or NAME:SECRET for the default
// algorithm. A base64 secret holds no ':', so the last field is the secret.
func ParseTSIGKey(s string) (*TSIGKey, error) {
	f := strings.Split(s, ":")
	switch len(f) {
	case 2:
		return NewTSIGKey(f[0], "", f[1])
	case 3:
		return NewTSIGKey(f[0], f[1], f[2])
	}
	return nil, fmt.Errorf("%w: want NAME:ALGORITHM:SECRET or NAME:SECRET, got %d fields", ErrTSIGKey, len(f))
}

// Name returns the key's name, absolute and in lower case.
func (k TSIGKey) Name() string { return k.name }

// Algorithm returns the name of the key's algorithm, such as
// "hmac-sha256".
func (k TSIGKey) Algorithm() string { return k.algorithm }

// String returns the key's name and algorithm, never its secret.
func (k TSIGKey) String() string {
	return "TSIG key " + k.name + " " + k.algorithm + " (secret not shown)"
}

// GoString shows the key as Go syntax without its secret, for %#v.
func (k TSIGKey) GoString() string {
	return fmt.Sprintf("dnsauth.TSIGKey{name: %q, algorithm: %q, secret: /* not shown */}", k.name, k.algorithm)
}

// Format writes String (GoString for %#v) for every verb, so that no verb
// (%x, %d ...) prints the secret's octets.
func (k TSIGKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, k.GoString())
		return
	}
	fmt.Fprint(f, k.String())
}

// LogValue makes a TSIGKey logged with log/slog show its name and
// algorithm only.
func (k TSIGKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", k.name), slog.String("algorithm", k.algorithm))
}

// wireAlgorithm is the algorithm's name as a TSIG record carries it.
func (k *TSIGKey) wireAlgorithm() string { return k.algorithm + "." }

// tsigProvider gives miekg/dns the key's MACs (RFC 8945 §4.3), for
// messages signed with this key only.
type tsigProvider struct{ k *TSIGKey }

func (p tsigProvider) mac(msg []byte, t *dns.TSIG) ([]byte, error) {
	if dns.CanonicalName(t.Hdr.Name) != p.k.name {
		return nil, dns.ErrSecret // a key we do not hold (RFC 8945 §5.2.1)
	}
	if strings.ToLower(t.Algorithm) != p.k.wireAlgorithm() {
		return nil, dns.ErrKeyAlg
	}
	h := hmac.New(tsigAlgorithms[p.k.algorithm], *p.k.secret)
	h.Write(msg)
	return h.Sum(nil), nil
}

func (p tsigProvider) Generate(msg []byte, t *dns.TSIG) ([]byte, error) { return p.mac(msg, t) }

// Verify checks the MAC of t in constant time (RFC 8945 §5.3.1).
func (p tsigProvider) Verify(msg []byte, t *dns.TSIG) error {
	want, err := p.mac(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}
