package dmarc

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/internal/peertest"
)

// fixedReporter returns a Reporter with a fixed clock and randomness and
// the evaluations of a small day of mail added.
func fixedReporter(t *testing.T) *Reporter {
	t.Helper()
	z := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject; pct=50; rua=mailto:dmarc@example.com"
_dmarc.example.org. TXT "v=DMARC1; p=quarantine; sp=none; adkim=s; rua=mailto:agg@reports.example.net"
_dmarc.nopolicy.example. TXT "v=DMARC1; p=reject"`)
	now := time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC)
	rp, err := NewReporter("Receiver Example", "dmarc-noreply@receiver.example", &ReporterOptions{Now: func() time.Time { return now },
		Rand: bytes.NewReader(bytes.Repeat([]byte{0xab}, 1024))})
	if err != nil {
		t.Fatal(err)
	}
	e := newEvaluator(t, z, &Options{Rules: RFC7489, Rand: bytes.NewReader(bytes.Repeat([]byte{0, 0, 0, 0, 0, 0, 0, 99}, 64))})
	add := func(ip string, from string, results ...authres.Result) {
		rp.Add(netip.MustParseAddr(ip), e.Evaluate(context.Background(), header(from), entries(results...)))
	}
	dkim := func(domain, selector string, value authres.ResultValue) authres.Result {
		return &authres.GenericResult{Method: "dkim", Value: value, Params: map[string]string{"header.d": domain, "header.s": selector}}
	}
	for range 3 {
		add("192.0.2.1", "a@example.com", spfResult("example.com", "pass"), dkim("example.com", "s1", "pass"))
	}
	add("2001:db8::25", "a@example.com", spfResult("bounce.example.net", "pass"), dkim("example.net", "x", "pass"))
	add("::ffff:198.51.100.7", "a@example.com", &authres.SPFResult{Value: "softfail", Helo: "mta.example"})
	add("198.51.100.8", "b@mail.example.org", spfResult("example.org", "pass"), dkim("example.org", "s", "fail"))
	add("198.51.100.9", "c@nopolicy.example", spfResult("nopolicy.example", "fail"))
	return rp
}

func TestReporterReports(t *testing.T) {
	rp := fixedReporter(t)
	if got, _ := rp.Reports(false); len(got) != 0 {
		t.Fatalf("period not over, got %d reports", len(got))
	}
	reports, err := rp.Reports(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2 (nopolicy.example has no rua=)", len(reports))
	}
	a := reports[0]
	if a.Domain != "example.com" || reports[1].Domain != "example.org" {
		t.Fatalf("domains %s %s", a.Domain, reports[1].Domain)
	}
	dr := a.Feedback.Metadata.DateRange
	if dr.Begin != time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).Unix() || dr.End != dr.Begin+86399 {
		t.Errorf("date range %+v", dr)
	}
	// RFC 7489 §7.2.1.1: filename and subject.
	if want := "receiver.example!example.com!" + itoa(dr.Begin) + "!" + itoa(dr.End) + ".xml.gz"; a.Filename() != want {
		t.Errorf("filename %q, want %q", a.Filename(), want)
	}
	if !regexp.MustCompile(`^Report Domain: example\.com Submitter: receiver\.example Report-ID: <[^<>@ ]+>$`).MatchString(a.Subject()) {
		t.Errorf("subject %q", a.Subject())
	}
	recs := a.Feedback.Records
	if len(recs) != 3 || recs[0].Row.Count != 3 || recs[0].Row.PolicyEvaluated.Disposition != "none" || recs[0].Row.PolicyEvaluated.DKIM != "pass" {
		t.Fatalf("records %+v", recs)
	}
	// 2001:db8::25: SPF and DKIM pass for other domains: DMARC fails.
	// pct=50 and the draw 99 >= 50: sampled out to quarantine.
	r1 := recs[1]
	if r1.Row.PolicyEvaluated.DKIM != "fail" || r1.Row.PolicyEvaluated.SPF != "fail" || r1.Row.PolicyEvaluated.Disposition != "quarantine" ||
		len(r1.Row.PolicyEvaluated.Reasons) != 1 || r1.Row.PolicyEvaluated.Reasons[0].Type != "sampled_out" {
		t.Errorf("record 2 %+v", r1.Row)
	}
	if r2 := recs[2]; r2.Row.SourceIP.String() != "198.51.100.7" || r2.AuthResults.SPF[0].Scope != "helo" || r2.Identifiers.EnvelopeFrom != "" {
		t.Errorf("record 3 %+v", r2)
	}
	if p := a.Feedback.Policy; p.P != "reject" || p.SP != "reject" || p.Pct != "50" || p.FO != "0" || p.ADKIM != "r" {
		t.Errorf("policy %+v", p)
	}
	// The XML reads back to the same report.
	x, err := a.XML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(x, []byte("<source_ip>2001:0db8:0000:0000:0000:0000:0000:0025</source_ip>")) {
		t.Errorf("IPv6 not in the full form the schema requires:\n%s", x)
	}
	back, err := ParseReport(bytes.NewReader(x), nil)
	if err != nil || len(back.Problems) != 0 || len(back.Records) != 3 || back.Records[1].Row.SourceIP != netip.MustParseAddr("2001:db8::25") ||
		back.Metadata.ReportID != a.Feedback.Metadata.ReportID || back.Version != "1.0" {
		t.Errorf("read back: %+v %v", back, err)
	}
	if got, _ := rp.Reports(true); len(got) != 0 {
		t.Errorf("reports not forgotten")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestReportValidatesXSD validates generated reports against the RFC 7489
// Appendix C schema with libxml2's xmllint (Debian libxml2-utils).
func TestReportValidatesXSD(t *testing.T) {
	xmllint := peertest.Program(t, "xmllint")
	reports, err := fixedReporter(t).Reports(true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	xsd, _ := filepath.Abs("testdata/xsd/rfc7489-appendix-c-rua.no-namespace.xsd")
	for i, a := range reports {
		x, err := a.XML()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "report"+itoa(int64(i))+".xml")
		os.WriteFile(f, x, 0o644)
		out, err := exec.Command(xmllint, "--noout", "--schema", xsd, f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "validates") {
			t.Errorf("report %d does not validate: %v\n%s\n%s", i, err, out, x)
		}
	}
	// The check is real: a report without the required <version> fails.
	bad := bytes.Replace(mustXML(t, reports[0]), []byte("<version>1.0</version>"), nil, 1)
	f := filepath.Join(dir, "bad.xml")
	os.WriteFile(f, bad, 0o644)
	if out, err := exec.Command(xmllint, "--noout", "--schema", xsd, f).CombinedOutput(); err == nil {
		t.Errorf("report without version validated:\n%s", out)
	}
}

func mustXML(t *testing.T, a *AggregateReport) []byte {
	x, err := a.XML()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestReportMessage(t *testing.T) {
	reports, _ := fixedReporter(t).Reports(true)
	a := reports[0]
	var buf bytes.Buffer
	date := time.Date(2026, 11, 27, 0, 5, 0, 0, time.UTC)
	if err := a.WriteMessage(&buf, []string{"dmarc@example.com"}, date); err != nil {
		t.Fatal(err)
	}
	msg := buf.String()
	unfolded := strings.ReplaceAll(msg, "\r\n ", " ")
	for _, want := range []string{"From: <dmarc-noreply@receiver.example>", "To: <dmarc@example.com>", "Subject: " + a.Subject(),
		"Content-Type: application/gzip", "filename=" + a.Filename(), "Message-Id: <", "Date: Fri, 27 Nov 2026 00:05:00 +0000"} {
		if !strings.Contains(unfolded, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	fb, err := ParseReport(strings.NewReader(msg), nil)
	if err != nil || fb.Metadata.ReportID != a.Feedback.Metadata.ReportID || len(fb.Records) != 3 {
		t.Fatalf("read back %+v %v", fb, err)
	}
	// An independent MIME reader: Python's email package, when present.
	py := peertest.Python(t)
	script := `
import email, email.policy, gzip, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
parts = [p for p in m.walk() if not p.is_multipart()]
att = [p for p in parts if p.get_content_type() == "application/gzip"][0]
x = gzip.decompress(att.get_payload(decode=True)).decode()
print(m.get_content_type(), att.get_filename(), x.count("<record>"), m["Subject"])
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if want := "multipart/mixed " + a.Filename() + " 3 " + a.Subject() + "\n"; string(out) != want {
		t.Errorf("python read %q, want %q", out, want)
	}
}

func TestNewReporter(t *testing.T) {
	for _, c := range []struct {
		org, email string
		opts       *ReporterOptions
	}{
		{"", "r@r.example", nil},
		{"r", "", nil},
		{"r", "not an address", nil},
		{"r", "r@r.example", &ReporterOptions{Period: time.Millisecond}},
		{"r", "r@r.example", &ReporterOptions{Period: -time.Hour}},
	} {
		if rp, err := NewReporter(c.org, c.email, c.opts); err == nil || rp != nil {
			t.Errorf("%q %q %+v: accepted", c.org, c.email, c.opts)
		}
	}
	rp, err := NewReporter("Receiver", "DMARC <dmarc@Reports.Receiver.example>", nil)
	if err != nil || rp.domain != "reports.receiver.example" || rp.period != 24*time.Hour || rp.now == nil || rp.rand == nil {
		t.Errorf("defaults: %+v %v", rp, err)
	}
}

func TestReporterPeriods(t *testing.T) {
	now := time.Date(2026, 1, 1, 23, 59, 0, 0, time.UTC)
	rp, err := NewReporter("r", "r@r.example", &ReporterOptions{Period: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	z := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=none; rua=mailto:d@example.com"`)
	e := newEvaluator(t, z, nil)
	src := netip.MustParseAddr("192.0.2.1")
	rp.Add(src, e.Evaluate(context.Background(), header("a@example.com")))
	now = now.Add(2 * time.Minute)
	rp.Add(src, e.Evaluate(context.Background(), header("a@example.com")))
	reports, _ := rp.Reports(false)
	if len(reports) != 1 || reports[0].Feedback.Metadata.DateRange.End != time.Date(2026, 1, 1, 23, 59, 59, 0, time.UTC).Unix() {
		t.Fatalf("%+v", reports)
	}
	if reports, _ := rp.Reports(true); len(reports) != 1 || reports[0].Feedback.Metadata.DateRange.Begin != time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).Unix() {
		t.Fatalf("%+v", reports)
	}
	// Without a source address nothing is recorded.
	rp.Add(netip.Addr{}, e.Evaluate(context.Background(), header("a@example.com")))
	if reports, _ := rp.Reports(true); len(reports) != 0 {
		t.Errorf("recorded without source IP")
	}
}

// TestExternalDestinations: RFC 7489 §7.1 and its Appendix B.2.3/B.2.4
// example shapes.
func TestExternalDestinations(t *testing.T) {
	ctx := context.Background()
	z := dnstest.MustParseZone(`
example.com._report._dmarc.thirdparty.example.net. TXT "v=DMARC1"
example.com._report._dmarc.override.example. TXT "v=DMARC1; rua=mailto:other@override.example, mailto:evil@elsewhere.example"
example.com._report._dmarc.refuses.example. TXT "v=spf1 -all"`)
	z.Fail("example.com._report._dmarc.down.example", dns.TypeTXT, dnstest.ServFail)
	rec, _ := Parse("v=DMARC1; p=none; rua=mailto:d@example.com, mailto:d@sub.example.com, mailto:x@thirdparty.example.net, mailto:y@override.example, mailto:z@refuses.example, mailto:w@unknown.example, https://example.com/r")
	e := newEvaluator(t, z, rfc7489)
	got, err := e.ReportDestinations(ctx, "example.com", rec.AggregateURIs, true)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, u := range got {
		addrs = append(addrs, u.Address())
	}
	if want := "d@example.com d@sub.example.com x@thirdparty.example.net other@override.example"; strings.Join(addrs, " ") != want {
		t.Errorf("got %v, want %s", addrs, want)
	}
	ok, _, err := e.ExternalAuthorized(ctx, "example.com", "down.example")
	if ok || !errors.Is(err, ErrDNS) {
		t.Errorf("down: %v %v", ok, err)
	}
	// The RFC 9989 rules reach the same answer with tree walks.
	z.AddTXT("_dmarc.example.com", "v=DMARC1; p=none")
	e9 := newEvaluator(t, z, nil)
	got, err = e9.ReportDestinations(ctx, "example.com", rec.AggregateURIs, true)
	if err != nil || len(got) != 4 {
		t.Errorf("RFC 9989: %v %v", got, err)
	}
}
