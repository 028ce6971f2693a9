package dmarc

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stalwartShape converts a Feedback to the JSON shape of mail-auth's
// report structure, in which the testdata expectations are written.
// mail-auth follows RFC 9990: absent enumerations are "Unspecified",
// values are capitalised, and override reasons outside RFC 9990's list
// (RFC 7489's sampled_out and forwarded) become "Other".
func stalwartShape(fb *Feedback) any {
	enum := func(s string) any {
		if s == "" {
			return "Unspecified"
		}
		var b strings.Builder
		for _, w := range strings.Split(s, "_") {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
		return b.String()
	}
	align := func(s string) any {
		switch s {
		case "r":
			return "Relaxed"
		case "s":
			return "Strict"
		}
		return "Unspecified"
	}
	scope := func(s string) any {
		switch s {
		case "mfrom":
			return "MailFrom"
		case "helo":
			return "Helo"
		}
		return "Unspecified"
	}
	reason := func(s string) any {
		switch s {
		case "trusted_forwarder", "mailing_list", "local_policy", "policy_test_mode":
			return enum(s)
		}
		return "Other"
	}
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	version, _ := strconv.ParseFloat(fb.Version, 64)
	errs := []any{}
	for _, e := range fb.Metadata.Errors {
		errs = append(errs, e)
	}
	exts := func(es []Extension) []any {
		out := []any{}
		for _, e := range es {
			out = append(out, map[string]any{"name": e.Name, "definition": e.Definition})
		}
		return out
	}
	var recs []any
	for _, r := range fb.Records {
		reasons := []any{}
		for _, x := range r.Row.PolicyEvaluated.Reasons {
			reasons = append(reasons, map[string]any{"type_": reason(x.Type), "comment": null(x.Comment)})
		}
		dk := []any{}
		for _, d := range r.AuthResults.DKIM {
			dk = append(dk, map[string]any{"domain": d.Domain, "selector": d.Selector, "result": enum(d.Result), "human_result": null(d.HumanResult)})
		}
		sp := []any{}
		for _, s := range r.AuthResults.SPF {
			sp = append(sp, map[string]any{"domain": s.Domain, "scope": scope(s.Scope), "result": enum(s.Result), "human_result": nil})
		}
		recs = append(recs, map[string]any{
			"row": map[string]any{
				"source_ip": r.Row.SourceIP.String(),
				"count":     float64(r.Row.Count),
				"policy_evaluated": map[string]any{
					"disposition": enum(r.Row.PolicyEvaluated.Disposition),
					"dkim":        enum(r.Row.PolicyEvaluated.DKIM),
					"spf":         enum(r.Row.PolicyEvaluated.SPF),
					"reason":      reasons,
				},
			},
			"identifiers": map[string]any{
				"envelope_to":   null(r.Identifiers.EnvelopeTo),
				"envelope_from": r.Identifiers.EnvelopeFrom,
				"header_from":   r.Identifiers.HeaderFrom,
			},
			"auth_results": map[string]any{"dkim": dk, "spf": sp},
			"extensions":   exts(r.Extensions),
		})
	}
	testing := fb.Policy.T == "y" || fb.Policy.Testing == "y"
	return map[string]any{
		"version": version,
		"report_metadata": map[string]any{
			"org_name":           fb.Metadata.OrgName,
			"email":              fb.Metadata.Email,
			"extra_contact_info": null(fb.Metadata.ExtraContactInfo),
			"report_id":          fb.Metadata.ReportID,
			"date_range":         map[string]any{"begin": float64(fb.Metadata.DateRange.Begin), "end": float64(fb.Metadata.DateRange.End)},
			"error":              errs,
			"generator":          null(fb.Metadata.Generator),
		},
		"policy_published": map[string]any{
			"domain":            fb.Policy.Domain,
			"version_published": nil,
			"adkim":             align(fb.Policy.ADKIM),
			"aspf":              align(fb.Policy.ASPF),
			"p":                 enum(fb.Policy.P),
			"sp":                enum(fb.Policy.SP),
			"np":                enum(fb.Policy.NP),
			"testing":           testing,
			"discovery_method":  enum(fb.Policy.DiscoveryMethod),
			"fo":                null(fb.Policy.FO),
		},
		"record":     recs,
		"extensions": exts(fb.Extensions),
	}
}

// trimToExpected drops keys the expectation does not have (older
// expectation files predate generator, np and discovery_method).
func trimToExpected(got, want any) any {
	gm, ok1 := got.(map[string]any)
	wm, ok2 := want.(map[string]any)
	if ok1 && ok2 {
		out := map[string]any{}
		for k, v := range gm {
			if wv, ok := wm[k]; ok {
				out[k] = trimToExpected(v, wv)
			}
		}
		return out
	}
	gs, ok1 := got.([]any)
	ws, ok2 := want.([]any)
	if ok1 && ok2 && len(gs) == len(ws) {
		out := make([]any, len(gs))
		for i := range gs {
			out[i] = trimToExpected(gs[i], ws[i])
		}
		return out
	}
	return got
}

func TestStalwartReports(t *testing.T) {
	files, _ := filepath.Glob("testdata/stalwart/dmarc-feedback/*.json")
	if len(files) != 10 {
		t.Fatalf("%d expectation files, want 10", len(files))
	}
	for _, jf := range files {
		base := strings.TrimSuffix(jf, ".json")
		in := base + ".xml"
		if _, err := os.Stat(in); err != nil {
			in = base + ".eml"
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			fb := parseReportFile(t, in)
			var want any
			readJSON(t, jf, &want)
			// Round the data through JSON so numbers compare as float64.
			b, _ := json.Marshal(stalwartShape(fb))
			var got any
			json.Unmarshal(b, &got)
			got = trimToExpected(got, want)
			if !reflect.DeepEqual(got, want) {
				gb, _ := json.MarshalIndent(got, "", " ")
				wb, _ := json.MarshalIndent(want, "", " ")
				t.Errorf("got\n%s\nwant\n%s", gb, wb)
			}
			if len(fb.Problems) != 0 {
				t.Errorf("problems: %v", fb.Problems)
			}
		})
	}
}

// TestOpenDMARCReports: the 2012 reports OpenDMARC keeps. Expected values
// were counted from the files with an independent XML reader (Python's
// xml.etree): records and the sum of their counts.
func TestOpenDMARCReports(t *testing.T) {
	for _, c := range []struct {
		file             string
		org              string
		records          int
		messages         int64
		begin, end       int64
		firstIP          string
		firstDisposition string
	}{
		{"163.com!example.com!1337270400!1337356799.20120518163.xml", "163.com", 50, 92, 1337270400, 1337356799, "66.220.144.159", "reject"},
		{"good.com!example.com!1337270400!1337356799.xml", "126.com", 754, 183934, 1337270400, 1337356799, "116.233.121.204", "reject"},
		{"yeah.net!example.com!1337270400!1337356799.20120518.xml", "yeah.net", 254, 21679, 1337270400, 1337356799, "209.85.214.181", "none"},
	} {
		fb := parseReportFile(t, "testdata/opendmarc/aggregate-xml/"+c.file)
		if fb.Metadata.OrgName != c.org || len(fb.Records) != c.records || fb.Metadata.DateRange.Begin != c.begin || fb.Metadata.DateRange.End != c.end ||
			fb.Records[0].Row.SourceIP.String() != c.firstIP || fb.Records[0].Row.PolicyEvaluated.Disposition != c.firstDisposition ||
			fb.Policy.Domain != "example.com" || fb.Policy.P != "reject" {
			t.Errorf("%s: org %q, %d records, range %+v, first %+v", c.file, fb.Metadata.OrgName, len(fb.Records), fb.Metadata.DateRange, fb.Records[0].Row)
		}
		if len(fb.Problems) != 0 {
			t.Errorf("%s: %v", c.file, fb.Problems)
		}
		if s := Summarize(fb); s.Messages != c.messages || s.Passed+s.Failed != c.messages {
			t.Errorf("%s: %d messages (%d+%d), want %d", c.file, s.Messages, s.Passed, s.Failed, c.messages)
		}
	}
}

// TestBrokenReport: OpenDMARC's deliberately broken report (windows-1252,
// namespace prefix on the root, an empty disposition, an invalid address,
// a stray "<foo" and no end) gives its metadata and records and says what
// was wrong.
func TestBrokenReport(t *testing.T) {
	fb := parseReportFile(t, "testdata/opendmarc/aggregate-xml/bad.com!example.com!1337140800!1337227200.xml")
	if fb.Metadata.OrgName != "AOL" || fb.Metadata.ReportID != "example.com_1337227200" || fb.Policy.P != "reject" || fb.Metadata.DateRange.End != 1337227200 {
		t.Errorf("metadata %+v policy %+v", fb.Metadata, fb.Policy)
	}
	if len(fb.Records) < 2 {
		t.Fatalf("%d records", len(fb.Records))
	}
	r0, r1 := fb.Records[0], fb.Records[1]
	if r0.Row.SourceIPText != "108.166.27.220" || r0.Row.Count != 267 || r0.Row.PolicyEvaluated.Disposition != "" ||
		r0.AuthResults.DKIM[0].Result != "pass" || r0.AuthResults.SPF[0].Result != "fail" {
		t.Errorf("record 1: %+v", r0)
	}
	if r1.Row.SourceIP.IsValid() || r1.Row.SourceIPText != "108r.166.27.220" || r1.Row.Count != 16 || r1.AuthResults.SPF[0].Domain != "NULL" {
		t.Errorf("record 2: %+v", r1)
	}
	joined := strings.Join(fb.Problems, "\n")
	if !strings.Contains(joined, "108r.166.27.220") || !strings.Contains(joined, "breaks off") {
		t.Errorf("problems: %v", fb.Problems)
	}
	s := Summarize(fb)
	var buf bytes.Buffer
	s.WriteText(&buf)
	if !strings.Contains(buf.String(), "108r.166.27.220") || !strings.Contains(buf.String(), "warning:") {
		t.Errorf("summary:\n%s", buf.String())
	}
}

func TestReportBombs(t *testing.T) {
	opts := &ReportOptions{MaxSize: 64 << 10}
	zeros := bytes.Repeat([]byte{'<'}, 2<<20)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(zeros)
	zw.Close()
	start := time.Now()
	if _, err := ParseReport(bytes.NewReader(gz.Bytes()), opts); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("gzip bomb: %v", err)
	}
	var zb bytes.Buffer
	w := zip.NewWriter(&zb)
	fw, _ := w.Create("report.xml")
	fw.Write(zeros)
	w.Close()
	if _, err := ParseReport(bytes.NewReader(zb.Bytes()), opts); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "zip") {
		t.Errorf("zip bomb: %v", err)
	}
	// A zip whose central directory understates the size (offset 24 of the
	// central directory header, APPNOTE 4.3.12, set to 100) is refused
	// while reading: archive/zip stops at the declared size.
	lying := bytes.Clone(zb.Bytes())
	cd := bytes.Index(lying, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(lying[cd+24:], 100)
	if _, err := ParseReport(bytes.NewReader(lying), opts); !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrSyntax) {
		t.Errorf("zip bomb without sizes: %v", err)
	}
	// Nested gzip inside gzip.
	var outer bytes.Buffer
	zw = gzip.NewWriter(&outer)
	zw.Write(gz.Bytes())
	zw.Close()
	if _, err := ParseReport(bytes.NewReader(outer.Bytes()), opts); !errors.Is(err, ErrTooLarge) {
		t.Errorf("nested gzip bomb: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("bombs took %v", d)
	}
}

// TestEntityExpansion: encoding/xml does not expand entities declared in a
// DTD, so a "billion laughs" document stays small: the reference is kept
// as text (the decoder is not strict) and nothing grows.
func TestEntityExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n<!ENTITY lol0 \"lol\">\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("<!ENTITY lol" + strconv.Itoa(i) + " \"" + strings.Repeat("&lol"+strconv.Itoa(i-1)+";", 10) + "\">\n")
	}
	b.WriteString("]>\n<feedback><report_metadata><org_name>&lol9;</org_name><report_id>x</report_id></report_metadata>" +
		"<policy_published><domain>example.com</domain></policy_published></feedback>")
	fb, err := ParseReport(strings.NewReader(b.String()), &ReportOptions{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if fb.Metadata.OrgName != "&lol9;" {
		t.Errorf("org_name expanded to %d bytes", len(fb.Metadata.OrgName))
	}
	if fb.Policy.Domain != "example.com" {
		t.Errorf("%+v", fb.Policy)
	}
}

func TestParseReportRejects(t *testing.T) {
	for _, in := range []string{"", "hello", "<html></html>", "\x1f\x8bnot gzip", "PK\x03\x04junk"} {
		if fb, err := ParseReport(strings.NewReader(in), nil); err == nil || !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %+v, %v", in, fb, err)
		}
	}
	if _, err := ParseReport(strings.NewReader("<feedback></feedback>"), &ReportOptions{MaxSize: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("size: %v", err)
	}
}

// parseReportFile is ParseReport of the file at path, failing t on an error.
func parseReportFile(t *testing.T, path string) *Feedback {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fb, err := ParseReport(f, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fb
}

// countReport is a report with a record of count 2 from 192.0.2.1 and a
// record from 192.0.2.2 whose count element is count (none when count is
// "<none>"; the record has no row when it is "<norow>").
func countReport(count string) string {
	row := `<row><source_ip>192.0.2.2</source_ip><count>` + count + `</count><policy_evaluated><dkim>fail</dkim></policy_evaluated></row>`
	switch count {
	case "<none>":
		row = `<row><source_ip>192.0.2.2</source_ip><policy_evaluated><dkim>fail</dkim></policy_evaluated></row>`
	case "<norow>":
		row = ""
	}
	return `<feedback><report_metadata><org_name>r</org_name><report_id>1</report_id></report_metadata>` +
		`<policy_published><domain>example.com</domain></policy_published>` +
		`<record><row><source_ip>192.0.2.1</source_ip><count>2</count><policy_evaluated><dkim>pass</dkim></policy_evaluated></row></record>` +
		`<record>` + row + `<identifiers><header_from>example.com</header_from></identifiers></record></feedback>`
}

// TestReportCounts: a count is a whole number of messages from 0 to
// 2^63-1. A record whose count is negative, too large, fractional, not a
// number or absent is refused: it is left out of Records and named in
// Problems, so no total ever includes it.
func TestReportCounts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		count   string
		want    int64  // the second record's count, when kept
		problem string // the problem named, "" when none
	}{
		{"5", 5, ""},
		{" 7\n", 7, ""},
		{"+4", 4, ""},
		{"3.0", 3, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"0", 0, "record 2: count 0"},
		{"-0", 0, "record 2: count 0"},
		{"-5", -1, `record 2: count "-5" is negative`},
		{"-1.5", -1, `record 2: count "-1.5" is negative`},
		{"99999999999999999999", -1, `record 2: count "99999999999999999999" is too large`},
		{"9223372036854775808", -1, `record 2: count "9223372036854775808" is too large`},
		{"1.5", -1, `record 2: count "1.5" is not a whole number`},
		{"abc", -1, `record 2: count "abc" is not a number`},
		{"1e3", -1, `record 2: count "1e3" is not a number`},
		{"0x10", -1, `record 2: count "0x10" is not a number`},
		{"", -1, "record 2: no count"},
		{"<none>", -1, "record 2: no count"},
		{"<norow>", -1, "record 2: no count"},
	} {
		fb, err := ParseReport(strings.NewReader(countReport(c.count)), nil)
		if err != nil {
			t.Errorf("%q: %v", c.count, err)
			continue
		}
		joined := strings.Join(fb.Problems, "\n")
		if c.problem == "" && len(fb.Problems) != 0 || !strings.Contains(joined, c.problem) {
			t.Errorf("%q: problems %q, want %q", c.count, fb.Problems, c.problem)
		}
		wantRecords, wantTotal := 2, 2+c.want
		if c.want < 0 {
			wantRecords, wantTotal = 1, 2
			if !strings.Contains(joined, "left out") {
				t.Errorf("%q: problems %q do not say the record is left out", c.count, fb.Problems)
			}
		}
		if len(fb.Records) != wantRecords || fb.Records[0].Row.Count != 2 || wantRecords == 2 && fb.Records[1].Row.Count != c.want {
			t.Errorf("%q: records %+v", c.count, fb.Records)
		}
		if c.want > math.MaxInt64-2 {
			wantTotal = 2 // the sum would overflow: Summarize leaves the record out
		}
		if s := Summarize(fb); s.Messages != wantTotal || s.Passed != 2 || s.Failed != wantTotal-2 {
			t.Errorf("%q: summary %d messages (%d+%d), want %d", c.count, s.Messages, s.Passed, s.Failed, wantTotal)
		}
	}
}

// nestedReportMessage is a report e-mail whose gzip attachment lies inside
// depth nested multipart/mixed parts. When pad > 0, each multipart first
// holds a text part of pad bytes.
func nestedReportMessage(depth, pad int) []byte {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(countReport("1")))
	zw.Close()
	var b bytes.Buffer
	b.WriteString("From: reporter@example.net\r\nTo: dmarc@example.com\r\nSubject: Report Domain: example.com\r\nMIME-Version: 1.0\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		if pad > 0 {
			fmt.Fprintf(&b, "Content-Type: text/plain\r\n\r\n%s\r\n--b%d\r\n", strings.Repeat("x", pad), i)
		}
	}
	b.WriteString("Content-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(base64.StdEncoding.EncodeToString(zb.Bytes()))
	b.WriteString("\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

// TestNestedMIME: a report e-mail may nest its parts in up to 8
// multiparts; a deeper one is refused as soon as the walk reaches the
// ninth, wrapping ErrSyntax, so a message of 10,000 nested multiparts
// (700 KB) costs no more than one of 8.
func TestNestedMIME(t *testing.T) {
	t.Parallel()
	for depth := range 9 {
		for _, pad := range []int{0, 100} {
			fb, err := ParseReport(bytes.NewReader(nestedReportMessage(depth, pad)), nil)
			if err != nil || len(fb.Records) != 2 {
				t.Errorf("depth %d, pad %d: %+v, %v", depth, pad, fb, err)
			}
		}
	}
	for _, depth := range []int{9, 10_000} {
		msg := nestedReportMessage(depth, 0)
		fb, err := ParseReport(bytes.NewReader(msg), nil)
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "nested") {
			t.Errorf("depth %d (%d bytes): %+v, %v", depth, len(msg), fb, err)
		}
	}
	// The walk is linear in the size of the message: every level of
	// multipart reads at most the whole message. (Unbounded, the
	// 10,000-deep message made its levels read 3 GB between them.)
	for _, c := range []struct{ depth, pad int }{{8, 0}, {8, 100_000}, {9, 100_000}, {10_000, 0}, {20_000, 0}} {
		msg := nestedReportMessage(c.depth, c.pad)
		p := &reportParser{max: maxReportSize}
		fb, err := p.parseBytes(msg, 0)
		if limit := int64(maxMIMEDepth+1) * int64(len(msg)); p.mimeBytes > limit || (fb == nil) == (c.depth <= maxMIMEDepth) {
			t.Errorf("depth %d, pad %d: the levels read %d bytes of %d, more than %d; %v", c.depth, c.pad, p.mimeBytes, len(msg), limit, err)
		}
		t.Logf("depth %d, pad %d: the levels read %d bytes of %d", c.depth, c.pad, p.mimeBytes, len(msg))
	}
}

// deepXMLReport is a report whose extension holds n nested <x> elements,
// closed when closed is true.
func deepXMLReport(n int, closed bool) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><feedback><report_metadata><org_name>r</org_name><report_id>1</report_id></report_metadata>` +
		`<policy_published><domain>example.com</domain></policy_published><extensions><extension name="x" definition="https://example.com/x">`)
	b.Write(bytes.Repeat([]byte("<x>"), n))
	if closed {
		b.Write(bytes.Repeat([]byte("</x>"), n))
		b.WriteString(`</extension></extensions></feedback>`)
	}
	return b.Bytes()
}

func gzipped(b []byte) []byte {
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return zb.Bytes()
}

// allocated is the bytes f allocates, from runtime.MemStats.TotalAlloc (of
// the whole process: the test calling it must not be parallel).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDeepXML: elements may nest 64 deep, wherever they are; a deeper
// element is refused as soon as it is read, wrapping ErrSyntax, so that 33
// MB of unclosed <x> in an extension (a 32 KB gzip file) is refused after
// reading a few of them, instead of costing a gigabyte of decoder stack.
// Not parallel: it measures allocations.
func TestDeepXML(t *testing.T) {
	// <feedback><extensions><extension> and 61 <x> are 64 levels.
	fb, err := ParseReport(bytes.NewReader(deepXMLReport(61, true)), nil)
	if err != nil || fb.Policy.Domain != "example.com" || len(fb.Extensions) != 1 || fb.Extensions[0].Name != "x" || len(fb.Problems) != 0 {
		t.Errorf("61 <x>: %+v, %v", fb, err)
	}
	// Unclosed, the document breaks off in the extension.
	fb, err = ParseReport(bytes.NewReader(deepXMLReport(61, false)), nil)
	if err != nil || fb.Policy.Domain != "example.com" || !strings.Contains(strings.Join(fb.Problems, "\n"), "breaks off") {
		t.Errorf("61 unclosed <x>: %+v, %v", fb, err)
	}
	for _, in := range [][]byte{deepXMLReport(62, true), deepXMLReport(62, false), gzipped(deepXMLReport(62, true)),
		[]byte(strings.Repeat("<feedback>", 65)), []byte("<feedback><record><row>" + strings.Repeat("<count>", 62) + "1")} {
		fb, err := ParseReport(bytes.NewReader(in), nil)
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "nested") {
			t.Errorf("%.80q: %+v, %v", in, fb, err)
		}
	}

	xmlBomb := deepXMLReport(11_000_000, false)
	bomb := gzipped(xmlBomb)
	if len(xmlBomb) > maxReportSize || len(bomb) > 64<<10 {
		t.Fatalf("the bomb is %d bytes, %d gzipped", len(xmlBomb), len(bomb))
	}
	n := allocated(func() { _, err = ParseReport(bytes.NewReader(bomb), nil) })
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "nested") {
		t.Errorf("bomb: %v", err)
	}
	// What remains is inflating the gzip, which MaxSize bounds.
	inflate := allocated(func() {
		zr, _ := gzip.NewReader(bytes.NewReader(bomb))
		readLimited(zr, maxReportSize)
	})
	if n > inflate+1<<20 {
		t.Errorf("ParseReport of the bomb allocated %d bytes, inflating it %d", n, inflate)
	}
	t.Logf("ParseReport of the %d-byte bomb (%d inflated) allocated %d bytes, inflating it %d", len(bomb), len(xmlBomb), n, inflate)
	// The XML walk alone: reading the whole tree held the decoder's stack
	// of 11 million elements (more than a gigabyte).
	n = allocated(func() { _, err = parseFeedbackXML(xmlBomb) })
	if !errors.Is(err, ErrSyntax) || n > 1<<20 {
		t.Errorf("the XML walk of the bomb allocated %d bytes: %v", n, err)
	}
	t.Logf("the XML walk allocated %d bytes", n)
}

// TestReportBoundedWork: a report cannot make the parser hold or do more
// than its limits: problems are counted past the first hundred, the
// members of a zip share one decompression budget, and an e-mail of
// thousands of parts is refused.
func TestReportBoundedWork(t *testing.T) {
	t.Parallel()
	var x strings.Builder
	x.WriteString(`<feedback><report_metadata><org_name>o</org_name><report_id>1</report_id></report_metadata><policy_published><domain>example.com</domain></policy_published>`)
	for range 5000 {
		x.WriteString(`<record><row><source_ip>192.0.2.1</source_ip><count>-1</count></row></record>`)
	}
	x.WriteString(`</feedback>`)
	fb, err := ParseReport(strings.NewReader(x.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.Problems) != 100 || fb.Problems[99] != "and 4901 more problems" {
		t.Errorf("%d problems, last %q; want 100, the last counting 4901 more", len(fb.Problems), fb.Problems[len(fb.Problems)-1])
	}

	// Three zip members of 400 KiB each, under a limit of 1 MiB: each fits
	// alone, not all three.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for i := range 3 {
		w, _ := zw.Create(fmt.Sprintf("m%d.xml", i))
		w.Write(bytes.Repeat([]byte("not a report "), 400<<10/13))
	}
	zw.Close()
	if _, err := ParseReport(bytes.NewReader(zb.Bytes()), &ReportOptions{MaxSize: 1 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("zip members inflating past the limit together: %v, want ErrTooLarge", err)
	}

	var m strings.Builder
	m.WriteString("From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range 2000 {
		m.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	m.WriteString("--b--\r\n")
	if _, err := ParseReport(strings.NewReader(m.String()), nil); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "parts") {
		t.Errorf("an e-mail of 2000 parts: %v, want a refusal naming the parts", err)
	}
}
