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
	for _, count := range []string{"-5", "99999999999999999999", "9223372036854775807", "abc"} {
		f.Add([]byte(countReport(count)))
	}
	// Small versions of the bombs: nested multiparts around the report,
	// and elements nested around the limit, plain and gzipped.
	for _, depth := range []int{8, 9, 40} {
		f.Add(nestedReportMessage(depth, 0))
	}
	f.Add(nestedReportMessage(3, 20))
	f.Add(deepXMLReport(61, true))
	f.Add(deepXMLReport(62, false))
	f.Add(gzipped(deepXMLReport(1000, false)))
	f.Fuzz(func(t *testing.T, b []byte) {
		fb, err := ParseReport(bytes.NewReader(b), &ReportOptions{MaxSize: 1 << 20})
		if err == nil && fb == nil {
			t.Fatal("nil feedback without error")
		}
		if fb == nil {
			return
		}
		for i, r := range fb.Records {
			if r.Row.Count < 0 || r.Row.countErr != "" {
				t.Fatalf("record %d kept with count %d (%s)", i+1, r.Row.Count, r.Row.countErr)
			}
		}
		s := Summarize(fb, fb)
		if s.Messages < 0 || s.Passed < 0 || s.Failed < 0 || s.Passed+s.Failed != s.Messages {
			t.Fatalf("totals %d = %d + %d", s.Messages, s.Passed, s.Failed)
		}
		var rows int64
		for _, r := range s.Rows {
			if r.Count < 0 {
				t.Fatalf("row %+v", r)
			}
			rows += r.Count
		}
		if rows != s.Messages {
			t.Fatalf("rows total %d, messages %d", rows, s.Messages)
		}
	})
}
