package dmarc

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"
	msgauthdmarc "github.com/emersion/go-msgauth/dmarc"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const benchRecord = "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=100; fo=1:d; rua=mailto:dmarc@example.com,mailto:agg@reports.example.net; ruf=mailto:f@example.com"

// BenchmarkParseRecord compares record parsing with go-msgauth's dmarc.Parse.
func BenchmarkParseRecord(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchRecord)))
		for b.Loop() {
			if _, err := Parse(benchRecord); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-msgauth", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchRecord)))
		for b.Loop() {
			if _, err := msgauthdmarc.Parse(benchRecord); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEvaluate: one message through discovery and alignment against
// the in-memory DNS, under both rules.
func BenchmarkEvaluate(b *testing.B) {
	z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject; rua=mailto:d@example.com"`)
	h := header("Alice <alice@news.example.com>")
	in := entries(spfResult("bounce.example.com", authres.ResultPass), dkimResult("example.com", authres.ResultPass))
	for _, c := range []struct {
		name  string
		rules Rules
	}{{"rfc9989", RFC9989}, {"rfc7489", RFC7489}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEvaluator(b, z, &Options{Rules: c.rules})
			b.ReportAllocs()
			for b.Loop() {
				if r := e.Evaluate(context.Background(), h, in); r.Status != Pass {
					b.Fatal(r.Status, r.Err)
				}
			}
		})
	}
}

// BenchmarkParseReport parses the largest OpenDMARC sample (754 records).
func BenchmarkParseReport(b *testing.B) {
	data, err := os.ReadFile("testdata/opendmarc/aggregate-xml/good.com!example.com!1337270400!1337356799.xml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		fb, err := ParseReport(bytes.NewReader(data), nil)
		if err != nil || len(fb.Records) != 754 {
			b.Fatal(err)
		}
	}
}

// BenchmarkReporter adds evaluations from 256 sources and writes the gzipped
// report.
func BenchmarkReporter(b *testing.B) {
	z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=none; rua=mailto:d@example.com"`)
	e := newEvaluator(b, z, nil)
	res := e.Evaluate(context.Background(), header("a@example.com"), entries(spfResult("example.com", authres.ResultPass)))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		rp, err := NewReporter("r", "r@r.example", &ReporterOptions{Now: func() time.Time { return now }})
		if err != nil {
			b.Fatal(err)
		}
		for i := range 1024 {
			rp.Add(netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 256)}), res)
		}
		reports, _ := rp.Reports(true)
		if _, err := reports[0].Gzip(); err != nil {
			b.Fatal(err)
		}
	}
}
