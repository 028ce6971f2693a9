package dkim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkSaturated signs and verifies 1 MiB messages on every processor
// at once (b.RunParallel, one goroutine per processor), so that no
// processor is idle for the hash pipe to use. "piped" is what Sign and
// Verify do; "inline" never starts the pipe. ns/op is wall time over all
// messages: its inverse is the throughput of the whole machine. cpu-ns/op
// is the CPU time of the process per message, which other load on the
// machine moves less. "sha256" is crypto/sha256 alone over the same
// bytes, the same way.
func BenchmarkSaturated(b *testing.B) {
	seed, err := os.ReadFile("testdata/rfc8463/ed25519-private-seed.b64")
	if err != nil {
		b.Fatal(err)
	}
	key, err := ParsePrivateKey(seed)
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSigner("football.example.com", "brisbane", key, nil)
	if err != nil {
		b.Fatal(err)
	}
	hdr := []byte("From: Joe SixPack <joe@football.example.com>\r\nTo: Suzie Q <suzie@shopping.example.net>\r\n" +
		"Subject: Is dinner ready?\r\nDate: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
		"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n\r\n")
	msg := append(bytes.Clone(hdr), canonBenchBody(false)...)
	var signed bytes.Buffer
	if err := signSaturated(&signed, msg, s, false); err != nil {
		b.Fatal(err)
	}
	sig := signed.Len() - len(msg)
	zone := benchZone{"brisbane._domainkey.football.example.com": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}
	b.Logf("GOMAXPROCS=%d NumCPU=%d", runtime.GOMAXPROCS(0), runtime.NumCPU())
	for _, mode := range []string{"piped", "inline"} {
		inline := mode == "inline"
		b.Run("op=sign/mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			c0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := signSaturated(io.Discard, msg, s, inline); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportProcessCPU(b, c0)
		})
		b.Run("op=verify/mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(signed.Len()))
			c0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := verifySaturated(signed.Bytes(), sig+len(hdr), zone, inline); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportProcessCPU(b, c0)
		})
	}
	b.Run("op=sha256/mode=none", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		c0 := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sha256.Sum256(msg)
			}
		})
		reportProcessCPU(b, c0)
	})
}

// reportProcessCPU adds the CPU time of the process per operation since
// start as "cpu-ns/op".
func reportProcessCPU(b *testing.B, start time.Duration) {
	if c := processCPU() - start; c > 0 && b.N > 0 {
		b.ReportMetric(float64(c.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// signSaturated is Sign over a bytes.Reader (one Write of the whole
// message, then the signature and the message again), with the pipe
// switched off when inline is set.
func signSaturated(w io.Writer, msg []byte, s *Signer, inline bool) error {
	sw := NewSigningWriter(s)
	for _, c := range sw.canons {
		if c != nil {
			c.inlineOnly = inline
		}
	}
	sw.Write(msg)
	if err := sw.Close(); err != nil {
		return err
	}
	io.WriteString(w, sw.Header())
	_, err := w.Write(msg)
	return err
}

// verifySaturated is Verify with the pipe switched off when inline is
// set: the header block (hdrLen bytes) goes first, so that the body's
// canonicalizers exist when the switch is set.
func verifySaturated(msg []byte, hdrLen int, r Resolver, inline bool) error {
	vr, err := NewVerifier(r, nil)
	if err != nil {
		return err
	}
	v := vr.NewWriter(context.Background())
	v.Write(msg[:hdrLen])
	if len(v.canons) == 0 {
		return &wrapped{msg: "dkim: the header block did not end where expected"}
	}
	for _, c := range v.canons {
		c.inlineOnly = inline
	}
	v.Write(msg[hdrLen:])
	res, err := v.Results()
	if err != nil {
		return err
	}
	if len(res) != 1 || res[0].Status != Pass {
		return &wrapped{msg: "dkim: not a pass"}
	}
	return nil
}

// benchZone answers TXT lookups from a map.
type benchZone map[string]string

func (z benchZone) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := z[strings.TrimSuffix(name, ".")]; ok {
		return []string{v}, nil
	}
	return nil, &wrapped{msg: "no record for " + name}
}
