package srs

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding"
	"hash"
	"time"
)

// The hash is HMAC-SHA1 (RFC 2104) over the ASCII-lowercased fields,
// concatenated without separators (libsrs2 srs_hash_create_v). The SHA-1
// states after the inner and outer key blocks are computed once per secret
// (New); each hash then resumes from them, so it costs two SHA-1 blocks for
// a short address and no allocation (the scratch hashers are pooled).

const sha1Block = 64

type hmacKey struct {
	inner, outer []byte // marshalled SHA-1 states after ipad / opad
}

func newHMACKey(secret string) hmacKey {
	key := []byte(secret)
	if len(key) > sha1Block {
		s := sha1.Sum(key)
		key = s[:]
	}
	var ipad, opad [sha1Block]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	return hmacKey{inner: sha1State(ipad[:]), outer: sha1State(opad[:])}
}

func sha1State(block []byte) []byte {
	h := sha1.New()
	h.Write(block)
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("srs: crypto/sha1 state cannot be marshalled: " + err.Error()) // cannot happen
	}
	return st
}

// hasher is pooled scratch space for one HMAC computation.
type hasher struct {
	h   hash.Hash
	u   encoding.BinaryUnmarshaler
	buf [2 * maxAddrLen]byte
	sum [sha1.Size]byte
}

func newHasher() any {
	h := sha1.New()
	return &hasher{h: h, u: h.(encoding.BinaryUnmarshaler)}
}

// sum returns HMAC-SHA1(key, lc(a) || lc(b) || lc(c)).
func (r *Rewriter) sum(k *hmacKey, a, b, c string) [sha1.Size]byte {
	hs := r.hashers.Get().(*hasher)
	if err := hs.u.UnmarshalBinary(k.inner); err != nil {
		panic("srs: crypto/sha1 state cannot be restored: " + err.Error()) // cannot happen
	}
	for _, f := range [3]string{a, b, c} {
		for len(f) > 0 {
			n := lowerCopy(hs.buf[:], f)
			hs.h.Write(hs.buf[:n])
			f = f[n:]
		}
	}
	inner := hs.h.Sum(hs.sum[:0])
	if err := hs.u.UnmarshalBinary(k.outer); err != nil {
		panic("srs: crypto/sha1 state cannot be restored: " + err.Error()) // cannot happen
	}
	hs.h.Write(inner)
	d := [sha1.Size]byte(hs.h.Sum(hs.sum[:0]))
	r.hashers.Put(hs)
	return d
}

// lowerCopy copies as much of s as fits into dst, mapping ASCII upper case
// to lower case only (C isupper/tolower in the "C" locale).
func lowerCopy(dst []byte, s string) int {
	n := copy(dst, s)
	for i, c := range dst[:n] {
		dst[i] = asciiLower[c]
	}
	return n
}

var asciiLower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c + 'a' - 'A')
	}
	return t
}()

var (
	base64StdChars = [64]byte([]byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
	base64URLChars = [64]byte([]byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
)

// maxHashLen is the longest hash: 26 characters cover 156 of SHA-1's 160 bits.
const maxHashLen = 26

// encodeHash writes the first n base64 characters of digest to dst; this is
// the prefix of the RFC 4648 encoding of digest.
func encodeHash(dst []byte, digest *[sha1.Size]byte, n int, enc *[64]byte) {
	for i := 0; i < n; i++ {
		bit := i * 6
		byteIdx, shift := bit/8, bit%8
		v := uint(digest[byteIdx]) << 8
		if byteIdx+1 < sha1.Size {
			v |= uint(digest[byteIdx+1])
		}
		dst[i] = enc[(v>>(10-shift))&0x3f]
	}
}

// hashFold maps a hash character to its equivalence class: ASCII case is
// ignored, '-' equals '+' and '_' equals '/' (postsrsd 2.x
// base64_equivalent). A table lookup keeps the comparison free of
// data-dependent branches.
var hashFold = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c + 'a' - 'A')
	}
	t['-'] = '+'
	t['_'] = '/'
	return t
}()

// hashStatus is the outcome of checkHash.
type hashStatus int

const (
	hashOK hashStatus = iota
	hashShort
	hashBad
)

// checkHash verifies given against every secret (libsrs2 srs_hash_check):
// shorter than HashMin is an error, longer than HashLength is truncated, and
// the comparison is constant-time over the folded characters.
func (r *Rewriter) checkHash(given, a, b, c string) hashStatus {
	if len(given) < r.hashMin {
		return hashShort
	}
	if len(given) > r.hashLen {
		given = given[:r.hashLen]
	}
	var g, want [maxHashLen]byte
	n := len(given)
	for i := 0; i < n; i++ {
		g[i] = hashFold[given[i]]
	}
	for i := range r.keys {
		d := r.sum(&r.keys[i], a, b, c)
		encodeHash(want[:], &d, n, &base64StdChars)
		for j := 0; j < n; j++ {
			want[j] = hashFold[want[j]]
		}
		if subtle.ConstantTimeCompare(g[:n], want[:n]) == 1 {
			return hashOK
		}
	}
	return hashBad
}

// Timestamps: the day number since the Unix epoch, modulo 1024, as two RFC
// 4648 base32 characters (libsrs2 srs_timestamp_create, SRS_TIME_PRECISION
// 86400, SRS_TIME_BASEBITS 5, SRS_TIME_SIZE 2).
const (
	base32Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	timeSlots   = 1024
)

func dayNumber(t time.Time) int64 {
	d := t.Unix() / 86400
	if t.Unix() < 0 && t.Unix()%86400 != 0 {
		d--
	}
	return d
}

func makeStamp(t time.Time) [2]byte {
	d := dayNumber(t)
	return [2]byte{base32Chars[(d>>5)&31], base32Chars[d&31]}
}

func base32Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c - 'a')
	case '2' <= c && c <= '7':
		return int(c-'2') + 26
	}
	return -1
}

// checkStamp returns nil, ErrSyntax or ErrExpired with a reason (libsrs2
// srs_timestamp_check): a stamp is valid if today is at most maxAge days
// after it, counting modulo 1024 days, so a stamp "in the future" is about
// 1000 days old.
func (r *Rewriter) checkStamp(stamp string) (string, error) {
	if len(stamp) != 2 {
		return "timestamp is not 2 characters", ErrSyntax
	}
	hi, lo := base32Value(stamp[0]), base32Value(stamp[1])
	if hi < 0 || lo < 0 {
		return "bad base32 character in timestamp", ErrSyntax
	}
	then := int64(hi<<5 | lo)
	now := dayNumber(r.now()) % timeSlots
	if now < 0 {
		now += timeSlots
	}
	for now < then {
		now += timeSlots
	}
	if now <= then+int64(r.maxAge) {
		return "", nil
	}
	return "timestamp out of date", ErrExpired
}
