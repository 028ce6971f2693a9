package relay_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// dkimFixture makes signers for example.com with the selectors given, and
// a verifier whose zone holds their keys.
func dkimFixture(t testing.TB, selectors ...string) ([]*dkim.Signer, *dkim.Verifier) {
	t.Helper()
	zone := dnstest.NewZone()
	var signers []*dkim.Signer
	for i, sel := range selectors {
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
		s, err := dkim.NewSigner("example.com", sel, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		txt, err := dkim.KeyRecordText(key.Public(), nil)
		if err != nil {
			t.Fatal(err)
		}
		zone.AddTXT(dkim.RecordName(sel, "example.com"), txt)
		signers = append(signers, s)
	}
	v, err := dkim.NewVerifier(zone, nil)
	if err != nil {
		t.Fatal(err)
	}
	return signers, v
}

// verifyAll checks that msg has n signatures and that all pass.
func verifyAll(t *testing.T, v *dkim.Verifier, msg []byte, n int) {
	t.Helper()
	res, err := v.Verify(context.Background(), bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != n {
		t.Fatalf("%d signatures, want %d:\n%s", len(res), n, msg)
	}
	for _, r := range res {
		if r.Status != dkim.Pass {
			t.Errorf("s=%s: %s (%v)", r.Selector, r.Status, r.Err)
		}
	}
}

// capture is a Sender that keeps the message it is handed, checking that
// its Size is the length of what Open reads.
type capture struct {
	t    *testing.T
	env  *relay.Envelope
	data []byte
}

func (c *capture) Send(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
	c.env = env
	c.data = readAll(c.t, msg)
	if msg.Size() != int64(len(c.data)) {
		c.t.Errorf("Size() = %d, Open reads %d octets", msg.Size(), len(c.data))
	}
	return &relay.Receipt{Host: "capture"}, nil
}

const plainMessage = "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\nHello, Bob.\r\n"

func TestSigningSenderSignsWithEachSigner(t *testing.T) {
	t.Parallel()
	signers, v := dkimFixture(t, "one", "two")
	c := &capture{t: t}
	s, err := relay.NewSigningSender(c, signers...)
	if err != nil {
		t.Fatal(err)
	}
	env := &relay.Envelope{From: "alice@example.com", To: relay.To("bob@example.org")}
	r, err := s.Send(context.Background(), env, relay.Bytes(plainMessage))
	if err != nil {
		t.Fatal(err)
	}
	if r.Host != "capture" || c.env != env {
		t.Errorf("the next Sender's receipt or envelope was not passed through: %+v", r)
	}
	verifyAll(t, v, c.data, 2)
	// The fields come first, in signer order, then the message unchanged.
	if !bytes.HasPrefix(c.data, []byte("DKIM-Signature:")) || !bytes.HasSuffix(c.data, []byte(plainMessage)) {
		t.Fatalf("handed on:\n%s", c.data)
	}
	for i, sel := range []string{"one", "two"} {
		res, _ := v.Verify(context.Background(), bytes.NewReader(c.data))
		if res[i].Selector != sel {
			t.Errorf("signature %d has s=%s, want %s", i, res[i].Selector, sel)
		}
	}
}

// The message is read once to sign it and once more each time the next
// Sender reads it: it is never copied.
func TestSigningSenderDoesNotCopyTheMessage(t *testing.T) {
	t.Parallel()
	signers, v := dkimFixture(t, "sel")
	msg := &countedMessage{Message: relay.Bytes(plainMessage)}
	var first, second []byte
	next := relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, m relay.Message) (*relay.Receipt, error) {
		if n := msg.opens.Load(); n != 1 {
			t.Errorf("the original was opened %d times before the next Sender, want 1", n)
		}
		first = readAll(t, m)
		second = readAll(t, m) // a retry
		return &relay.Receipt{}, nil
	})
	s, err := relay.NewSigningSender(next, signers...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), &relay.Envelope{To: relay.To("bob@example.org")}, msg); err != nil {
		t.Fatal(err)
	}
	if n := msg.opens.Load(); n != 3 {
		t.Errorf("the original was opened %d times, want 3 (sign, send, resend)", n)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("two readings differ:\n%s\n%s", first, second)
	}
	verifyAll(t, v, first, 1)
}

// A message with bare LF or bare CR line ends, or without a final line end,
// is signed and handed on in the form an SMTP client sends it: every line
// end a CRLF (RFC 5321 §2.3.8), and a CRLF at the end (§4.1.1.4). A client's
// normalization then changes nothing, and the signature verifies.
func TestSigningSenderNormalizesLineEnds(t *testing.T) {
	t.Parallel()
	signers, v := dkimFixture(t, "sel")
	for _, tc := range []struct{ name, msg string }{
		{"CRLF", plainMessage},
		{"bare LF", "From: alice@example.com\nSubject: lf\n\nline one\nline two\n"},
		{"bare CR", "From: alice@example.com\rSubject: cr\r\rline one\rline two\r"},
		{"mixed", "From: alice@example.com\r\nSubject: mixed\n\r\none\rtwo\nthree\r\n\n\n"},
		{"folded header with LF", "From: alice@example.com\nSubject: a\n long one\n\nbody\n"},
		{"no final line end", "From: alice@example.com\r\nSubject: end\r\n\r\nno end"},
		{"no final line end, bare LF", "From: alice@example.com\nSubject: end\n\nno end"},
		{"header only", "From: alice@example.com\nSubject: no body\n"},
		{"CR at the end", "From: alice@example.com\r\n\r\nbody\r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &capture{t: t}
			s, err := relay.NewSigningSender(c, signers...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Send(context.Background(), &relay.Envelope{To: relay.To("bob@example.org")}, relay.Bytes(tc.msg)); err != nil {
				t.Fatal(err)
			}
			if hasBareLineEnd(c.data) {
				t.Errorf("handed on a bare CR or LF: %q", c.data)
			}
			if !bytes.Equal(normalizeCRLF(c.data), c.data) {
				t.Errorf("a client would change what was handed on: %q", c.data)
			}
			want := normalizeCRLF([]byte(tc.msg))
			if !bytes.HasSuffix(c.data, want) {
				t.Errorf("handed on %q, want the signatures and then %q", c.data, want)
			}
			verifyAll(t, v, c.data, 1)
		})
	}
}

// End to end: a message with bare LF goes through the signer and an SMTP
// client to a server; what the server received verifies.
func TestSigningSenderVerifiesAsDelivered(t *testing.T) {
	t.Parallel()
	signers, v := dkimFixture(t, "sel")
	srv := newSMTPServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	s, err := relay.NewSigningSender(smtpSender{addr: srv.Addr}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: alice@example.com\nTo: bob@example.org\nSubject: unix\n\nWritten on a system\nwith LF line ends.\n.\n..and dots"
	r, err := s.Send(context.Background(), &relay.Envelope{From: "alice@example.com", To: relay.To("bob@example.org")}, relay.Bytes(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Accepted(); len(got) != 1 {
		t.Fatalf("accepted %v", got)
	}
	got := srv.Messages()[0].Data
	verifyAll(t, v, got, 1)
	if !bytes.HasSuffix(got, normalizeCRLF([]byte(msg))) {
		t.Errorf("received %q", got)
	}
}

// A BINARYMIME message (RFC 3030) is handed on byte for byte: its bare CR
// and LF are data.
func TestSigningSenderLeavesBinaryAlone(t *testing.T) {
	t.Parallel()
	signers, _ := dkimFixture(t, "sel")
	c := &capture{t: t}
	s, err := relay.NewSigningSender(c, signers...)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: alice@example.com\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\n\r\xff"
	env := &relay.Envelope{To: relay.To("bob@example.org"), Body: relay.BodyBinary}
	if _, err := s.Send(context.Background(), env, relay.Bytes(msg)); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(c.data, []byte(msg)) {
		t.Errorf("handed on %q", c.data)
	}
}

// A large message streams through: what is handed on is the signatures and
// the original, and its Size says so.
func TestSigningSenderLargeMessage(t *testing.T) {
	t.Parallel()
	signers, v := dkimFixture(t, "sel")
	body := strings.Repeat("A line of a large message, with LF only.\n", 50000)
	msg := "From: alice@example.com\nSubject: large\n\n" + body
	c := &capture{t: t}
	s, err := relay.NewSigningSender(c, signers...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), &relay.Envelope{To: relay.To("bob@example.org")}, relay.Bytes(msg)); err != nil {
		t.Fatal(err)
	}
	verifyAll(t, v, c.data, 1)
	if !bytes.HasSuffix(c.data, normalizeCRLF([]byte(msg))) {
		t.Error("the handed-on message is not the normalized original")
	}
}

type failingMessage struct{ err error }

func (m failingMessage) Open() (io.ReadCloser, error) { return nil, m.err }
func (m failingMessage) Size() int64                  { return 10 }

func TestSigningSenderErrors(t *testing.T) {
	t.Parallel()
	signers, _ := dkimFixture(t, "sel")
	called := false
	next := relay.SenderFunc(func(context.Context, *relay.Envelope, relay.Message) (*relay.Receipt, error) {
		called = true
		return &relay.Receipt{}, nil
	})
	s, err := relay.NewSigningSender(next, signers...)
	if err != nil {
		t.Fatal(err)
	}
	env := &relay.Envelope{To: relay.To("bob@example.org")}

	gone := errors.New("spool file gone")
	if _, err := s.Send(context.Background(), env, failingMessage{gone}); !errors.Is(err, gone) {
		t.Errorf("unreadable message: %v, want %v", err, gone)
	}
	big := "From: alice@example.com\r\nX-Big: " + strings.Repeat("x", dkim.DefaultMaxHeaderBytes) + "\r\n\r\nbody\r\n"
	if _, err := s.Send(context.Background(), env, relay.Bytes(big)); !errors.Is(err, dkim.ErrTooLarge) {
		t.Errorf("header block over the limit: %v, want %v", err, dkim.ErrTooLarge)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Send(ctx, env, relay.Bytes(plainMessage)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if called {
		t.Error("the next Sender was called after a failure to sign")
	}

	if _, err := relay.NewSigningSender(nil, signers...); err == nil {
		t.Error("NewSigningSender accepted a nil next Sender")
	}
	if _, err := relay.NewSigningSender(next); err == nil {
		t.Error("NewSigningSender accepted no signer")
	}
	if _, err := relay.NewSigningSender(next, nil); err == nil {
		t.Error("NewSigningSender accepted a nil signer")
	}
}

// An application signs with its domain's key before it submits to a smart
// host. The Sender after the signer here stands for the smart-host client;
// it verifies what it is handed, as the receiver will.
func ExampleNewSigningSender() {
	// The key of selector "mail" of example.com, and its record in DNS.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))
	signer, err := dkim.NewSigner("example.com", "mail", key, &dkim.SignOptions{
		Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	record, _ := dkim.KeyRecordText(key.Public(), nil)
	zone := dnstest.NewZone()
	zone.AddTXT(dkim.RecordName("mail", "example.com"), record)
	verifier, _ := dkim.NewVerifier(zone, nil)

	smartHost := relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		rc, _ := msg.Open()
		defer rc.Close()
		results, _ := verifier.Verify(ctx, rc)
		for _, r := range results {
			fmt.Println(r.Domain, r.Selector, r.Status)
		}
		return &relay.Receipt{}, nil
	})
	sender, err := relay.NewSigningSender(smartHost, signer)
	if err != nil {
		panic(err)
	}
	// Written with LF line ends: signed as it will be sent, with CRLF.
	msg := relay.Bytes("From: news@example.com\nTo: reader@example.org\nSubject: News\n\nToday's news.\n")
	_, err = sender.Send(context.Background(), &relay.Envelope{From: "bounces@example.com", To: relay.To("reader@example.org")}, msg)
	fmt.Println(err)
	// Output:
	// example.com mail pass
	// <nil>
}
