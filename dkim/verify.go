package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// LengthPolicy says how Verify treats an l= tag that leaves part of the
// body unsigned (RFC 6376 §8.2: anyone may append content after it).
type LengthPolicy int

const (
	// LengthRefuse, the default, gives Policy to a signature whose
	// l= covers less than the whole body, even when it verifies: the
	// unsigned tail could say anything. An l= that covers the whole body
	// is fine.
	LengthRefuse LengthPolicy = iota
	// LengthAllow passes such a signature; Result.BodyLength and
	// Result.BodySize tell the caller how much was signed.
	LengthAllow
)

// DefaultMaxSignatures is the default number of signatures verified.
const DefaultMaxSignatures = 5

// VerifyOptions holds the optional settings of a Verifier. nil means every
// default.
type VerifyOptions struct {
	// MaxSignatures is how many DKIM-Signature fields, from the top, are
	// verified; later ones get Policy without a DNS query
	// (RFC 6376 §6.1: verifiers may limit their work). Default 5.
	MaxSignatures int
	// MaxHeaderBytes caps the header block. Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MinRSABits is the smallest RSA key accepted. Keys under 1024 bits
	// are always a permerror (RFC 8301 §3.2); a larger minimum set here
	// gives Policy for keys between 1024 and it. Default 1024.
	MinRSABits int
	// AllowSHA1 verifies rsa-sha1 signatures and reports their real
	// outcome, for forensics. Default false: rsa-sha1 is a permerror
	// (RFC 8301 §3.1: verifiers must not consider it valid).
	AllowSHA1 bool
	// BodyLength is the l= policy. Default LengthRefuse.
	BodyLength LengthPolicy
	// Now is the clock for x= expiry. Default time.Now.
	Now func() time.Time
	// Logger gets one debug record per signature. Default: none.
	Logger *slog.Logger
}

// Result is the outcome of one signature. Status is always set; Err is nil
// exactly when Status is pass, and explains every other status.
type Result struct {
	Status Status
	Err    error

	Domain     string   // d=
	Selector   string   // s=
	Identifier string   // i=, or "@" + d= when absent
	Algorithm  string   // a=
	HeaderKeys []string // h=
	// Signature is the b= value without white space; its first octets
	// make header.b (RFC 6008).
	Signature string
	// Time and Expiration are t= and x=, zero when absent.
	Time, Expiration time.Time
	// BodyLength is l=, -1 when absent. BodySize is the length of the
	// canonical body, known when the body was hashed.
	BodyLength, BodySize int64
	// Testing is set when the key record has t=y (RFC 6376 §3.6.1).
	Testing bool
}

// Verifier verifies messages (RFC 6376 §6) with one resolver and one set
// of options. It is safe for concurrent use; each message gets its own
// VerifyingWriter, or is read by Verify.
type Verifier struct {
	r Resolver
	o VerifyOptions
}

// NewVerifier returns a Verifier that looks up keys with r. opts may be nil.
func NewVerifier(r Resolver, opts *VerifyOptions) (*Verifier, error) {
	if r == nil {
		return nil, errors.New("dkim: nil Resolver")
	}
	v := &Verifier{r: r}
	if opts != nil {
		v.o = *opts
	}
	if v.o.MaxSignatures < 0 || v.o.MaxHeaderBytes < 0 || v.o.MinRSABits < 0 {
		return nil, errors.New("dkim: negative limit in VerifyOptions")
	}
	if v.o.MaxSignatures == 0 {
		v.o.MaxSignatures = DefaultMaxSignatures
	}
	if v.o.MaxHeaderBytes == 0 {
		v.o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if v.o.MinRSABits < MinRSABits {
		v.o.MinRSABits = MinRSABits
	}
	if v.o.Now == nil {
		v.o.Now = time.Now
	}
	return v, nil
}

// Verify reads a message and verifies each of its DKIM-Signature fields
// with net.DefaultResolver and the default options; see Verifier.Verify.
func Verify(ctx context.Context, msg io.Reader) (Results, error) {
	v, _ := NewVerifier(net.DefaultResolver, nil)
	return v.Verify(ctx, msg)
}

// Verify reads a message and verifies each of its DKIM-Signature fields
// (RFC 6376 §6), giving one Result per field in header order. The error
// is for a message that cannot be read: an I/O error, a header block over
// the limit, a malformed header field. A message without signatures gives
// no results and no error.
func (v *Verifier) Verify(ctx context.Context, msg io.Reader) (Results, error) {
	w := v.NewWriter(ctx)
	if _, err := copyCtx(ctx, w, msg); err != nil {
		return nil, err // the lookups under way end with ctx or by themselves
	}
	return w.Results()
}

// VerifyingWriter verifies one message written to it: write the message,
// then call Results. It keeps the header block and hashes the body as it
// comes; Header gives the header fields it parsed, for DMARC (RFC 7489
// §6.6.1 needs the From field).
//
// As soon as the header block is complete, each signature's key is looked
// up and the signature over the header fields is checked on a goroutine of
// its own, so that DNS latency and the public-key operation overlap the
// body. A large body is hashed on another goroutine while it is
// canonicalized. Results waits for all of them; a VerifyingWriter that is
// dropped without Results leaves them to end by themselves.
type VerifyingWriter struct {
	ctx    context.Context
	r      Resolver
	o      *VerifyOptions
	hdr    headerCollector
	err    error
	sigs   []*sigState
	canons []*bodyCanon
	fields []field
	picker *headerPicker
	ended  bool
}

type sigState struct {
	res      Result
	final    bool // res.Status is decided
	hc, bc   Canonicalization
	hashAlg  crypto.Hash
	bh, b    []byte
	body     *bodyHash
	unsigned string // the field with the b= value removed, no final CRLF

	keyDone chan struct{} // closed when key is set
	key     keyOutcome
}

// keyOutcome is what the key record and the header fields decide about a
// signature, before its body hash is known.
type keyOutcome struct {
	status  Status // set when the key alone decides
	err     error
	testing bool // the key has t=y
	sigOK   bool // b= verifies over the header fields
}

// NewWriter returns a VerifyingWriter for one message. ctx bounds its key
// lookups.
func (v *Verifier) NewWriter(ctx context.Context) *VerifyingWriter {
	w := &VerifyingWriter{ctx: ctx, r: v.r, o: &v.o}
	w.hdr.max = v.o.MaxHeaderBytes
	return w
}

// Write takes the next bytes of the message.
func (v *VerifyingWriter) Write(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.ended {
		return 0, errors.New("dkim: write after Results")
	}
	n := len(p)
	if !v.hdr.done {
		k, err := v.hdr.feed(p)
		if err != nil {
			v.err = err
			return 0, err
		}
		p = p[k:]
		if v.hdr.done {
			if err := v.startBody(); err != nil {
				v.err = err
				return 0, err
			}
		}
	}
	if len(p) > 0 {
		for _, c := range v.canons {
			c.Write(p)
		}
	}
	return n, nil
}

// startBody parses the header and sets up one hash per distinct
// (canonicalization, hash, l=) of the signatures.
func (v *VerifyingWriter) startBody() error {
	fields, err := parseHeader(v.hdr.buf)
	if err != nil {
		return err
	}
	v.fields = fields
	type canonKey struct {
		c Canonicalization
		h crypto.Hash
	}
	type hashKey struct {
		canonKey
		limit int64
	}
	canons := map[canonKey]*bodyCanon{}
	hashes := map[hashKey]*bodyHash{}
	now := v.o.Now()
	for _, f := range fields {
		if f.lname != "dkim-signature" {
			continue
		}
		s := v.parseSignature(f, now)
		v.sigs = append(v.sigs, s)
		if len(v.sigs) > v.o.MaxSignatures && !s.final {
			s.final = true
			s.res.Status = Policy
			s.res.Err = fmt.Errorf("dkim: not verified: more than %d signatures", v.o.MaxSignatures)
		}
		if s.final {
			continue
		}
		ck := canonKey{s.bc, s.hashAlg}
		c := canons[ck]
		if c == nil {
			c = &bodyCanon{relaxed: s.bc == Relaxed}
			canons[ck] = c
			v.canons = append(v.canons, c)
		}
		hk := hashKey{ck, s.res.BodyLength}
		bh := hashes[hk]
		if bh == nil {
			bh = &bodyHash{h: newHash(s.hashAlg), limit: s.res.BodyLength}
			hashes[hk] = bh
			c.dst = append(c.dst, bh)
		}
		s.body = bh
	}
	v.picker = newHeaderPicker(fields)
	for _, s := range v.sigs {
		if !s.final {
			s.keyDone = make(chan struct{})
			go func() {
				defer close(s.keyDone)
				s.key = v.checkKey(v.ctx, s)
			}()
		}
	}
	return nil
}

func newHash(h crypto.Hash) hash.Hash {
	if h == crypto.SHA1 {
		return sha1.New()
	}
	return sha256.New()
}

// failErr ends a signature with a status and an error.
func (s *sigState) failErr(st Status, err error) *sigState {
	s.final = true
	s.res.Status = st
	s.res.Err = err
	return s
}

// wrapped is an error with its own text that still matches its cause with
// errors.Is.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// wrap prefixes an error of this package with context, keeping one
// "dkim: " at the front.
func wrap(prefix string, err error) error {
	return &wrapped{msg: "dkim: " + prefix + strings.TrimPrefix(err.Error(), "dkim: "), err: err}
}

// fail ends a signature with a status and a formatted reason.
func (s *sigState) fail(st Status, format string, args ...any) *sigState {
	return s.failErr(st, errf(format, args...))
}

// parseSignature checks a DKIM-Signature field (RFC 6376 §3.5, §6.1.1).
// Each helper checks one part of it, in this order; the first problem
// ends the signature with permerror.
func (v *VerifyingWriter) parseSignature(f field, now time.Time) *sigState {
	s := &sigState{res: Result{BodyLength: -1, BodySize: -1}}
	tags, err := parseTagList(f.raw[f.colon+1 : len(f.raw)-2])
	if err != nil {
		return s.failErr(PermError, wrap("signature: ", err))
	}
	s.res.Domain = strings.TrimSuffix(tagValue(tags, "d"), ".")
	s.res.Selector = tagValue(tags, "s")
	s.res.Algorithm = strings.ToLower(tagValue(tags, "a"))
	s.res.Signature = stripFWS(tagValue(tags, "b"))
	if err := checkRequired(tags); err != nil {
		return s.failErr(PermError, err)
	}
	if err := s.parseIdentity(tags); err != nil {
		return s.failErr(PermError, err)
	}
	s.unsigned = withoutB(f, tags)
	if err := s.parseCoverage(tags); err != nil {
		return s.failErr(PermError, err)
	}
	if err := s.parseLimits(tags); err != nil {
		return s.failErr(PermError, err)
	}
	if err := s.parseSignatureValue(tags, v.o.AllowSHA1); err != nil {
		return s.failErr(PermError, err)
	}
	if err := s.checkExpiry(now); err != nil {
		return s.failErr(PermError, err)
	}
	return s
}

// errf is an error of this package with a formatted text.
func errf(format string, args ...any) error {
	return fmt.Errorf("dkim: "+format, args...)
}

// tagValue is the value of the tag name, "" when there is none.
func tagValue(tags []tag, name string) string {
	v, _ := lookupTag(tags, name)
	return v
}

// checkRequired checks that the tags RFC 6376 §3.5 requires are present,
// and that v= is 1.
func checkRequired(tags []tag) error {
	for _, n := range []string{"v", "a", "b", "bh", "d", "h", "s"} {
		if _, ok := lookupTag(tags, n); !ok {
			return errf("signature has no %s= tag", n)
		}
	}
	if v := tagValue(tags, "v"); v != "1" {
		return errf("signature v=%q is not 1", clip(v))
	}
	return nil
}

// parseIdentity checks who signs: d= and s= are names, and i=, when
// present, is within d= (RFC 6376 §3.5); without i= the identity is
// "@" and d=.
func (s *sigState) parseIdentity(tags []tag) error {
	if err := checkDomain(s.res.Domain); err != nil {
		return wrap("signature d=: ", err)
	}
	if err := checkSelector(s.res.Selector); err != nil {
		return wrap("signature s=: ", err)
	}
	s.res.Identifier = "@" + s.res.Domain
	if i, ok := lookupTag(tags, "i"); ok {
		if err := checkIdentifier(i, s.res.Domain, false); err != nil {
			return wrap("signature i=: ", err)
		}
		s.res.Identifier = i
	}
	return nil
}

// withoutB is the field without its final CRLF and with the value of b=
// removed, as the signature covers it (RFC 6376 §3.7).
func withoutB(f field, tags []tag) string {
	var out string
	for _, t := range tags {
		if t.name == "b" {
			out = f.raw[:f.colon+1+t.start] + f.raw[f.colon+1+t.end:len(f.raw)-2]
		}
	}
	return out
}

// parseCoverage reads what the signature covers and how: the header
// fields of h=, which must include From (RFC 6376 §6.1.1), the
// canonicalization of c=, and the query methods of q=, which must include
// dns/txt (§3.5).
func (s *sigState) parseCoverage(tags []tag) error {
	s.res.HeaderKeys = splitColonList(tagValue(tags, "h"))
	from := false
	for _, h := range s.res.HeaderKeys {
		if h == "" || strings.ContainsAny(h, " \t\r\n") {
			return errf("signature h= has an empty or bad name")
		}
		from = from || strings.EqualFold(h, "from")
	}
	if !from {
		return errf("From is not signed (RFC 6376 §6.1.1)")
	}
	var err error
	if s.hc, s.bc, err = ParseCanonicalization(tagValue(tags, "c")); err != nil {
		return wrap("signature c=: ", err)
	}
	if q, ok := lookupTag(tags, "q"); ok {
		dnsTXT := false
		for _, m := range splitColonList(q) {
			dnsTXT = dnsTXT || strings.EqualFold(m, "dns/txt")
		}
		if !dnsTXT {
			return errf("signature q=%q has no dns/txt", clip(q))
		}
	}
	return nil
}

// parseLimits reads the times t= and x= and the body length l=
// (RFC 6376 §3.5).
func (s *sigState) parseLimits(tags []tag) error {
	var err error
	if s.res.Time, err = unixTag(tags, "t"); err != nil {
		return errf("%v", err)
	}
	if s.res.Expiration, err = unixTag(tags, "x"); err != nil {
		return errf("%v", err)
	}
	if l, ok := lookupTag(tags, "l"); ok {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 || l[0] == '+' {
			return errf("signature l=%q is not a length", clip(l))
		}
		s.res.BodyLength = n
	}
	return nil
}

// parseSignatureValue decodes b= and bh= and picks the hash of a=:
// SHA-256, or SHA-1 only when allowed (RFC 8301 §3.1).
func (s *sigState) parseSignatureValue(tags []tag, allowSHA1 bool) error {
	if s.res.Signature == "" {
		return errf("signature b= is empty")
	}
	var err error
	if s.b, err = base64.StdEncoding.DecodeString(s.res.Signature); err != nil {
		return errf("signature b= is not base64")
	}
	if s.bh, err = base64.StdEncoding.DecodeString(stripFWS(tagValue(tags, "bh"))); err != nil {
		return errf("signature bh= is not base64")
	}
	switch s.res.Algorithm {
	case "rsa-sha256", "ed25519-sha256":
		s.hashAlg = crypto.SHA256
	case "rsa-sha1":
		if !allowSHA1 {
			return errf("rsa-sha1 is not acceptable (RFC 8301 §3.1)")
		}
		s.hashAlg = crypto.SHA1
	default:
		return errf("unknown algorithm a=%q", clip(s.res.Algorithm))
	}
	return nil
}

// checkExpiry checks that x= is not before t= and has not passed
// (RFC 6376 §3.5).
func (s *sigState) checkExpiry(now time.Time) error {
	if s.res.Expiration.IsZero() {
		return nil
	}
	if !s.res.Time.IsZero() && s.res.Expiration.Before(s.res.Time) {
		return errf("signature x= is before t=")
	}
	if now.After(s.res.Expiration) {
		return errf("signature expired at %s", s.res.Expiration.UTC().Format(time.RFC3339))
	}
	return nil
}

func unixTag(tags []tag, name string) (time.Time, error) {
	v, ok := lookupTag(tags, name)
	if !ok {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || v[0] == '+' || len(v) > 12 {
		return time.Time{}, fmt.Errorf("signature %s=%q is not a time", name, clip(v))
	}
	return time.Unix(n, 0), nil
}

// Results ends the message and returns one Result per signature, once the
// key lookups have ended.
func (v *VerifyingWriter) Results() (Results, error) {
	if !v.ended {
		v.ended = true
		if v.err == nil && !v.hdr.done {
			v.hdr.done = true
			if err := v.startBody(); err != nil {
				v.err = err
			}
		}
		for _, c := range v.canons {
			c.finish()
		}
		for _, c := range v.canons {
			c.wait()
		}
		for _, s := range v.sigs {
			if s.keyDone != nil {
				<-s.keyDone
			}
		}
		for _, s := range v.sigs {
			if v.err != nil {
				break
			}
			if !s.final {
				v.check(s)
			}
			if l := v.o.Logger; l != nil {
				l.LogAttrs(v.ctx, slog.LevelDebug, "dkim verify",
					slog.String("d", s.res.Domain), slog.String("s", s.res.Selector),
					slog.String("result", string(s.res.Status)), slog.Any("err", s.res.Err))
			}
		}
	}
	if v.err != nil {
		return nil, v.err
	}
	out := make(Results, len(v.sigs))
	for i, s := range v.sigs {
		out[i] = &s.res
	}
	return out, nil
}

// Header returns the fields of the message's header block, as parsed:
// unfolded values keyed by canonical name (textproto.CanonicalMIMEHeaderKey),
// in the order of the message for each name. It is nil until the header
// block has ended (the first blank line, or Results).
func (v *VerifyingWriter) Header() mail.Header {
	if !v.hdr.done {
		return nil
	}
	h := make(mail.Header, len(v.fields))
	for _, f := range v.fields {
		name := textproto.CanonicalMIMEHeaderKey(strings.TrimRight(f.raw[:f.colon], " \t"))
		val := strings.ReplaceAll(f.raw[f.colon+1:len(f.raw)-2], "\r\n", "")
		h[name] = append(h[name], strings.Trim(val, " \t"))
	}
	return h
}

// checkKey decides what the key record and the header fields can decide
// about a signature (RFC 6376 §6.1.2, and the header part of §6.1.3).
// It runs on its own goroutine: it reads s and v but writes neither.
func (v *VerifyingWriter) checkKey(ctx context.Context, s *sigState) (o keyOutcome) {
	key, st, err := v.lookupKey(ctx, s.res.Selector, s.res.Domain)
	if err != nil {
		o.status, o.err = st, err
		return o
	}
	o.testing = key.Testing()
	decide := func(st Status, format string, args ...any) keyOutcome {
		o.status, o.err = verdict(st, o.testing, format, args...)
		return o
	}
	if key.Revoked {
		return decide(Fail, "key %s is revoked (empty p=)", RecordName(s.res.Selector, s.res.Domain))
	}
	keyAlg, hashName, _ := strings.Cut(s.res.Algorithm, "-")
	if keyAlg != key.KeyType {
		return decide(PermError, "key type k=%s does not match a=%s", key.KeyType, s.res.Algorithm)
	}
	if !key.allowsHash(hashName) {
		return decide(Fail, "key h=%s does not allow %s (RFC 6376 §6.1.2)", strings.Join(key.HashAlgorithms, ":"), hashName)
	}
	if key.Strict() {
		if err := checkIdentifier(s.res.Identifier, s.res.Domain, true); err != nil {
			o.status, o.err = PermError, err
			return o
		}
	}
	if rk, ok := key.PublicKey.(*rsa.PublicKey); ok {
		if n := rk.N.BitLen(); n < MinRSABits {
			return decide(PermError, "RSA key of %d bits, under %d (RFC 8301 §3.2)", n, MinRSABits)
		} else if n < v.o.MinRSABits {
			return decide(Policy, "RSA key of %d bits, under the local minimum of %d", n, v.o.MinRSABits)
		}
	}
	h := newHash(s.hashAlg)
	var buf []byte
	for _, f := range v.picker.pick(s.res.HeaderKeys) {
		buf = canonHeader(buf[:0], f, s.hc)
		h.Write(buf)
	}
	self := field{raw: s.unsigned + crlf, lname: "dkim-signature", colon: strings.IndexByte(s.unsigned, ':')}
	buf = canonHeader(buf[:0], self, s.hc)
	h.Write(buf[:len(buf)-2])
	digest := h.Sum(nil)
	switch k := key.PublicKey.(type) {
	case *rsa.PublicKey:
		o.sigOK = rsa.VerifyPKCS1v15(k, s.hashAlg, digest, s.b) == nil
	case ed25519.PublicKey:
		o.sigOK = ed25519.Verify(k, digest, s.b)
	}
	return o
}

// verdict is the status and reason of a decision; a fail under a key in
// testing mode (t=y) is neutral instead (RFC 6376 §3.6.1).
func verdict(st Status, testing bool, format string, args ...any) (Status, error) {
	if st == Fail && testing {
		st = Neutral
		format += " (key in testing mode, t=y)"
	}
	return st, fmt.Errorf("dkim: "+format, args...)
}

// check finishes one signature once its key outcome and its body hash are
// known (RFC 6376 §6.1.3). A key that decides alone comes first, then the
// body hash, then the signature, as §6.1 orders them.
func (v *VerifyingWriter) check(s *sigState) {
	s.res.BodySize = s.body.n
	s.res.Testing = s.key.testing
	if s.key.err != nil {
		s.failErr(s.key.status, s.key.err)
		return
	}
	failed := func(format string, args ...any) {
		s.failErr(verdict(Fail, s.res.Testing, format, args...))
	}
	if s.res.BodyLength > s.body.n {
		failed("body is shorter (%d octets) than l=%d", s.body.n, s.res.BodyLength)
		return
	}
	if !bytes.Equal(s.body.h.Sum(nil), s.bh) {
		failed("body hash did not verify")
		return
	}
	if !s.key.sigOK {
		failed("signature did not verify")
		return
	}
	if s.res.BodyLength >= 0 && s.res.BodyLength < s.body.n && v.o.BodyLength == LengthRefuse {
		s.fail(Policy, "l=%d signs only part of the %d-octet body", s.res.BodyLength, s.body.n)
		return
	}
	s.final = true
	s.res.Status = Pass
	s.res.Err = nil
}

// lookupKey fetches and parses the key record (RFC 6376 §3.6.2, §6.1.2).
func (v *VerifyingWriter) lookupKey(ctx context.Context, sel, domain string) (*KeyRecord, Status, error) {
	name := RecordName(sel, domain)
	txts, err := v.r.LookupTXT(ctx, name)
	if err != nil {
		if dnsname.IsNotFound(err) {
			return nil, PermError, fmt.Errorf("%w for %s", ErrNoRecord, name)
		}
		return nil, TempError, fmt.Errorf("%w: key %s: %v", ErrDNS, name, err)
	}
	if len(txts) == 0 {
		return nil, PermError, fmt.Errorf("%w for %s", ErrNoRecord, name)
	}
	var first error
	for _, t := range txts {
		k, err := ParseKeyRecord(t)
		if err == nil {
			return k, "", nil
		}
		if first == nil {
			first = err
		}
	}
	if len(txts) > 1 {
		return nil, PermError, fmt.Errorf("%w at %s, none usable: %w", ErrMultipleRecords, name, first)
	}
	return nil, PermError, wrap("key "+name+": ", first)
}
