package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
)

// MinRSABits is the smallest RSA key this package signs with or accepts
// (RFC 8301 §3.2).
const MinRSABits = 1024

// GenerateKey makes a new signing key. kind is "ed25519" (RFC 8463),
// "rsa2048", "rsa3072" or "rsa4096". rnd is the randomness source; nil
// means crypto/rand (crypto/rsa may use its own source regardless).
func GenerateKey(kind string, rnd io.Reader) (crypto.Signer, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	switch strings.ToLower(kind) {
	case "ed25519":
		_, priv, err := ed25519.GenerateKey(rnd)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate ed25519 key: %w", err)
		}
		return priv, nil
	case "rsa2048", "rsa3072", "rsa4096":
		var bits int
		fmt.Sscanf(kind[3:], "%d", &bits)
		k, err := rsa.GenerateKey(rnd, bits)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate RSA key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown key kind %q (want ed25519, rsa2048, rsa3072, rsa4096)", ErrKey, kind)
}

// ParsePrivateKey loads a signing key: PEM "RSA PRIVATE KEY" (PKCS#1),
// PEM "PRIVATE KEY" (PKCS#8, RSA or Ed25519), or the base64 of a raw
// 32-byte Ed25519 seed (RFC 8032 §5.1.5, as RFC 8463 Appendix A.1 shows
// it). The error never holds key material.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		switch blk.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PKCS#1 private key does not parse", ErrSyntax)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PKCS#8 private key does not parse", ErrSyntax)
			}
			switch k := k.(type) {
			case *rsa.PrivateKey:
				return k, nil
			case ed25519.PrivateKey:
				return k, nil
			}
			return nil, fmt.Errorf("%w: PKCS#8 key of type %T", ErrKey, k)
		}
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrSyntax, blk.Type)
	}
	seed, err := base64.StdEncoding.DecodeString(stripFWS(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: not a PEM private key nor a base64 Ed25519 seed", ErrSyntax)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// MarshalPrivateKey encodes a key as PKCS#8 PEM ("PRIVATE KEY").
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// RecordOptions adds flags to a key record. nil means none.
type RecordOptions struct {
	// Testing sets t=y (RFC 6376 §3.6.1). Default false.
	Testing bool
	// Strict sets t=s: i= must not be a subdomain of d=. Default false.
	Strict bool
}

// KeyRecordText returns the DKIM key record for a public key
// (RFC 6376 §3.6.1, RFC 8463 §4): "v=DKIM1; k=rsa; p=<SPKI base64>" or
// "v=DKIM1; k=ed25519; p=<32 bytes base64>". pub may also be the
// crypto.Signer itself.
func KeyRecordText(pub crypto.PublicKey, o *RecordOptions) (string, error) {
	if s, ok := pub.(crypto.Signer); ok {
		pub = s.Public()
	}
	var k, p string
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrKey, err)
		}
		k, p = "rsa", base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		k, p = "ed25519", base64.StdEncoding.EncodeToString(pub)
	default:
		return "", fmt.Errorf("%w: public key of type %T", ErrKey, pub)
	}
	s := "v=DKIM1; k=" + k + "; "
	if o != nil && (o.Testing || o.Strict) {
		var fl []string
		if o.Testing {
			fl = append(fl, "y")
		}
		if o.Strict {
			fl = append(fl, "s")
		}
		s += "t=" + strings.Join(fl, ":") + "; "
	}
	return s + "p=" + p, nil
}

// RecordName returns the DNS name of a key record:
// <selector>._domainkey.<domain> (RFC 6376 §3.6.2.1), without a final dot.
func RecordName(selector, domain string) string {
	return strings.TrimSuffix(selector, ".") + "._domainkey." + strings.TrimSuffix(domain, ".")
}
