package dkim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

type nullHash struct{ captureHash }

func (*nullHash) Write(p []byte) (int, error) { return len(p), nil }

func canonBenchBody(text bool) []byte {
	r := rand.New(rand.NewPCG(1, 1))
	var b bytes.Buffer
	words := strings.Fields("the quick brown fox jumps over a lazy dog while we lost the game are you hungry yet")
	raw := make([]byte, 57)
	for b.Len() < 1<<20 {
		if text {
			line := 0
			for line < 70 {
				w := words[r.IntN(len(words))]
				b.WriteString(w + " ")
				line += len(w) + 1
			}
			b.Truncate(b.Len() - 1)
		} else {
			for i := range raw {
				raw[i] = byte(r.Uint32())
			}
			b.WriteString(base64.StdEncoding.EncodeToString(raw))
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// BenchmarkBodyCanon measures the canonicalizer alone (a hash that drops
// its input) and with sha256, on base64 and on text lines, on the caller's
// goroutine ("inline") and with the hashing piped to another goroutine as
// Sign and Verify do.
func BenchmarkBodyCanon(b *testing.B) {
	for _, kind := range []string{"base64", "text"} {
		body := canonBenchBody(kind == "text")
		for _, relaxed := range []bool{false, true} {
			name := kind + "/simple"
			if relaxed {
				name = kind + "/relaxed"
			}
			for _, inline := range []bool{true, false} {
				mode := "/piped"
				if inline {
					mode = "/inline"
				}
				b.Run(name+"/canon-only"+mode, func(b *testing.B) {
					b.SetBytes(int64(len(body)))
					for b.Loop() {
						c := &bodyCanon{relaxed: relaxed, inlineOnly: inline, dst: []*bodyHash{{h: &nullHash{}, limit: -1}}}
						c.Write(body)
						c.Close()
					}
				})
				b.Run(name+"/canon+sha256"+mode, func(b *testing.B) {
					b.SetBytes(int64(len(body)))
					for b.Loop() {
						c := &bodyCanon{relaxed: relaxed, inlineOnly: inline, dst: []*bodyHash{{h: sha256.New(), limit: -1}}}
						c.Write(body)
						c.Close()
					}
				})
			}
		}
		b.Run(kind+"/sha256", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				sha256.Sum256(body)
			}
		})
	}
}
