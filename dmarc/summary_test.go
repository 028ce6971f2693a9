package dmarc

import (
	"encoding/xml"
	"math"
	"net/netip"
	"strings"
	"testing"
)

func countRecord(ip string, n int64, dkim string) ReportRecord {
	return ReportRecord{Row: Row{SourceIP: netip.MustParseAddr(ip), SourceIPText: ip, Count: n, PolicyEvaluated: PolicyEvaluated{DKIM: dkim}}}
}

// TestSummarizeCounts: Summarize totals only counts from 0 to 2^63-1 and
// adds them with a check; a record with a negative count, or one whose
// count would take a total past 2^63-1, is left out of every total and
// named in Problems. Its totals are never negative.
func TestSummarizeCounts(t *testing.T) {
	t.Parallel()
	a := &Feedback{Metadata: ReportMetadata{OrgName: "a"}, Records: []ReportRecord{
		countRecord("192.0.2.1", 3, "pass"),
		countRecord("192.0.2.2", -5, "fail"),
		countRecord("192.0.2.3", math.MaxInt64-3, "fail"),
	}}
	b := &Feedback{Metadata: ReportMetadata{OrgName: "b"}, Records: []ReportRecord{
		countRecord("192.0.2.4", 1, "pass"),
		countRecord("192.0.2.5", math.MaxInt64, "fail"),
	}}
	s := Summarize(a, b)
	if s.Messages != math.MaxInt64 || s.Passed != 3 || s.Failed != math.MaxInt64-3 || s.Passed+s.Failed != s.Messages {
		t.Errorf("%d messages, %d passed, %d failed", s.Messages, s.Passed, s.Failed)
	}
	var total int64
	for _, r := range s.Rows {
		if r.Count < 0 || r.SourceIP == "192.0.2.2" || r.SourceIP == "192.0.2.4" || r.SourceIP == "192.0.2.5" {
			t.Errorf("row %+v", r)
		}
		total += r.Count
	}
	if total != s.Messages || len(s.Rows) != 2 {
		t.Errorf("rows %+v", s.Rows)
	}
	joined := strings.Join(s.Problems, "\n")
	for _, want := range []string{
		"a: record from 192.0.2.2: count -5 is negative; left out",
		"b: record from 192.0.2.4: count 1 would take the total past 9223372036854775807; left out",
		"b: record from 192.0.2.5: count 9223372036854775807 would take the total past 9223372036854775807; left out",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", s.Problems, want)
		}
	}

	// A Feedback read with xml.Unmarshal rather than ParseReport keeps
	// the record whose count was refused, with count 0; Summarize leaves
	// it out too.
	var fb Feedback
	if err := xml.Unmarshal([]byte(countReport("-5")), &fb); err != nil {
		t.Fatal(err)
	}
	if len(fb.Records) != 2 || fb.Records[1].Row.Count != 0 {
		t.Fatalf("records %+v", fb.Records)
	}
	s = Summarize(&fb)
	if s.Messages != 2 || len(s.Rows) != 1 || !strings.Contains(strings.Join(s.Problems, "\n"), `r: record from 192.0.2.2: count "-5" is negative; left out`) {
		t.Errorf("%d messages, rows %+v, problems %q", s.Messages, s.Rows, s.Problems)
	}
}
