package dmarc

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// Reporter gathers evaluations and produces RFC 7489 §7.2 aggregate
// reports, one per policy domain and reporting period. Make one with
// NewReporter; it is safe for concurrent use.
type Reporter struct {
	orgName, email, domain, extra string
	period                        time.Duration
	now                           func() time.Time
	rand                          io.Reader

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
}

// ReporterOptions configure a Reporter. A nil *ReporterOptions, like the
// zero value, means every default.
type ReporterOptions struct {
	// Domain is the reporting organization's domain, the "receiver" of the
	// report filename and the "Submitter" of the subject (RFC 7489
	// §7.2.1.1). Default: the domain of the email address.
	Domain string
	// ExtraContactInfo is report_metadata/extra_contact_info (RFC 7489
	// Appendix C). Default: none.
	ExtraContactInfo string
	// Period is the reporting period, at least a second. Periods start at
	// multiples of Period since the Unix epoch, so daily reports cover UTC
	// days. Default: 24 hours, the ri= default (RFC 7489 §6.3).
	Period time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Rand makes report IDs and Message-IDs. Default: crypto/rand.Reader.
	Rand io.Reader
}

// NewReporter returns a Reporter for the reporting organization orgName
// (report_metadata/org_name, RFC 7489 Appendix C), whose contact address
// email is report_metadata/email and the From of the report messages
// (§7.2.1.1). It fails when orgName is empty, email is not an address
// (RFC 5322 §3.4) or Period is under a second.
func NewReporter(orgName, email string, opts *ReporterOptions) (*Reporter, error) {
	if strings.TrimSpace(orgName) == "" {
		return nil, errors.New("dmarc: NewReporter: empty organization name")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil {
		return nil, fmt.Errorf("dmarc: NewReporter: email %q: %w", email, err)
	}
	var o ReporterOptions
	if opts != nil {
		o = *opts
	}
	if o.Period != 0 && o.Period < time.Second {
		return nil, fmt.Errorf("dmarc: NewReporter: Period %v is under a second", o.Period)
	}
	rp := &Reporter{orgName: orgName, email: email, domain: normalizeDomain(o.Domain), extra: o.ExtraContactInfo,
		period: o.Period, now: o.Now, rand: o.Rand}
	if rp.domain == "" {
		rp.domain = normalizeDomain(addr.Address[strings.LastIndexByte(addr.Address, '@')+1:])
	}
	if rp.period == 0 {
		rp.period = 24 * time.Hour
	}
	if rp.now == nil {
		rp.now = time.Now
	}
	if rp.rand == nil {
		rp.rand = rand.Reader
	}
	return rp, nil
}

type bucketKey struct {
	domain string
	begin  int64
}

type bucket struct {
	policy PolicyPublished
	rua    []URI
	rows   map[string]*ReportRecord
	order  []string
}

// spfKeywords and dkimKeywords are the results the RFC 7489 schema admits.
var (
	spfKeywords  = []string{"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"}
	dkimKeywords = []string{"none", "pass", "fail", "policy", "neutral", "temperror", "permerror"}
)

func keyword(v string, allowed []string) string {
	v = strings.ToLower(v)
	switch v {
	case "hardfail":
		return "fail"
	case "unknown":
		return "temperror"
	case "error":
		return "permerror"
	}
	if slices.Contains(allowed, v) {
		return v
	}
	return "none"
}

// Add records one message from the connecting address source, evaluated
// as r: its policy, disposition and aligned results, and the SPF and DKIM
// results it evaluated (r.Inputs). Messages without a valid source
// address, those that neither passed nor failed (no policy record
// applied, or an error), and those whose record asks for no aggregate
// reports (no rua=) are not recorded (RFC 9989 §4.7: without rua=
// receivers "MUST NOT generate aggregate feedback reports").
func (rp *Reporter) Add(source netip.Addr, r *Result) {
	if r == nil || r.Record == nil || !source.IsValid() || len(r.Record.AggregateURIs) == 0 || (r.Status != Pass && r.Status != Fail) {
		return
	}
	source = source.Unmap()
	row := Row{SourceIP: source, SourceIPText: source.String(), Count: 1, PolicyEvaluated: policyEvaluated(r)}
	ids, ar := reportedInputs(r)
	pe := &row.PolicyEvaluated
	var key strings.Builder
	fmt.Fprintf(&key, "%s|%s|%s|%s|%v|%s|%s|%v|%v", row.SourceIPText, pe.Disposition, pe.DKIM, pe.SPF, pe.Reasons,
		ids.EnvelopeFrom, ids.HeaderFrom, ar.DKIM, ar.SPF)

	bk := bucketKey{domain: r.PolicyDomain, begin: rp.now().Truncate(rp.period).Unix()}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.buckets == nil {
		rp.buckets = map[bucketKey]*bucket{}
	}
	b := rp.buckets[bk]
	if b == nil {
		b = &bucket{rows: map[string]*ReportRecord{}}
		rp.buckets[bk] = b
	}
	b.policy, b.rua = policyPublished(r), r.Record.AggregateURIs
	if existing := b.rows[key.String()]; existing != nil {
		existing.Row.Count++
		return
	}
	b.rows[key.String()] = &ReportRecord{Row: row, Identifiers: ids, AuthResults: ar}
	b.order = append(b.order, key.String())
}

// policyPublished is the record r applied, with its defaults, as a report
// gives it (RFC 7489 Appendix C).
func policyPublished(r *Result) PolicyPublished {
	rec := r.Record
	pp := PolicyPublished{
		Domain: r.PolicyDomain,
		ADKIM:  string(rec.DKIMAlignment()),
		ASPF:   string(rec.SPFAlignment()),
		P:      string(rec.Policy),
		SP:     string(rec.SubdomainPolicy),
		Pct:    strconv.Itoa(rec.Pct()),
		FO:     rec.FO(),
	}
	if pp.P == "" {
		pp.P = string(PolicyNone)
	}
	if pp.SP == "" {
		pp.SP = pp.P
	}
	return pp
}

// policyEvaluated is the disposition and the DMARC-aligned results of r.
func policyEvaluated(r *Result) PolicyEvaluated {
	pe := PolicyEvaluated{Disposition: string(r.Disposition), DKIM: "fail", SPF: "fail"}
	if pe.Disposition == "" {
		pe.Disposition = string(PolicyNone)
	}
	if r.DKIM == Pass {
		pe.DKIM = "pass"
	}
	if r.SPF == Pass {
		pe.SPF = "pass"
	}
	if r.SampledOut {
		pe.Reasons = append(pe.Reasons, PolicyOverrideReason{Type: "sampled_out"})
	}
	if r.TestMode {
		// RFC 9990's policy_test_mode is not in the RFC 7489 schema.
		pe.Reasons = append(pe.Reasons, PolicyOverrideReason{Type: "other", Comment: "policy_test_mode (t=y)"})
	}
	return pe
}

// reportedInputs returns the identifiers and the SPF and DKIM results of
// r.Inputs as a report gives them: results mapped to the keywords of the
// RFC 7489 schema, and always one SPF result, "none" when there was none
// (the schema requires one).
func reportedInputs(r *Result) (Identifiers, AuthResults) {
	ids := Identifiers{HeaderFrom: r.AuthorDomain}
	var ar AuthResults
	for _, k := range r.Inputs.DKIM {
		ar.DKIM = append(ar.DKIM, DKIMAuthResult{Domain: k.Domain, Selector: k.Selector, Result: keyword(k.Result, dkimKeywords)})
	}
	spfs := r.Inputs.SPF
	if len(spfs) == 0 {
		spfs = []SPFAuthResult{{Scope: "mfrom", Result: "none"}}
	}
	for i, s := range spfs {
		scope := strings.ToLower(s.Scope)
		if scope != "helo" {
			scope = "mfrom"
		}
		if i == 0 && scope == "mfrom" {
			ids.EnvelopeFrom = s.Domain
		}
		ar.SPF = append(ar.SPF, SPFAuthResult{Domain: s.Domain, Scope: scope, Result: keyword(s.Result, spfKeywords)})
	}
	return ids, ar
}

// AggregateReport is one report ready to send.
type AggregateReport struct {
	Feedback *Feedback
	// Domain is the policy domain reported on.
	Domain string
	// Destinations are the rua= URIs of the record; check them with
	// Evaluator.ReportDestinations before sending (RFC 7489 §7.1).
	Destinations []URI
	// Submitter is the reporting domain.
	Submitter string
	from      string
	rand      io.Reader
}

// Reports returns the reports of the periods that have ended and forgets
// them. With all set it returns every report, including the current
// period's (at shutdown).
func (rp *Reporter) Reports(all bool) ([]*AggregateReport, error) {
	now := rp.now()
	per := rp.period
	rp.mu.Lock()
	var keys []bucketKey
	for k := range rp.buckets {
		end := time.Unix(k.begin, 0).Add(per)
		if all || !now.Before(end) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b bucketKey) int {
		if c := cmp.Compare(a.begin, b.begin); c != 0 {
			return c
		}
		return strings.Compare(a.domain, b.domain)
	})
	taken := make([]*bucket, len(keys))
	for i, k := range keys {
		taken[i] = rp.buckets[k]
		delete(rp.buckets, k)
	}
	rp.mu.Unlock()

	var out []*AggregateReport
	for i, k := range keys {
		b := taken[i]
		id, err := randomID(rp.rand, 8)
		if err != nil {
			return out, err
		}
		fb := &Feedback{
			Version: "1.0",
			Metadata: ReportMetadata{
				OrgName:          rp.orgName,
				Email:            rp.email,
				ExtraContactInfo: rp.extra,
				ReportID:         fmt.Sprintf("%s.%d.%s", k.domain, k.begin, id),
				DateRange:        DateRange{Begin: k.begin, End: k.begin + int64(per/time.Second) - 1},
			},
			Policy: b.policy,
		}
		for _, key := range b.order {
			fb.Records = append(fb.Records, *b.rows[key])
		}
		out = append(out, &AggregateReport{Feedback: fb, Domain: k.domain, Destinations: b.rua, Submitter: rp.domain, from: rp.email, rand: rp.rand})
	}
	return out, nil
}

func randomID(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("dmarc: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// XML returns the report as an RFC 7489 Appendix C document.
func (a *AggregateReport) XML() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(a.Feedback); err != nil {
		return nil, fmt.Errorf("dmarc: encoding report: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Gzip returns the report XML, gzip-compressed (RFC 7489 §7.2.1.1).
func (a *AggregateReport) Gzip() ([]byte, error) {
	x, err := a.XML()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Name = strings.TrimSuffix(a.Filename(), ".gz")
	zw.ModTime = time.Unix(a.Feedback.Metadata.DateRange.End, 0)
	zw.Write(x)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Filename returns the name of the gzip attachment (RFC 7489 §7.2.1.1):
// receiver "!" policy-domain "!" begin-timestamp "!" end-timestamp ".xml.gz".
func (a *AggregateReport) Filename() string {
	dr := a.Feedback.Metadata.DateRange
	return fmt.Sprintf("%s!%s!%d!%d.xml.gz", a.Submitter, a.Domain, dr.Begin, dr.End)
}

// Subject returns the subject of the report message (RFC 7489 §7.2.1.1):
// "Report Domain: <domain> Submitter: <submitter> Report-ID: <<id>>".
func (a *AggregateReport) Subject() string {
	return fmt.Sprintf("Report Domain: %s Submitter: %s Report-ID: <%s>", a.Domain, a.Submitter, a.Feedback.Metadata.ReportID)
}

// WriteMessage writes the report e-mail (RFC 7489 §7.2.1.1) to the given
// addresses: a multipart/mixed message with a short text part and the
// gzipped report as an application/gzip attachment, dated date.
func (a *AggregateReport) WriteMessage(w io.Writer, to []string, date time.Time) error {
	if len(to) == 0 {
		return errors.New("dmarc: report message without recipients")
	}
	gz, err := a.Gzip()
	if err != nil {
		return err
	}
	var h gomail.Header
	from, err := mail.ParseAddress(a.from)
	if err != nil {
		return fmt.Errorf("dmarc: report sender %q: %w", a.from, err)
	}
	h.SetAddressList("From", []*gomail.Address{{Name: from.Name, Address: from.Address}})
	var tos []*gomail.Address
	for _, t := range to {
		ta, err := mail.ParseAddress(t)
		if err != nil {
			return fmt.Errorf("dmarc: report recipient %q: %w", t, err)
		}
		tos = append(tos, &gomail.Address{Name: ta.Name, Address: ta.Address})
	}
	h.SetAddressList("To", tos)
	h.SetDate(date)
	h.SetSubject(a.Subject())
	id, err := randomID(a.rand, 12)
	if err != nil {
		return err
	}
	h.SetMessageID(id + "@" + a.Submitter)
	mw, err := gomail.CreateWriter(w, h)
	if err != nil {
		return err
	}
	var th gomail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	tw, err := mw.CreateSingleInline(th)
	if err != nil {
		return err
	}
	dr := a.Feedback.Metadata.DateRange
	fmt.Fprintf(tw, "DMARC aggregate report for %s from %s,\r\ncovering %s to %s (UTC).\r\n", a.Domain, a.Submitter,
		time.Unix(dr.Begin, 0).UTC().Format(time.RFC3339), time.Unix(dr.End, 0).UTC().Format(time.RFC3339))
	if err := tw.Close(); err != nil {
		return err
	}
	var ah gomail.AttachmentHeader
	ah.SetContentType("application/gzip", nil)
	ah.SetFilename(a.Filename())
	ah.Set("Content-Transfer-Encoding", "base64")
	aw, err := mw.CreateAttachment(ah)
	if err != nil {
		return err
	}
	if _, err := aw.Write(gz); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	return mw.Close()
}
