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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// Reporter gathers evaluations and produces RFC 7489 §7.2 aggregate
// reports, one per policy domain and reporting period. Fill the exported
// fields before the first Add; a Reporter is safe for concurrent use.
type Reporter struct {
	// OrgName is report_metadata/org_name, the reporting organization
	// (RFC 7489 Appendix C). Required.
	OrgName string
	// Email is report_metadata/email and the From of report messages.
	// Required.
	Email string
	// Domain is the reporting organization's domain, the "receiver" of the
	// report filename and the "Submitter" of the subject (RFC 7489
	// §7.2.1.1). Default: the domain of Email.
	Domain string
	// ExtraContactInfo is report_metadata/extra_contact_info; optional.
	ExtraContactInfo string
	// Period is the reporting period. Default 24 hours (the ri= default,
	// RFC 7489 §6.3). Periods start at multiples of Period since the Unix
	// epoch, so daily reports cover UTC days.
	Period time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand makes report IDs and Message-IDs. Default crypto/rand.Reader.
	Rand io.Reader

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
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

func (rp *Reporter) period() time.Duration {
	if rp.Period > 0 {
		return rp.Period
	}
	return 24 * time.Hour
}

func (rp *Reporter) now() time.Time {
	if rp.Now != nil {
		return rp.Now()
	}
	return time.Now()
}

func (rp *Reporter) submitter() string {
	if rp.Domain != "" {
		return normalizeDomain(rp.Domain)
	}
	if i := strings.LastIndexByte(rp.Email, '@'); i >= 0 {
		return normalizeDomain(rp.Email[i+1:])
	}
	return ""
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

// Add records one evaluated message; p.SourceIP must be valid. Messages
// without a source address, those for which no policy record applied, and
// those whose record asks for no aggregate reports (no rua=) are not
// recorded (RFC 9989 §4.7: without rua= receivers "MUST NOT generate
// aggregate feedback reports").
func (rp *Reporter) Add(p *Params, r *Result) {
	if r == nil || r.Record == nil || !p.SourceIP.IsValid() || len(r.Record.AggregateURIs) == 0 || (r.Status != StatusPass && r.Status != StatusFail) {
		return
	}
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
	row := Row{SourceIP: p.SourceIP.Unmap(), SourceIPText: p.SourceIP.Unmap().String(), Count: 1}
	pe := &row.PolicyEvaluated
	pe.Disposition = string(r.Disposition)
	if pe.Disposition == "" {
		pe.Disposition = string(PolicyNone)
	}
	pe.DKIM, pe.SPF = "fail", "fail"
	if r.DKIM == StatusPass {
		pe.DKIM = "pass"
	}
	if r.SPF == StatusPass {
		pe.SPF = "pass"
	}
	if r.SampledOut {
		pe.Reasons = append(pe.Reasons, PolicyOverrideReason{Type: "sampled_out"})
	}
	if r.TestMode {
		// RFC 9990's policy_test_mode is not in the RFC 7489 schema.
		pe.Reasons = append(pe.Reasons, PolicyOverrideReason{Type: "other", Comment: "policy_test_mode (t=y)"})
	}
	scope := strings.ToLower(p.SPF.Scope)
	if scope != "helo" {
		scope = "mfrom"
	}
	ids := Identifiers{HeaderFrom: r.AuthorDomain}
	if scope == "mfrom" {
		ids.EnvelopeFrom = normalizeDomain(p.SPF.Domain)
	}
	var ar AuthResults
	for _, k := range p.DKIM {
		ar.DKIM = append(ar.DKIM, DKIMAuthResult{Domain: normalizeDomain(k.Domain), Selector: k.Selector, Result: keyword(string(k.Result), dkimKeywords)})
	}
	ar.SPF = []SPFAuthResult{{Domain: normalizeDomain(p.SPF.Domain), Scope: scope, Result: keyword(string(p.SPF.Result), spfKeywords)}}

	var key strings.Builder
	fmt.Fprintf(&key, "%s|%s|%s|%s|%v|%s|%s|%s|%v|%v", row.SourceIPText, pe.Disposition, pe.DKIM, pe.SPF, pe.Reasons,
		ids.EnvelopeFrom, ids.HeaderFrom, scope, ar.DKIM, ar.SPF)

	per := rp.period()
	begin := rp.now().Truncate(per).Unix()
	bk := bucketKey{domain: r.PolicyDomain, begin: begin}

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
	b.policy, b.rua = pp, rec.AggregateURIs
	if existing := b.rows[key.String()]; existing != nil {
		existing.Row.Count++
		return
	}
	b.rows[key.String()] = &ReportRecord{Row: row, Identifiers: ids, AuthResults: ar}
	b.order = append(b.order, key.String())
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
	per := rp.period()
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
		id, err := randomID(rp.Rand, 8)
		if err != nil {
			return out, err
		}
		fb := &Feedback{
			Version: "1.0",
			Metadata: ReportMetadata{
				OrgName:          rp.OrgName,
				Email:            rp.Email,
				ExtraContactInfo: rp.ExtraContactInfo,
				ReportID:         fmt.Sprintf("%s.%d.%s", k.domain, k.begin, id),
				DateRange:        DateRange{Begin: k.begin, End: k.begin + int64(per/time.Second) - 1},
			},
			Policy: b.policy,
		}
		for _, key := range b.order {
			fb.Records = append(fb.Records, *b.rows[key])
		}
		out = append(out, &AggregateReport{Feedback: fb, Domain: k.domain, Destinations: b.rua, Submitter: rp.submitter(), from: rp.Email, rand: rp.Rand})
	}
	return out, nil
}

func randomID(r io.Reader, n int) (string, error) {
	if r == nil {
		r = rand.Reader
	}
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
