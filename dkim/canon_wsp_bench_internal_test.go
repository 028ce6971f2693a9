package dkim

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"strings"
	"testing"
)

// wspBody is about 1 MiB of text lines that relaxed canonicalization
// rewrites on every line: each holds a run of two SPs and ends in a tab
// and an SP before the CRLF.
func wspBody() []byte {
	r := rand.New(rand.NewPCG(1, 1))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while we lost the game are you hungry yet")
	var b bytes.Buffer
	for b.Len() < 1<<20 {
		ws := make([]string, 11)
		for i := range ws {
			ws[i] = words[r.IntN(len(words))]
		}
		k := 1 + r.IntN(len(ws)-1)
		b.WriteString(strings.Join(ws[:k], " ") + "  " + strings.Join(ws[k:], " ") + "\t \r\n")
	}
	return b.Bytes()
}

// BenchmarkBodyCanonWSP is BenchmarkBodyCanon, in line, on wspBody, with
// the CPU time per body beside the wall time.
func BenchmarkBodyCanonWSP(b *testing.B) {
	body := wspBody()
	b.Run("relaxed/canon-only", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		c0 := processCPU()
		for b.Loop() {
			c := &bodyCanon{relaxed: true, inlineOnly: true, dst: []*bodyHash{{h: &nullHash{}, limit: -1}}}
			c.Write(body)
			c.Close()
		}
		reportProcessCPU(b, c0)
	})
	b.Run("relaxed/canon+sha256", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		c0 := processCPU()
		for b.Loop() {
			c := &bodyCanon{relaxed: true, inlineOnly: true, dst: []*bodyHash{{h: sha256.New(), limit: -1}}}
			c.Write(body)
			c.Close()
		}
		reportProcessCPU(b, c0)
	})
}
