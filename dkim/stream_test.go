package dkim_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// signalResolver reports each key lookup on a channel before answering.
type signalResolver struct {
	dkim.Resolver
	asked chan string
}

func (r *signalResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.asked <- name
	return r.Resolver.LookupTXT(ctx, name)
}

// TestVerifierStreaming writes a large message with two signatures in small
// pieces. The key lookups must begin once the header block is complete,
// before the body arrives (so DNS latency overlaps the body), and the
// results must equal those of Verify on the whole message, with a
// tampered copy failing on its body hash.
func TestVerifierStreaming(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var body strings.Builder
	for body.Len() < 400<<10 {
		body.WriteString("line of text  with\ttabs and runs \r\n")
	}
	unsigned := []byte("From: Joe <joe@football.example.com>\r\nSubject: big\r\n\r\n" + body.String())
	var signed bytes.Buffer
	if err := dkim.Sign(ctx, &signed, bytes.NewReader(unsigned),
		edSigner(t, dkim.SignOptions{}), edSignerFor(t, "football.example.com", "other", dkim.SignOptions{})); err != nil {
		t.Fatal(err)
	}
	zone := zoneWith(map[string]string{
		"brisbane._domainkey.football.example.com": rfc8463Ed,
		"other._domainkey.football.example.com":    rfc8463Ed,
	})
	msg := signed.Bytes()
	tampered := bytes.Clone(msg)
	tampered[len(tampered)-10] ^= 1

	for _, tc := range []struct {
		name string
		msg  []byte
		want dkim.Status
	}{{"intact", msg, dkim.Pass}, {"tampered", tampered, dkim.Fail}} {
		res := &signalResolver{Resolver: zone, asked: make(chan string, 4)}
		v := mustVerifier(t, res, nil).NewWriter(ctx)
		head := bytes.Index(tc.msg, []byte("\r\n\r\n")) + 4
		for i := 0; i < head+100; i += 7 {
			if _, err := v.Write(tc.msg[i:min(i+7, head+100)]); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			select {
			case <-res.asked:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no key lookup after the header block was written", tc.name)
			}
		}
		for rest := tc.msg[head+100:]; len(rest) > 0; {
			k := min(len(rest), 1000)
			if _, err := v.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		got, err := v.Results()
		if err != nil {
			t.Fatal(err)
		}
		whole, err := mustVerifier(t, zone, nil).Verify(ctx, bytes.NewReader(tc.msg))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || len(whole) != 2 {
			t.Fatalf("%s: %d and %d results, want 2", tc.name, len(got), len(whole))
		}
		for i := range got {
			if got[i].Status != tc.want || whole[i].Status != tc.want || reason(got[i]) != reason(whole[i]) {
				t.Errorf("%s sig %d: streaming %s (%s), whole %s (%s), want %s", tc.name, i,
					got[i].Status, reason(got[i]), whole[i].Status, reason(whole[i]), tc.want)
			}
		}
		if tc.want == dkim.Fail && reason(got[0]) != "body hash did not verify" {
			t.Errorf("tampered: reason %q, want the body hash", reason(got[0]))
		}
		if _, err := v.Write([]byte("more")); err == nil {
			t.Error("Write after Results was accepted")
		}
	}
}

// TestNoGoroutineLeft: the goroutines Sign and Verify start for a large
// message (the hash pipe, the key lookups) are gone once they return. Not
// parallel, so that other tests' goroutines do not move the count.
func TestNoGoroutineLeft(t *testing.T) {
	ctx := context.Background()
	before := runtime.NumGoroutine()
	msg := append(bytes.Clone(unsignedMsg), bytes.Repeat([]byte("a line of the body  \r\n"), 50000)...)
	var signed bytes.Buffer
	if err := dkim.Sign(ctx, &signed, bytes.NewReader(msg), edSigner(t, dkim.SignOptions{})); err != nil {
		t.Fatal(err)
	}
	zone := zoneWith(map[string]string{"brisbane._domainkey.football.example.com": rfc8463Ed})
	res, err := mustVerifier(t, zone, nil).Verify(ctx, bytes.NewReader(signed.Bytes()))
	if err != nil || len(res) != 1 || res[0].Status != dkim.Pass {
		t.Fatalf("%+v %v", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Sign and Verify, %d before", n, before)
	}
}

// TestVerifierHeader: the header a VerifyingWriter parsed comes back
// unfolded, by canonical name, each name's fields in message order, so that
// DMARC can read From without parsing the message again; nothing is there
// before the header block ends.
func TestVerifierHeader(t *testing.T) {
	t.Parallel()
	msg := "Received: from a\r\nfrom: Joe <joe@example.com>\r\nSubject: one\r\n two\r\nReceived: from b\r\n\r\nbody\r\n"
	w := mustVerifier(t, dnstest.NewZone(), nil).NewWriter(context.Background())
	if _, err := w.Write([]byte(msg[:20])); err != nil {
		t.Fatal(err)
	}
	if h := w.Header(); h != nil {
		t.Fatalf("header before the block ended: %v", h)
	}
	if _, err := w.Write([]byte(msg[20:])); err != nil {
		t.Fatal(err)
	}
	h := w.Header()
	if got := h["From"]; len(got) != 1 || got[0] != "Joe <joe@example.com>" {
		t.Errorf("From = %q", got)
	}
	if got := h.Get("Subject"); got != "one two" {
		t.Errorf("Subject = %q, want the unfolded value", got)
	}
	if got := h["Received"]; len(got) != 2 || got[0] != "from a" || got[1] != "from b" {
		t.Errorf("Received = %q", got)
	}
	if res, err := w.Results(); err != nil || len(res) != 0 {
		t.Errorf("Results = %v, %v; want none", res, err)
	}
}

// TestNewVerifierChecks: a Verifier needs a resolver, and limits are not
// negative.
func TestNewVerifierChecks(t *testing.T) {
	t.Parallel()
	if _, err := dkim.NewVerifier(nil, nil); err == nil {
		t.Error("nil resolver accepted")
	}
	if _, err := dkim.NewVerifier(dnstest.NewZone(), &dkim.VerifyOptions{MaxSignatures: -1}); err == nil {
		t.Error("negative MaxSignatures accepted")
	}
}
