package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Iteration counts of SCRAM. RFC 5802 §5.1 (SCRAM-SHA-1) and RFC 7677 §3
// (SCRAM-SHA-256) say that a server SHOULD announce at least 4096. This
// package holds both sides to it: a client refuses fewer, because a hostile
// server (or anyone in the middle without TLS) asking for a small count
// gets a proof that is cheap to attack offline for the password; and a
// client refuses more than MaxIterations, the denial of service of RFC
// 5802 §9.
const (
	MinIterations = 4096
	MaxIterations = 1 << 20
)

// scramHash returns the hash of a SCRAM mechanism, nil for another name.
func scramHash(mech string) func() hash.Hash {
	switch mech {
	case SCRAMSHA1:
		return sha1.New
	case SCRAMSHA256:
		return sha256.New
	}
	return nil
}

// saltedPassword is Hi() of RFC 5802 §2.2, which is PBKDF2 (RFC 8018)
// with HMAC of the mechanism's hash and one block of output.
func saltedPassword(h func() hash.Hash, password string, salt []byte, iterations int) ([]byte, error) {
	b, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return nil, fmt.Errorf("sasl: SCRAM: %w", err)
	}
	return b, nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// proof computes the client proof and the server signature of RFC 5802
// §3 for an AuthMessage.
func proof(h func() hash.Hash, salted []byte, authMessage string) (clientProof, serverSignature []byte) {
	clientKey := hmacSum(h, salted, "Client Key")
	sk := h()
	sk.Write(clientKey)
	clientSig := hmacSum(h, sk.Sum(nil), authMessage)
	clientProof = make([]byte, len(clientKey))
	subtle.XORBytes(clientProof, clientKey, clientSig)
	return clientProof, hmacSum(h, hmacSum(h, salted, "Server Key"), authMessage)
}

// nonce reads a nonce from r (crypto/rand when nil): up to 32 bytes, each
// becoming a printable character other than "," (RFC 5802 §7, printable);
// a printable byte stays itself. A reader that ends after 16 bytes or more
// gives a shorter nonce.
func nonce(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var buf [32]byte
	n, err := io.ReadFull(r, buf[:])
	if err != nil && (!errors.Is(err, io.ErrUnexpectedEOF) || n < 16) {
		return "", fmt.Errorf("sasl: SCRAM nonce: %w", err)
	}
	const alphabet = "!\"#$%&'()*+-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	for i, c := range buf[:n] {
		if c <= ' ' || c > '~' || c == ',' {
			buf[i] = alphabet[int(c)%len(alphabet)]
		}
	}
	return string(buf[:n]), nil
}

// escapeName writes a saslname (RFC 5802 §5.1): "=" as "=3D", "," as
// "=2C".
func escapeName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// attrs splits a SCRAM message into its attributes, each a letter, "="
// and a value (RFC 5802 §7), checking that the first ones are named as
// want says, in order.
func attrs(msg string, want ...byte) ([]string, error) {
	parts := strings.Split(msg, ",")
	if len(parts) < len(want) {
		return nil, fmt.Errorf("%w: SCRAM message has %d attributes, want %d", ErrSyntax, len(parts), len(want))
	}
	for i, p := range parts {
		if len(p) < 2 || p[1] != '=' || !('a' <= p[0] && p[0] <= 'z' || 'A' <= p[0] && p[0] <= 'Z') {
			return nil, fmt.Errorf("%w: SCRAM attribute %d is not a letter and \"=\"", ErrSyntax, i+1)
		}
		if i < len(want) && p[0] != want[i] {
			if p[0] == 'm' {
				return nil, fmt.Errorf("%w: SCRAM extension m= is not supported", ErrSyntax)
			}
			return nil, fmt.Errorf("%w: SCRAM attribute %d is %c=, want %c=", ErrSyntax, i+1, p[0], want[i])
		}
		parts[i] = p[2:]
	}
	return parts, nil
}

func printableNonce(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7E || c == ',' {
			return false
		}
	}
	return s != ""
}

// The steps of the SCRAM client.
const (
	scramStart = iota
	scramFirstSent
	scramFinalSent
	scramDone
)

// scramClient is the client of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 §5,
// RFC 7677), without channel binding: the GS2 header is "n,," (or
// "n,a=identity,"), which tells the server that the client does not
// support it. Binding to the TLS channel (the -PLUS mechanisms) is not
// implemented.
type scramClient struct {
	mech string
	h    func() hash.Hash
	cred Credentials
	step int

	gs2, firstBare, nonce string
	password              string
	serverSignature       []byte
}

func newSCRAMClient(mech string, cred Credentials) *scramClient {
	return &scramClient{mech: mech, h: scramHash(mech), cred: cred}
}

func (c *scramClient) Start() (string, []byte, error) {
	if c.step != scramStart {
		return "", nil, fmt.Errorf("%w: SCRAM exchange already started", ErrUnexpected)
	}
	user, err := SASLprep(c.cred.Username, false)
	if err != nil || user == "" {
		return "", nil, fmt.Errorf("sasl: SCRAM user name: %w", errPrep)
	}
	c.password, err = SASLprep(c.cred.Password, false)
	if err != nil {
		return "", nil, fmt.Errorf("sasl: SCRAM password: %w", err)
	}
	c.nonce, err = nonce(c.cred.Rand)
	if err != nil {
		return "", nil, err
	}
	c.gs2 = "n,,"
	if c.cred.Identity != "" {
		id, err := SASLprep(c.cred.Identity, false)
		if err != nil {
			return "", nil, fmt.Errorf("sasl: SCRAM authorization identity: %w", err)
		}
		c.gs2 = "n,a=" + escapeName(id) + ","
	}
	c.firstBare = "n=" + escapeName(user) + ",r=" + c.nonce
	c.step = scramFirstSent
	return c.mech, []byte(c.gs2 + c.firstBare), nil
}

func (c *scramClient) Next(challenge []byte) ([]byte, error) {
	switch c.step {
	case scramFirstSent:
		return c.final(string(challenge))
	case scramFinalSent:
		return c.verify(string(challenge))
	}
	return nil, fmt.Errorf("%w: SCRAM exchange is over", ErrUnexpected)
}

// final reads the server-first-message and writes the
// client-final-message (RFC 5802 §5.1, §7).
func (c *scramClient) final(serverFirst string) ([]byte, error) {
	a, err := attrs(serverFirst, 'r', 's', 'i')
	if err != nil {
		return nil, err
	}
	combined, salt64, iter := a[0], a[1], a[2]
	if !strings.HasPrefix(combined, c.nonce) || len(combined) == len(c.nonce) || !printableNonce(combined) {
		return nil, fmt.Errorf("%w: SCRAM server nonce does not extend the client's", ErrAuthFailed)
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, fmt.Errorf("%w: SCRAM salt is not base64", ErrSyntax)
	}
	i, err := strconv.Atoi(iter)
	if err != nil || iter[0] == '+' || iter[0] == '-' || iter[0] == '0' {
		return nil, fmt.Errorf("%w: SCRAM iteration count %q", ErrSyntax, iter)
	}
	if i < MinIterations || i > MaxIterations {
		return nil, fmt.Errorf("%w: SCRAM iteration count %d is not between %d and %d (RFC 7677 §3)", ErrAuthFailed, i, MinIterations, MaxIterations)
	}
	salted, err := saltedPassword(c.h, c.password, salt, i)
	if err != nil {
		return nil, err
	}
	without := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2)) + ",r=" + combined
	p, sig := proof(c.h, salted, c.firstBare+","+serverFirst+","+without)
	c.serverSignature = sig
	c.step = scramFinalSent
	return []byte(without + ",p=" + base64.StdEncoding.EncodeToString(p)), nil
}

// verify reads the server-final-message: the server's signature, or an
// error (RFC 5802 §7 server-error).
func (c *scramClient) verify(serverFinal string) ([]byte, error) {
	if v, ok := strings.CutPrefix(serverFinal, "e="); ok {
		v, _, _ = strings.Cut(v, ",")
		return nil, fmt.Errorf("%w: SCRAM server says %q", ErrAuthFailed, v)
	}
	a, err := attrs(serverFinal, 'v')
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(a[0])
	if err != nil {
		return nil, fmt.Errorf("%w: SCRAM server signature is not base64", ErrSyntax)
	}
	if !hmac.Equal(sig, c.serverSignature) {
		return nil, fmt.Errorf("%w: SCRAM server signature is wrong", ErrAuthFailed)
	}
	c.step = scramDone
	return []byte{}, nil
}

func (c *scramClient) String() string   { return "sasl.Client{" + c.mech + " " + c.cred.String() + "}" }
func (c *scramClient) GoString() string { return c.String() }
