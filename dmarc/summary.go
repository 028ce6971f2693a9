package dmarc

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// SummaryRow totals the messages of one source IP with the same results.
type SummaryRow struct {
	SourceIP    string
	Count       int64
	Disposition string
	// DMARC is "pass" when the DKIM or SPF evaluation passed, else "fail".
	DMARC string
	// DKIM and SPF are the DMARC-aligned results (policy_evaluated).
	DKIM, SPF string
	// DKIMAuth and SPFAuth list the raw results as "domain=result".
	DKIMAuth, SPFAuth string
	HeaderFrom        string
}

// Summary is what a domain owner reads from one or more reports.
type Summary struct {
	Reports          int
	Domains          []string // policy domains reported on
	Reporters        []string // org_name of the reporters
	Begin, End       time.Time
	Messages         int64
	Passed, Failed   int64
	Rows             []SummaryRow // largest count first
	Problems         []string     // from lenient parsing
	uniqueDomain     map[string]bool
	uniqueReporter   map[string]bool
	uniqueProblemKey map[string]bool
}

// Summarize totals reports per source IP and result.
//
// Only counts from 0 to 2^63-1 are totalled, with checked addition: a
// record whose count is negative, was refused when read from XML (see
// ParseReport), or would take the total of messages past 2^63-1 is left
// out of every total and row and named in Problems, so no total is ever
// negative or wrapped. The rows and the pass and fail totals never exceed
// Messages.
func Summarize(fbs ...*Feedback) *Summary {
	s := &Summary{uniqueDomain: map[string]bool{}, uniqueReporter: map[string]bool{}, uniqueProblemKey: map[string]bool{}}
	rows := map[SummaryRow]int64{}
	for _, fb := range fbs {
		if fb == nil {
			continue
		}
		s.Reports++
		s.addMetadata(fb)
		for _, r := range fb.Records {
			row := summaryRow(r)
			if refused := s.refusedCount(r.Row); refused != "" {
				s.addProblem(fb.Metadata.OrgName, fmt.Sprintf("record from %s: %s; left out of the totals", orDash(row.SourceIP), refused))
				continue
			}
			// Every other total is at most Messages, so none overflows.
			n := r.Row.Count
			rows[row] += n
			s.Messages += n
			if row.DMARC == "pass" {
				s.Passed += n
			} else {
				s.Failed += n
			}
		}
	}
	for row, n := range rows {
		row.Count = n
		s.Rows = append(s.Rows, row)
	}
	slices.SortFunc(s.Rows, func(a, b SummaryRow) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := cmp.Compare(a.SourceIP, b.SourceIP); c != 0 {
			return c
		}
		return cmp.Compare(a.DKIMAuth+a.SPFAuth+a.Disposition, b.DKIMAuth+b.SPFAuth+b.Disposition)
	})
	return s
}

// addMetadata adds what a report says of itself: its policy domain, its
// reporter, its date range and the problems found reading it.
func (s *Summary) addMetadata(fb *Feedback) {
	if d := strings.ToLower(fb.Policy.Domain); d != "" && !s.uniqueDomain[d] {
		s.uniqueDomain[d] = true
		s.Domains = append(s.Domains, d)
	}
	if o := fb.Metadata.OrgName; o != "" && !s.uniqueReporter[o] {
		s.uniqueReporter[o] = true
		s.Reporters = append(s.Reporters, o)
	}
	if b := fb.Metadata.DateRange.Begin; b > 0 && (s.Begin.IsZero() || time.Unix(b, 0).Before(s.Begin)) {
		s.Begin = time.Unix(b, 0).UTC()
	}
	if e := fb.Metadata.DateRange.End; e > 0 && time.Unix(e, 0).After(s.End) {
		s.End = time.Unix(e, 0).UTC()
	}
	for _, p := range fb.Problems {
		s.addProblem(fb.Metadata.OrgName, p)
	}
}

// summaryRow is the row a record counts in, without its count.
func summaryRow(r ReportRecord) SummaryRow {
	pe := r.Row.PolicyEvaluated
	row := SummaryRow{
		SourceIP:    r.Row.SourceIPText,
		Disposition: pe.Disposition,
		DKIM:        pe.DKIM,
		SPF:         pe.SPF,
		HeaderFrom:  r.Identifiers.HeaderFrom,
		DMARC:       "fail",
	}
	if r.Row.SourceIP.IsValid() {
		row.SourceIP = r.Row.SourceIP.String()
	}
	if pe.DKIM == "pass" || pe.SPF == "pass" {
		row.DMARC = "pass"
	}
	var dk, sp []string
	for _, d := range r.AuthResults.DKIM {
		dk = append(dk, d.Domain+"="+d.Result)
	}
	for _, d := range r.AuthResults.SPF {
		sp = append(sp, d.Domain+"="+d.Result)
	}
	row.DKIMAuth, row.SPFAuth = strings.Join(dk, ","), strings.Join(sp, ",")
	return row
}

// refusedCount says why the count of a row is left out of the totals:
// refused when read, negative, or too large to add to Messages; "" when it
// is counted.
func (s *Summary) refusedCount(row Row) string {
	n := row.Count
	switch {
	case row.countErr != "":
		return row.countErr
	case n < 0:
		return fmt.Sprintf("count %d is negative", n)
	case n > math.MaxInt64-s.Messages:
		return fmt.Sprintf("count %d would take the total past %d", n, int64(math.MaxInt64))
	}
	return ""
}

// addProblem adds a reporter's problem to Problems, once.
func (s *Summary) addProblem(org, p string) {
	p = org + ": " + p
	if !s.uniqueProblemKey[p] {
		s.uniqueProblemKey[p] = true
		s.Problems = append(s.Problems, p)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteText writes the summary as a table, one line per row.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "reports: %d from %s\n", s.Reports, orDash(strings.Join(s.Reporters, ", ")))
	fmt.Fprintf(&b, "domains: %s\n", orDash(strings.Join(s.Domains, ", ")))
	if !s.Begin.IsZero() {
		fmt.Fprintf(&b, "period:  %s to %s\n", s.Begin.Format(time.RFC3339), s.End.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "messages: %d, DMARC pass %d, fail %d\n\n", s.Messages, s.Passed, s.Failed)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE IP\tCOUNT\tDMARC\tDISPOSITION\tDKIM\tSPF\tHEADER FROM\tDKIM RESULTS\tSPF RESULTS")
	for _, r := range s.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(r.SourceIP), r.Count, r.DMARC, orDash(r.Disposition),
			orDash(r.DKIM), orDash(r.SPF), orDash(r.HeaderFrom), orDash(r.DKIMAuth), orDash(r.SPFAuth))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range s.Problems {
		if _, err := fmt.Fprintf(w, "warning: %s\n", p); err != nil {
			return err
		}
	}
	return nil
}
