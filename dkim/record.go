package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// KeyRecord is a parsed DKIM key record (RFC 6376 §3.6.1).
type KeyRecord struct {
	// KeyType is the k= value in lower case: "rsa" (the default) or
	// "ed25519" (RFC 8463).
	KeyType string
	// HashAlgorithms is the h= list, nil when absent (every algorithm).
	HashAlgorithms []string
	// Services is the s= list ("*" when absent).
	Services []string
	// Flags is the t= list: "y" testing, "s" strict i= domain.
	Flags []string
	// Notes is the n= value.
	Notes string
	// PublicKey is an *rsa.PublicKey or an ed25519.PublicKey; nil when
	// the key is revoked.
	PublicKey crypto.PublicKey
	// Revoked is set when p= is empty.
	Revoked bool
}

// Testing reports the t=y flag: the domain is testing DKIM.
func (k *KeyRecord) Testing() bool { return slices.Contains(k.Flags, "y") }

// Strict reports the t=s flag: the i= domain must equal d= exactly.
func (k *KeyRecord) Strict() bool { return slices.Contains(k.Flags, "s") }

// allowsHash reports whether the h= list allows the hash algorithm
// (RFC 6376 §3.6.1; absent means all).
func (k *KeyRecord) allowsHash(h string) bool {
	return k.HashAlgorithms == nil || slices.Contains(k.HashAlgorithms, h)
}

// maxRSABits bounds the keys a verifier will use; larger keys would make a
// single signature check a denial of service.
const maxRSABits = 8192

// ParseKeyRecord parses the text of a DKIM key record (RFC 6376 §3.6.1,
// RFC 8463 §4). v= is optional but, when present, must be first and be
// "DKIM1". k= defaults to rsa; for rsa, p= may be a SubjectPublicKeyInfo
// or, as the text of §3.6.1 specifies, a bare RSAPublicKey. An empty p= is
// a revoked key and no error. Unknown tags are ignored.
func ParseKeyRecord(s string) (*KeyRecord, error) {
	tags, err := parseTagList(s)
	if err != nil {
		return nil, fmt.Errorf("key record: %w", err)
	}
	for i, t := range tags {
		if t.name == "v" && (i != 0 || t.value != "DKIM1") {
			return nil, fmt.Errorf("%w: key record: v=%q must be first and be DKIM1", ErrSyntax, clip(t.value))
		}
	}
	k := &KeyRecord{KeyType: "rsa", Services: []string{"*"}}
	if v, ok := lookupTag(tags, "k"); ok {
		k.KeyType = strings.ToLower(v)
	}
	if v, ok := lookupTag(tags, "h"); ok {
		k.HashAlgorithms = splitColonList(strings.ToLower(v))
	}
	if v, ok := lookupTag(tags, "s"); ok {
		k.Services = splitColonList(strings.ToLower(v))
	}
	if v, ok := lookupTag(tags, "t"); ok {
		k.Flags = splitColonList(strings.ToLower(v))
	}
	k.Notes, _ = lookupTag(tags, "n")
	p, ok := lookupTag(tags, "p")
	if !ok {
		return nil, fmt.Errorf("%w: key record has no p= tag", ErrSyntax)
	}
	if !slices.Contains(k.Services, "*") && !slices.Contains(k.Services, "email") {
		return nil, fmt.Errorf("%w: key record s=%s is not for email", ErrKey, strings.Join(k.Services, ":"))
	}
	p = stripFWS(p)
	if p == "" {
		k.Revoked = true
		if k.KeyType != "rsa" && k.KeyType != "ed25519" {
			return nil, fmt.Errorf("%w: unknown key type k=%q", ErrKey, clip(k.KeyType))
		}
		return k, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("%w: key record p= is not base64: %v", ErrSyntax, err)
	}
	switch k.KeyType {
	case "rsa":
		pub, err := parseRSAPublicKey(der)
		if err != nil {
			return nil, err
		}
		k.PublicKey = pub
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: ed25519 key of %d bytes, want %d", ErrSyntax, len(der), ed25519.PublicKeySize)
		}
		k.PublicKey = ed25519.PublicKey(der)
	default:
		return nil, fmt.Errorf("%w: unknown key type k=%q", ErrKey, clip(k.KeyType))
	}
	return k, nil
}

func parseRSAPublicKey(der []byte) (*rsa.PublicKey, error) {
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		rp, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: k=rsa but p= holds a %T", ErrKey, pub)
		}
		return checkRSASize(rp)
	}
	// RFC 6376 §3.6.1 (k=): "an ASN.1 DER-encoded RSAPublicKey".
	pub, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: p= is neither a SubjectPublicKeyInfo nor an RSAPublicKey", ErrSyntax)
	}
	return checkRSASize(pub)
}

func checkRSASize(pub *rsa.PublicKey) (*rsa.PublicKey, error) {
	if pub.N.BitLen() > maxRSABits {
		return nil, fmt.Errorf("%w: RSA key of %d bits, over %d", ErrKey, pub.N.BitLen(), maxRSABits)
	}
	return pub, nil
}
