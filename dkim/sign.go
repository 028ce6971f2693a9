package dkim

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultHeaders returns the fields a Signer signs when SignOptions.Headers
// is nil (RFC 6376 §5.4.1 recommends the fields that carry the message's
// meaning). Each is oversigned: listed in h= once more than the message
// holds it, so no instance can be added after signing (RFC 6376 §8.15).
// List-* fields not named here are signed the same way when present.
func DefaultHeaders() []string { return slices.Clone(defaultHeaders) }

var defaultHeaders = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "List-Id", "List-Help", "List-Unsubscribe",
	"List-Unsubscribe-Post", "List-Subscribe", "List-Post", "List-Owner",
	"List-Archive",
}

// SignOptions holds the optional settings of a Signer. nil means every
// default.
type SignOptions struct {
	// Identifier is i= (RFC 6376 §3.5), an address or "@domain" at d= or
	// a subdomain of it. Default: no i= (verifiers take "@" + d=).
	Identifier string
	// HeaderCanonicalization and BodyCanonicalization make c=
	// (RFC 6376 §3.4). Default relaxed for both.
	HeaderCanonicalization, BodyCanonicalization Canonicalization
	// Headers is the h= list, used as given (a name listed n times signs n
	// instances). It must include From (RFC 6376 §5.4). Default nil:
	// DefaultHeaders(), oversigned.
	Headers []string
	// Expiration, when positive, adds x= = t= + Expiration (RFC 6376 §3.5).
	// Default 0: no x=.
	Expiration time.Duration
	// NoTimestamp leaves out t= (RFC 6376 §3.5, recommended). Default false.
	NoTimestamp bool
	// BodyLength adds l=, the length of the signed canonical body
	// (RFC 6376 §3.5). Default false: l= lets anyone append to the body,
	// so use it only when a forwarder is known to append footers.
	BodyLength bool
	// Now is the clock for t= and x=. Default time.Now.
	Now func() time.Time
	// Rand is the randomness handed to the key's Sign. Default crypto/rand.
	Rand io.Reader
	// Logger gets one debug record per signature made: d=, s=, a= and
	// the canonical body length; never the key. Default: none.
	Logger *slog.Logger
}

// Signer makes one DKIM-Signature. It is safe for concurrent use.
type Signer struct {
	domain, selector string
	key              crypto.Signer
	o                SignOptions
	alg              string // a=
	name             string // key record name, for messages
}

// NewSigner returns a Signer for d=domain and s=selector (RFC 6376 §3.5)
// that signs with key: an *rsa.PrivateKey of at least 1024 bits
// (rsa-sha256, RFC 8301) or an ed25519.PrivateKey (ed25519-sha256,
// RFC 8463), or any crypto.Signer whose Public() is one of those. opts may
// be nil. The errors name the argument at fault and never hold key
// material.
func NewSigner(domain, selector string, key crypto.Signer, opts *SignOptions) (*Signer, error) {
	s := &Signer{domain: strings.TrimSuffix(domain, "."), selector: selector, key: key}
	if opts != nil {
		s.o = *opts
	}
	if s.o.HeaderCanonicalization == "" {
		s.o.HeaderCanonicalization = Relaxed
	}
	if s.o.BodyCanonicalization == "" {
		s.o.BodyCanonicalization = Relaxed
	}
	for _, c := range []Canonicalization{s.o.HeaderCanonicalization, s.o.BodyCanonicalization} {
		if c != Simple && c != Relaxed {
			return nil, fmt.Errorf("%w: unknown canonicalization %q", ErrSyntax, c)
		}
	}
	if err := checkDomain(s.domain); err != nil {
		return nil, wrap("d=: ", err)
	}
	if err := checkSelector(s.selector); err != nil {
		return nil, wrap("s=: ", err)
	}
	if s.o.Identifier != "" {
		if err := checkIdentifier(s.o.Identifier, s.domain, false); err != nil {
			return nil, err
		}
	}
	if s.o.Headers != nil {
		from := false
		for _, h := range s.o.Headers {
			if h == "" || strings.ContainsAny(h, ": \t\r\n;") {
				return nil, fmt.Errorf("%w: bad header name %q in Headers", ErrSyntax, h)
			}
			from = from || strings.EqualFold(h, "From")
		}
		if !from {
			return nil, fmt.Errorf("%w: Headers must include From (RFC 6376 §5.4)", ErrSyntax)
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no key", ErrKey)
	}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < MinRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits, under %d (RFC 8301 §3.2)", ErrKey, n, MinRSABits)
		}
		s.alg = "rsa-sha256"
	case ed25519.PublicKey:
		s.alg = "ed25519-sha256"
	default:
		return nil, fmt.Errorf("%w: key of type %T", ErrKey, pub)
	}
	if s.o.Now == nil {
		s.o.Now = time.Now
	}
	if s.o.Rand == nil {
		s.o.Rand = rand.Reader
	}
	s.name = RecordName(s.selector, s.domain)
	return s, nil
}

// String describes the signer without its key.
func (s *Signer) String() string {
	return "dkim.Signer{d=" + s.domain + " s=" + s.selector + " a=" + s.alg + "}"
}

// GoString is String, so that %#v does not print the key either.
func (s *Signer) GoString() string { return s.String() }

// Algorithm returns the a= value: "rsa-sha256" or "ed25519-sha256".
func (s *Signer) Algorithm() string { return s.alg }

// Sign reads a message from r and writes it to w preceded by one
// DKIM-Signature field per signer, in the order given. The body is hashed
// once per distinct body canonicalization.
//
// The signatures come before the message, so the message is read twice.
// When r is an io.ReadSeeker (a file, a bytes.Reader) Sign rewinds it and
// holds only the header block. Otherwise it keeps what it reads: the first
// SpoolMemory bytes in memory, the rest in a temporary file of
// os.TempDir, removed before Sign returns. NewSigningWriter streams
// without either.
func Sign(ctx context.Context, w io.Writer, r io.Reader, signers ...*Signer) error {
	if len(signers) == 0 {
		return errors.New("dkim: no signers")
	}
	sw := NewSigningWriter(signers...)
	var start int64
	rs, seekable := r.(io.ReadSeeker)
	if seekable {
		var err error
		if start, err = rs.Seek(0, io.SeekCurrent); err != nil {
			seekable = false
		}
	}
	var kept spool
	defer kept.close()
	if seekable {
		if _, err := copyCtx(ctx, sw, r); err != nil {
			return err
		}
	} else {
		// Whole chunks, however little each Read gives (a reader that
		// makes line ends CRLF gives a line at a time): the spool file
		// and the canonicalizer then see one write per 64 KiB.
		kept.buf = make([]byte, spoolChunk)
		if err := copyFull(ctx, io.MultiWriter(sw, &kept), r, kept.buf); err != nil {
			return err
		}
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if _, err := io.WriteString(w, sw.Header()); err != nil {
		return err
	}
	if !seekable {
		return kept.writeTo(ctx, w)
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("dkim: rewind message: %w", err)
	}
	_, err := copyCtx(ctx, w, rs)
	return err
}

// SpoolMemory is how much of a message that cannot be rewound Sign keeps
// in memory before it moves it to a temporary file.
const SpoolMemory = 64 << 10

// spoolChunk is the size of the reads from a reader Sign cannot rewind,
// and so of the writes to the spool file, and of the copy back out: a
// pipe hands over up to 64 KiB at a time.
const spoolChunk = 64 << 10

// spool keeps the message Sign reads from a reader it cannot rewind.
type spool struct {
	mem  []byte
	file *os.File
	buf  []byte // the copy buffer, spoolChunk bytes
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && len(s.mem)+len(p) <= SpoolMemory {
		s.mem = append(s.mem, p...)
		return len(p), nil
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "dkim-sign-*")
		if err != nil {
			return 0, fmt.Errorf("dkim: spool the message: %w", err)
		}
		s.file = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, fmt.Errorf("dkim: spool the message: %w", err)
		}
		s.mem = nil
	}
	n, err := s.file.Write(p)
	if err != nil {
		err = fmt.Errorf("dkim: spool the message: %w", err)
	}
	return n, err
}

func (s *spool) writeTo(ctx context.Context, w io.Writer) error {
	if s.file == nil {
		_, err := w.Write(s.mem)
		return err
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("dkim: spool the message: %w", err)
	}
	// Hidden behind a plain io.Reader so that copyCtx does not hand the
	// copy to (*os.File).WriteTo, which would not look at ctx.
	_, err := copyBuf(ctx, w, struct{ io.Reader }{s.file}, s.buf)
	return err
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.file = nil
	}
}

// copyFull copies r to w in chunks of len(buf), filling each chunk before
// it is written, and checks ctx between chunks.
func copyFull(ctx context.Context, w io.Writer, r io.Reader, buf []byte) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

// copyCtx copies r to w, checking ctx between chunks. A reader that is
// an io.WriterTo (bytes.Reader, strings.Reader) writes itself without a
// copy buffer.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	return copyBuf(ctx, w, r, nil)
}

// copyBuf is copyCtx with the copy buffer given; nil means 16 KiB.
func copyBuf(ctx context.Context, w io.Writer, r io.Reader, buf []byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if wt, ok := r.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	if buf == nil {
		buf = make([]byte, 16<<10)
	}
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			m, werr := w.Write(buf[:k])
			n += int64(m)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
}

// SigningWriter signs a message written to it, header and body, with
// several signers in one pass. The header block (up to
// DefaultMaxHeaderBytes) is kept; the body is canonicalized and hashed as
// it arrives and never kept. After Close, Header gives the DKIM-Signature
// fields to put before the message.
type SigningWriter struct {
	signers []*Signer
	hdr     headerCollector
	canons  [2]*bodyCanon // by body canonicalization: simple, relaxed
	hashes  [2]*bodyHash
	err     error
	closed  bool
	sigs    []string
}

// NewSigningWriter returns a writer that signs with every signer.
func NewSigningWriter(signers ...*Signer) *SigningWriter {
	w := &SigningWriter{signers: signers, hdr: headerCollector{max: DefaultMaxHeaderBytes}}
	for _, s := range signers {
		i := 0
		if s.o.BodyCanonicalization == Relaxed {
			i = 1
		}
		if w.canons[i] == nil {
			w.hashes[i] = &bodyHash{h: sha256.New(), limit: -1}
			w.canons[i] = &bodyCanon{relaxed: i == 1, dst: []*bodyHash{w.hashes[i]}}
		}
	}
	return w
}

// Write takes the next bytes of the message.
func (w *SigningWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("dkim: write after Close")
	}
	n := len(p)
	if !w.hdr.done {
		k, err := w.hdr.feed(p)
		if err != nil {
			w.err = err
			return 0, err
		}
		p = p[k:]
	}
	if len(p) > 0 {
		for _, c := range w.canons {
			if c != nil {
				c.Write(p)
			}
		}
	}
	return n, nil
}

// Close ends the message and computes the signatures.
func (w *SigningWriter) Close() error {
	if w.closed || w.err != nil {
		return w.err
	}
	w.closed = true
	for _, c := range w.canons {
		if c != nil {
			c.finish()
		}
	}
	fields, err := parseHeader(w.hdr.buf) // while the body's last bytes are hashed
	for _, c := range w.canons {
		if c != nil {
			c.wait()
		}
	}
	if err != nil {
		w.err = err
		return err
	}
	picker := newHeaderPicker(fields)
	bh := [2]string{}
	for i, h := range w.hashes {
		if h != nil {
			bh[i] = base64.StdEncoding.EncodeToString(h.h.Sum(nil))
		}
	}
	for _, s := range w.signers {
		i := 0
		if s.o.BodyCanonicalization == Relaxed {
			i = 1
		}
		f, err := s.sign(picker, bh[i], w.hashes[i].n)
		if l := s.o.Logger; l != nil {
			attrs := []slog.Attr{slog.String("d", s.domain), slog.String("s", s.selector),
				slog.String("a", s.alg), slog.Int64("body", w.hashes[i].n)}
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			l.LogAttrs(context.Background(), slog.LevelDebug, "dkim sign", attrs...)
		}
		if err != nil {
			w.err = err
			return err
		}
		w.sigs = append(w.sigs, f)
	}
	return nil
}

// Signatures returns the DKIM-Signature fields, each ending in CRLF, in
// signer order. It is nil before a successful Close.
func (w *SigningWriter) Signatures() []string { return w.sigs }

// Header returns the DKIM-Signature fields joined, ready to prepend.
func (w *SigningWriter) Header() string { return strings.Join(w.sigs, "") }

// headerNames returns the h= list for a message.
func (s *Signer) headerNames(p *headerPicker) []string {
	if s.o.Headers != nil {
		return s.o.Headers
	}
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		ln := strings.ToLower(n)
		if seen[ln] {
			return
		}
		seen[ln] = true
		for range p.count(ln) + 1 {
			names = append(names, n)
		}
	}
	for _, n := range defaultHeaders {
		add(n)
	}
	for _, f := range p.fields {
		if strings.HasPrefix(f.lname, "list-") {
			add(strings.Trim(f.raw[:f.colon], " \t"))
		}
	}
	return names
}

// folder builds a header field folded at about 78 columns (RFC 5322 §2.1.1).
type folder struct {
	b   strings.Builder
	col int
}

func (f *folder) add(tok string, sep string) {
	if f.col+len(sep)+len(tok) > 78 {
		f.b.WriteString("\r\n\t")
		f.col = 1
		sep = strings.TrimLeft(sep, " ")
	}
	f.b.WriteString(sep)
	f.b.WriteString(tok)
	f.col += len(sep) + len(tok)
}

// sign makes the DKIM-Signature field for the picked header and body hash:
// the field without its b= value, the signature of the header fields and
// of that field (RFC 6376 §3.7), and the field with b= folded in.
func (s *Signer) sign(p *headerPicker, bh string, bodyLen int64) (string, error) {
	names := s.headerNames(p)
	unsigned := s.unsignedField(names, bh, bodyLen)
	sig, err := s.signHeader(p, names, unsigned.b.String())
	if err != nil {
		return "", err
	}
	return foldB(unsigned, base64.StdEncoding.EncodeToString(sig)), nil
}

// unsignedField writes the DKIM-Signature field up to an empty b= value,
// folded. Tag order is fixed: v a c d s t x i l h bh b.
func (s *Signer) unsignedField(names []string, bh string, bodyLen int64) *folder {
	f := &folder{}
	f.b.WriteString("DKIM-Signature:")
	f.col = len("DKIM-Signature:")
	f.add("v=1;", " ")
	f.add("a="+s.alg+";", " ")
	f.add("c="+string(s.o.HeaderCanonicalization)+"/"+string(s.o.BodyCanonicalization)+";", " ")
	f.add("d="+s.domain+";", " ")
	f.add("s="+s.selector+";", " ")
	now := s.o.Now()
	if !s.o.NoTimestamp {
		f.add("t="+strconv.FormatInt(now.Unix(), 10)+";", " ")
	}
	if s.o.Expiration > 0 {
		f.add("x="+strconv.FormatInt(now.Add(s.o.Expiration).Unix(), 10)+";", " ")
	}
	if s.o.Identifier != "" {
		f.add("i="+s.o.Identifier+";", " ")
	}
	if s.o.BodyLength {
		f.add("l="+strconv.FormatInt(bodyLen, 10)+";", " ")
	}
	for i, n := range names {
		tok := n
		sep := ":"
		if i == 0 {
			tok, sep = "h="+n, " "
		}
		if i == len(names)-1 {
			tok += ";"
		}
		f.add(tok, sep)
	}
	f.add("bh="+bh+";", " ")
	f.add("b=", " ")
	return f
}

// signHeader signs the SHA-256 hash of the picked header fields and of the
// unsigned DKIM-Signature field, canonicalized, without its final CRLF
// (RFC 6376 §3.7).
func (s *Signer) signHeader(p *headerPicker, names []string, unsigned string) ([]byte, error) {
	h := sha256.New()
	var buf []byte
	for _, fl := range p.pick(names) {
		buf = canonHeader(buf[:0], fl, s.o.HeaderCanonicalization)
		h.Write(buf)
	}
	self := field{raw: unsigned + crlf, lname: "dkim-signature", colon: len("DKIM-Signature")}
	buf = canonHeader(buf[:0], self, s.o.HeaderCanonicalization)
	h.Write(buf[:len(buf)-2])
	digest := h.Sum(nil)

	var sig []byte
	var err error
	if s.alg == "ed25519-sha256" {
		sig, err = s.key.Sign(s.o.Rand, digest, crypto.Hash(0))
	} else {
		sig, err = s.key.Sign(s.o.Rand, digest, crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("dkim: sign for %s: %w", s.name, err)
	}
	return sig, nil
}

// foldB ends the unsigned field with the base64 value b of b=, folded in
// lines of at most 78 octets, and a CRLF.
func foldB(unsigned *folder, b string) string {
	var out strings.Builder
	out.WriteString(unsigned.b.String())
	col := unsigned.col
	for len(b) > 0 {
		n := max(78-col, 8)
		if n > len(b) {
			n = len(b)
		}
		if col >= 70 {
			out.WriteString("\r\n\t")
			col = 1
			continue
		}
		out.WriteString(b[:n])
		b = b[n:]
		col += n
		if len(b) > 0 {
			out.WriteString("\r\n\t")
			col = 1
		}
	}
	out.WriteString(crlf)
	return out.String()
}
