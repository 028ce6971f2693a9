package dmarc

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseReport(f *testing.F) {
	files, _ := filepath.Glob("testdata/stalwart/dmarc-feedback/*.xml")
	more, _ := filepath.Glob("testdata/opendmarc/aggregate-xml/bad*.xml")
	eml, _ := filepath.Glob("testdata/stalwart/dmarc-feedback/10[12].eml")
	for _, p := range append(append(files, more...), eml...) {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("<feedback><record><row><source_ip>::1</source_ip><count>1.5</count></row></record></feedback>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fb, err := ParseReport(bytes.NewReader(b), &ReportOptions{MaxSize: 1 << 20})
		if err == nil && fb == nil {
			t.Fatal("nil feedback without error")
		}
		if fb != nil {
			_ = Summarize(fb)
		}
	})
}
