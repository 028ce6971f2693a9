package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/smarthost-go/smarthost/dkim"
)

// SigningSender is a Sender that signs each message with DKIM (RFC 6376)
// before it hands it on, for applications that sign before they submit.
//
// It reads the message once, through dkim.NewSigningWriter, which hashes the
// body as it streams and keeps only the header block. The Message it hands on
// is the DKIM-Signature fields followed by the original message, read from
// the original's Open each time: the body is never copied or held in memory,
// and the next Sender may read it as often as it needs to (retries,
// failover).
//
// # Line ends
//
// A signature covers the canonical form of the message (RFC 6376 §3.4), which
// is computed from its lines; what the receiver verifies is what was sent.
// SMTP allows CR and LF only together, as CRLF (RFC 5321 §2.3.8), and an SMTP
// client writes a bare LF as CRLF and ends the last line with CRLF before the
// final "." (§4.1.1.4). A message with bare LF or bare CR line ends, or
// without a line end at its end, would be signed in one form and sent in
// another, and whether the signature still verified would depend on how
// each end's canonicalization reads a bare CR or LF. So, as RFC 6376 §5.3
// asks of signers, SigningSender signs the form the message travels in:
// every line end a CRLF, and a CRLF at the end. It hands on that same form,
// so that a client's normalization finds nothing to change and the message
// verifies as delivered. A message that is already normalized is handed on
// as it is read.
//
// A message with Envelope.Body BodyBinary (RFC 3030) is signed and handed on
// as it is, since a bare CR or LF in binary content is data, not a line end.
//
// Put a SigningSender before a Failover or an MXSender, so that a message is
// signed once however many hosts are tried.
type SigningSender struct {
	next    Sender
	signers []*dkim.Signer
}

// NewSigningSender returns a Sender that adds one DKIM-Signature field per
// signer, in the order given (RFC 6376 §5.6: each new signature goes on top),
// and then calls next.
func NewSigningSender(next Sender, signers ...*dkim.Signer) (*SigningSender, error) {
	if next == nil {
		return nil, errors.New("relay: NewSigningSender: next Sender is nil")
	}
	if len(signers) == 0 {
		return nil, errors.New("relay: NewSigningSender: no signer")
	}
	for i, s := range signers {
		if s == nil {
			return nil, fmt.Errorf("relay: NewSigningSender: signer %d is nil", i)
		}
	}
	return &SigningSender{next: next, signers: signers}, nil
}

// Send signs msg and sends it with the next Sender. An error reading the
// message, or a message the signers cannot read (a malformed header field,
// a header block over dkim.DefaultMaxHeaderBytes; the error wraps
// dkim.ErrSyntax or dkim.ErrTooLarge), fails Send before the next Sender is
// called.
func (s *SigningSender) Send(ctx context.Context, env *Envelope, msg Message) (*Receipt, error) {
	signed, err := s.sign(ctx, msg, env.Body != BodyBinary)
	if err != nil {
		return nil, err
	}
	return s.next.Send(ctx, env, signed)
}

// sign reads msg once, normalized when normalize is set, and returns the
// Message to hand on.
func (s *SigningSender) sign(ctx context.Context, msg Message, normalize bool) (*signedMessage, error) {
	rc, err := msg.Open()
	if err != nil {
		return nil, fmt.Errorf("relay: dkim signing: %w", err)
	}
	defer rc.Close()

	sw := dkim.NewSigningWriter(s.signers...)
	var src io.Reader = contextReader{ctx, rc}
	var norm *normalizer
	if normalize {
		norm = newNormalizer(src, false)
		src = norm
	}
	n, err := io.Copy(sw, src)
	if err != nil {
		return nil, fmt.Errorf("relay: dkim signing: %w", err)
	}
	if err := sw.Close(); err != nil {
		return nil, fmt.Errorf("relay: dkim signing: %w", err)
	}
	header := sw.Header()
	return &signedMessage{
		header:    header,
		msg:       msg,
		size:      int64(len(header)) + n,
		normalize: norm != nil && norm.changed(),
	}, nil
}

// signedMessage is a message with header fields put before it, read from
// the original at each Open.
type signedMessage struct {
	header    string
	msg       Message
	size      int64
	normalize bool // the original has line ends to normalize
}

// Open returns the header fields followed by the original message.
func (m *signedMessage) Open() (io.ReadCloser, error) {
	rc, err := m.msg.Open()
	if err != nil {
		return nil, err
	}
	var r io.Reader = rc
	if m.normalize {
		r = newNormalizer(rc, false)
	}
	return multiReadCloser{io.MultiReader(strings.NewReader(m.header), r), rc}, nil
}

// Size is the length of what Open reads.
func (m *signedMessage) Size() int64 { return m.size }

type multiReadCloser struct {
	io.Reader
	io.Closer
}

// contextReader stops reading once ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
