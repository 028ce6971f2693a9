package dkim_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/smarthost-go/smarthost/dkim"
)

// benchMessage builds a message of about size bytes shaped like real large
// mail: a short text part, then a base64 attachment in 76-column lines.
// With text, the body is all plain text lines instead (a word, then an SP,
// every few bytes), where relaxed body canonicalization has the most to
// look at.
func benchMessage(size int, text bool) []byte {
	r := rand.New(rand.NewPCG(1, 1))
	var b bytes.Buffer
	if text {
		b.WriteString("From: Joe SixPack <joe@football.example.com>\r\nTo: Suzie Q <suzie@shopping.example.net>\r\n" +
			"Subject: Is dinner ready?\r\nDate: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
			"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n\r\n")
		words := strings.Fields("the quick brown fox jumps over a lazy dog while we lost the game are you hungry yet")
		for b.Len() < size-80 {
			line := 0
			for line < 70 {
				w := words[r.IntN(len(words))]
				b.WriteString(w + " ")
				line += len(w) + 1
			}
			b.Truncate(b.Len() - 1)
			b.WriteString("\r\n")
		}
		return b.Bytes()
	}
	b.WriteString("From: Joe SixPack <joe@football.example.com>\r\nTo: Suzie Q <suzie@shopping.example.net>\r\n" +
		"Subject: Is dinner ready?\r\nDate: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
		"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n")
	words := strings.Fields("the quick brown fox jumps over a lazy dog while we lost the game are you hungry yet")
	for b.Len() < min(size/2, 2048) {
		line := 0
		for line < 70 {
			w := words[r.IntN(len(words))]
			b.WriteString(w + " ")
			line += len(w) + 1
		}
		b.WriteString("\r\n")
	}
	b.WriteString("--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	raw := make([]byte, 57)
	for b.Len() < size-80 {
		for i := range raw {
			raw[i] = byte(r.Uint32())
		}
		b.WriteString(base64.StdEncoding.EncodeToString(raw))
		b.WriteString("\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

var benchSizes = []struct {
	name string
	n    int
	text bool // plain text lines instead of mostly base64
}{{"4KiB", 4 << 10, false}, {"100KiB", 100 << 10, false}, {"1MiB", 1 << 20, false}, {"1MiB-text", 1 << 20, true}, {"10MiB", 10 << 20, false}}

func benchKey(b *testing.B) ed25519.PrivateKey {
	k, err := dkim.ParsePrivateKey(readFile(b, "testdata/rfc8463/ed25519-private-seed.b64"))
	if err != nil {
		b.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

// BenchmarkSign: ed25519-sha256, relaxed/relaxed, the same message for
// every contender; "sha256" is crypto/sha256 alone over the same bytes.
func BenchmarkSign(b *testing.B) {
	key := benchKey(b)
	ctx := context.Background()
	for _, sz := range benchSizes {
		msg := benchMessage(sz.n, sz.text)
		s, err := dkim.NewSigner("football.example.com", "brisbane", key, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(sz.name+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			c0 := cpuNow()
			for b.Loop() {
				if err := dkim.Sign(ctx, io.Discard, bytes.NewReader(msg), s); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0)
		})
		b.Run(sz.name+"/go-msgauth", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			opts := &msgauth.SignOptions{Domain: "football.example.com", Selector: "brisbane", Signer: key,
				HeaderCanonicalization: msgauth.CanonicalizationRelaxed, BodyCanonicalization: msgauth.CanonicalizationRelaxed}
			c0 := cpuNow()
			for b.Loop() {
				if err := msgauth.Sign(io.Discard, bytes.NewReader(msg), opts); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0)
		})
		benchSHA256(b, sz.name, msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	key := benchKey(b)
	ctx := context.Background()
	zone := zoneFromLines(b, string(readFile(b, "testdata/rfc8463/keys.zone")))
	lookup := func(name string) ([]string, error) { return zone.LookupTXT(ctx, name) }
	for _, sz := range benchSizes {
		s, err := dkim.NewSigner("football.example.com", "brisbane", key, nil)
		if err != nil {
			b.Fatal(err)
		}
		var signed bytes.Buffer
		if err := dkim.Sign(ctx, &signed, bytes.NewReader(benchMessage(sz.n, sz.text)), s); err != nil {
			b.Fatal(err)
		}
		msg := signed.Bytes()
		v := mustVerifier(b, zone, nil)
		b.Run(sz.name+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			c0 := cpuNow()
			for b.Loop() {
				res, err := v.Verify(ctx, bytes.NewReader(msg))
				if err != nil || len(res) != 1 || res[0].Status != dkim.Pass {
					b.Fatal(res, err)
				}
			}
			reportCPU(b, c0)
		})
		b.Run(sz.name+"/go-msgauth", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			c0 := cpuNow()
			for b.Loop() {
				vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 || vs[0].Err != nil {
					b.Fatal(fmt.Sprint(vs), err)
				}
			}
			reportCPU(b, c0)
		})
		benchSHA256(b, sz.name, msg)
	}
}

// benchSHA256 is crypto/sha256 alone over the bytes of msg, the floor the
// contenders are measured against.
func benchSHA256(b *testing.B, name string, msg []byte) {
	b.Run(name+"/sha256", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		c0 := cpuNow()
		for b.Loop() {
			sha256.Sum256(msg)
		}
		reportCPU(b, c0)
	})
}

// reportCPU adds the process CPU time per operation as "cpu-ns/op".
func reportCPU(b *testing.B, start time.Duration) {
	if c := cpuNow() - start; c > 0 && b.N > 0 {
		b.ReportMetric(float64(c.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
