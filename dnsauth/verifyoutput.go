package dnsauth

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// JSON returns the report as indented JSON with the field names of its
// tags, which are stable; each Err is written as "error", its text, and
// left out when nil.
func (rep *Report) JSON() ([]byte, error) {
	return json.MarshalIndent(rep, "", "  ")
}

// WriteLines writes one line per record, "<status> <name> <type>
// <value>" (TXT values in double quotes, unescaped), in the order of
// Records, then one line per end-to-end check in the same shape:
// "<status> <return-path domain> spf <sending IP>", "<status> <key name>
// dkim <selector>", "<status> <domain> dmarc <policy>", where status is
// the RFC 8601 keyword, "skipped" for an SPF check without a sending IP,
// and an empty value is "-".
func (rep *Report) WriteLines(w io.Writer) error {
	for _, r := range rep.Records {
		if _, err := fmt.Fprintf(w, "%s %s %s %s\n", r.Status, r.Record.Name, r.Record.Type, displayValue(r.Record)); err != nil {
			return err
		}
	}
	for _, l := range rep.checkLines() {
		if _, err := fmt.Fprintf(w, "%s %s %s %s\n", l.status, l.name, l.check, l.value); err != nil {
			return err
		}
	}
	return nil
}

// WriteTable writes the report as a table a person reads in a terminal:
// a summary line, the records with what is wrong with each, then the
// end-to-end checks with their errors.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	bad := 0
	for _, r := range rep.Records {
		if r.Status != RecordOK {
			bad++
		}
	}
	checks := rep.checkLines()
	failed := 0
	for _, l := range checks {
		if l.status != "pass" && l.status != "skipped" {
			failed++
		}
	}
	verdict := "ok"
	if !rep.OK() {
		verdict = fmt.Sprintf("not yet: %d of %d records not ok, %d of %d end-to-end checks not passed", bad, len(rep.Records), failed, len(checks))
	}
	fmt.Fprintf(tw, "%s (round %d): %s\n", rep.Domain, rep.Round, verdict)
	fmt.Fprintln(tw, "STATUS\tNAME\tTYPE\tVALUE\tDETAIL")
	for _, r := range rep.Records {
		detail := r.Detail
		if r.Err != nil {
			detail = joinDetail(detail, r.Err.Error())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Status, r.Record.Name, r.Record.Type, displayValue(r.Record), detail)
	}
	fmt.Fprintln(tw, "\nSTATUS\tCHECK\tNAME\tVALUE\tDETAIL")
	for _, l := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.status, l.check, l.name, l.value, l.detail)
	}
	return tw.Flush()
}

func joinDetail(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

func displayValue(r Record) string {
	if r.Type == "TXT" {
		return `"` + r.Value + `"`
	}
	return r.Value
}

type checkLine struct{ status, name, check, value, detail string }

// checkLines are the end-to-end checks as lines of output.
func (rep *Report) checkLines() []checkLine {
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	s := rep.SPF
	l := checkLine{status: string(s.Status), name: s.Domain, check: "spf", value: "-", detail: errText(s.Err)}
	if s.Skipped {
		l.status = "skipped"
	}
	if s.IP.IsValid() {
		l.value = s.IP.String()
	}
	out := []checkLine{l}
	for _, k := range rep.DKIM {
		d := errText(k.Err)
		if k.Canonical != "" && k.Canonical != k.Name {
			d = joinDetail("found at "+k.Canonical, d)
		}
		out = append(out, checkLine{status: string(k.Status), name: k.Name, check: "dkim", value: k.Selector, detail: d})
	}
	d := rep.DMARC
	l = checkLine{status: string(d.Status), name: d.Domain, check: "dmarc", value: string(d.Policy), detail: errText(d.Err)}
	if l.value == "" {
		l.value = "-"
	}
	return append(out, l)
}

// errJSON is the text of err for JSON, "" when nil.
func errJSON(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// MarshalJSON writes the result with its Err as "error".
func (r RecordResult) MarshalJSON() ([]byte, error) {
	type plain RecordResult
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(r), errJSON(r.Err)})
}

// MarshalJSON writes the answer with its Err as "error".
func (a ServerAnswer) MarshalJSON() ([]byte, error) {
	type plain ServerAnswer
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(a), errJSON(a.Err)})
}

// MarshalJSON writes the check with its Err as "error".
func (c SPFCheck) MarshalJSON() ([]byte, error) {
	type plain SPFCheck
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(c), errJSON(c.Err)})
}

// MarshalJSON writes the check with its Err as "error".
func (c KeyCheck) MarshalJSON() ([]byte, error) {
	type plain KeyCheck
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(c), errJSON(c.Err)})
}

// MarshalJSON writes the check with its Err as "error".
func (c DMARCCheck) MarshalJSON() ([]byte, error) {
	type plain DMARCCheck
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(c), errJSON(c.Err)})
}
