package dmarc

import (
	"encoding/xml"
	"net/netip"
	"strconv"
	"strings"
)

// Feedback is a DMARC aggregate report (RFC 7489 Appendix C; the elements
// RFC 9990 adds are read too). Enumerated values (dispositions, results,
// alignment modes) are kept as the lower-cased text of the report, since
// received reports use values outside the schema.
type Feedback struct {
	XMLName    xml.Name        `xml:"feedback"`
	Version    string          `xml:"version,omitempty"`
	Metadata   ReportMetadata  `xml:"report_metadata"`
	Policy     PolicyPublished `xml:"policy_published"`
	Records    []ReportRecord  `xml:"record"`
	Extensions Extensions      `xml:"extensions,omitempty"`
	// Problems lists what a lenient parse had to overlook: unparsable
	// addresses or numbers, records left out for their count, an XML
	// document that breaks off. At most 100: the last then counts those
	// left out. Never written.
	Problems []string `xml:"-"`
	unlisted int      // problems past the first ones, counted in the last
}

// ReportMetadata is report_metadata.
type ReportMetadata struct {
	OrgName          string    `xml:"org_name"`
	Email            string    `xml:"email"`
	ExtraContactInfo string    `xml:"extra_contact_info,omitempty"`
	ReportID         string    `xml:"report_id"`
	DateRange        DateRange `xml:"date_range"`
	Errors           []string  `xml:"error,omitempty"`
	Generator        string    `xml:"generator,omitempty"` // RFC 9990
}

// DateRange is the period covered, in seconds since the Unix epoch (UTC).
type DateRange struct {
	Begin int64 `xml:"begin"`
	End   int64 `xml:"end"`
}

// UnmarshalXML reads the range leniently: "1337270400.0" is 1337270400.
func (d *DateRange) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	var raw struct {
		Begin string `xml:"begin"`
		End   string `xml:"end"`
	}
	err := dec.DecodeElement(&raw, &start)
	d.Begin, _ = parseNumber(raw.Begin)
	d.End, _ = parseNumber(raw.End)
	return err
}

// parseNumber reads an integer, tolerating white space and a fraction.
func parseNumber(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= -9e18 && f <= 9e18 {
		return int64(f), true
	}
	return 0, false
}

// maxQuoted is how much of a refused value a problem quotes.
const maxQuoted = 40

// parseCount reads the count of a row (RFC 7489 Appendix C: xs:integer, a
// number of messages): a whole number from 0 to 2^63-1, in decimal
// digits with an optional sign, tolerating white space and a fraction of
// zeros ("12.0"), as reporters write numbers. Anything else is refused,
// with the reason: a negative, fractional or too large number, text that
// is not a decimal number (exponents and hexadecimal included), an empty
// or absent count. A refused count is 0.
func parseCount(s string) (int64, string) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, "no count"
	}
	quoted := t
	if len(quoted) > maxQuoted {
		quoted = quoted[:maxQuoted] + "..."
	}
	quoted = strconv.Quote(quoted)
	digits := strings.TrimPrefix(t, "+")
	neg := false
	if digits == t {
		digits, neg = strings.CutPrefix(t, "-")
	}
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return 0, "count " + quoted + " is not a number"
	}
	if neg && strings.Trim(whole+frac, "0") != "" {
		return 0, "count " + quoted + " is negative"
	}
	if strings.Trim(frac, "0") != "" {
		return 0, "count " + quoted + " is not a whole number"
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, "count " + quoted + " is too large"
	}
	return n, ""
}

// PolicyPublished is policy_published: the record the reporter found.
type PolicyPublished struct {
	Domain          string `xml:"domain"`
	ADKIM           string `xml:"adkim,omitempty"`
	ASPF            string `xml:"aspf,omitempty"`
	P               string `xml:"p"`
	SP              string `xml:"sp"`
	NP              string `xml:"np,omitempty"`      // RFC 9990
	T               string `xml:"t,omitempty"`       // RFC 9990
	Testing         string `xml:"testing,omitempty"` // drafts of RFC 9990
	PSD             string `xml:"psd,omitempty"`     // RFC 9990
	Pct             string `xml:"pct"`
	FO              string `xml:"fo"`
	DiscoveryMethod string `xml:"discovery_method,omitempty"` // RFC 9990
}

// ReportRecord is one record: a row of messages with the same source,
// identifiers and results.
type ReportRecord struct {
	Row         Row         `xml:"row"`
	Identifiers Identifiers `xml:"identifiers"`
	AuthResults AuthResults `xml:"auth_results"`
	Extensions  Extensions  `xml:"extensions,omitempty"`
}

// Row is the source, the message count and the evaluated policy.
type Row struct {
	// SourceIP is the connecting address; invalid when SourceIPText does
	// not parse.
	SourceIP     netip.Addr
	SourceIPText string
	// Count is the number of messages, from 0 to 2^63-1. Read from XML it
	// is never negative: a count that is not such a whole number (see
	// parseCount) is read as 0 and marks the row invalid, and neither
	// ParseReport nor Summarize counts the record of an invalid row.
	Count           int64
	PolicyEvaluated PolicyEvaluated

	// countErr says why the count read from XML was refused; "" when it
	// was not.
	countErr string
}

type rawRow struct {
	SourceIP        string          `xml:"source_ip"`
	Count           string          `xml:"count"`
	PolicyEvaluated PolicyEvaluated `xml:"policy_evaluated"`
}

// UnmarshalXML reads a row leniently.
func (r *Row) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	var raw rawRow
	err := dec.DecodeElement(&raw, &start)
	r.SourceIPText = strings.TrimSpace(raw.SourceIP)
	r.SourceIP, _ = netip.ParseAddr(r.SourceIPText)
	r.SourceIP = r.SourceIP.Unmap()
	r.Count, r.countErr = parseCount(raw.Count)
	r.PolicyEvaluated = raw.PolicyEvaluated
	return err
}

// MarshalXML writes the row as the RFC 7489 schema wants it: IPv6
// addresses in full, uncompressed form, which is all its IPAddress pattern
// admits.
func (r Row) MarshalXML(enc *xml.Encoder, start xml.StartElement) error {
	ip := r.SourceIPText
	if r.SourceIP.IsValid() {
		a := r.SourceIP.Unmap()
		ip = a.String()
		if a.Is6() {
			ip = a.StringExpanded()
		}
	}
	return enc.EncodeElement(rawRow{SourceIP: ip, Count: strconv.FormatInt(r.Count, 10), PolicyEvaluated: r.PolicyEvaluated}, start)
}

// PolicyEvaluated is the disposition applied and the DMARC-aligned results.
type PolicyEvaluated struct {
	Disposition string                 `xml:"disposition"`
	DKIM        string                 `xml:"dkim"`
	SPF         string                 `xml:"spf"`
	Reasons     []PolicyOverrideReason `xml:"reason,omitempty"`
}

// PolicyOverrideReason says why the disposition differs from the policy.
type PolicyOverrideReason struct {
	Type    string `xml:"type"`
	Comment string `xml:"comment,omitempty"`
}

// Identifiers are the domains of the messages.
type Identifiers struct {
	EnvelopeTo   string `xml:"envelope_to,omitempty"`
	EnvelopeFrom string `xml:"envelope_from"`
	HeaderFrom   string `xml:"header_from"`
}

// AuthResults are the DKIM and SPF results, not interpreted for DMARC.
type AuthResults struct {
	DKIM []DKIMAuthResult `xml:"dkim"`
	SPF  []SPFAuthResult  `xml:"spf"`
}

// DKIMAuthResult is one DKIM signature's result.
type DKIMAuthResult struct {
	Domain      string `xml:"domain"`
	Selector    string `xml:"selector,omitempty"`
	Result      string `xml:"result"`
	HumanResult string `xml:"human_result,omitempty"`
}

// SPFAuthResult is one SPF result.
type SPFAuthResult struct {
	Domain string `xml:"domain"`
	Scope  string `xml:"scope,omitempty"`
	Result string `xml:"result"`
}

// Extension names an extension element (RFC 9990); its content is not
// kept.
type Extension struct {
	Name       string `xml:"name,attr"`
	Definition string `xml:"definition,attr"`
}

// Extensions is the content of an extensions element (RFC 9990).
type Extensions []Extension

type extensionList struct {
	E []Extension `xml:"extension"`
}

// UnmarshalXML reads the extension elements.
func (x *Extensions) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	var l extensionList
	err := dec.DecodeElement(&l, &start)
	*x = append(*x, l.E...)
	return err
}

// MarshalXML writes the extension elements.
func (x Extensions) MarshalXML(enc *xml.Encoder, start xml.StartElement) error {
	return enc.EncodeElement(extensionList{E: x}, start)
}
