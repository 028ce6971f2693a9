package dmarc

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Policy is a Domain Owner Assessment Policy: the value of p=, sp= or np=
// (RFC 7489 §6.3, RFC 9989 §4.7). The empty Policy means the tag is absent
// or its value was invalid.
type Policy string

// The policies.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// weaker returns the policy one level below p (RFC 7489 §6.6.4 for pct=,
// RFC 9989 §4.7 for t=y): reject becomes quarantine, quarantine none.
func (p Policy) weaker() Policy {
	switch p {
	case PolicyReject:
		return PolicyQuarantine
	case PolicyQuarantine:
		return PolicyNone
	}
	return p
}

// Alignment is an identifier alignment mode, the value of adkim= or aspf=.
// The empty Alignment means absent: relaxed applies.
type Alignment string

// The alignment modes (RFC 7489 §3.1, RFC 9989 §4.4).
const (
	Relaxed Alignment = "r"
	Strict  Alignment = "s"
)

// URI is one DMARC reporting URI of rua= or ruf= (RFC 7489 §6.2).
type URI struct {
	// URI is the URI as written, without the size limit.
	URI string
	// MaxSize is the "!size" limit in bytes, 0 when absent. RFC 9989
	// §4.8 makes the suffix obsolete: reporters should ignore it.
	MaxSize uint64
	// sizeText keeps the suffix as written, for String.
	sizeText string
}

// Address returns the e-mail address of a mailto: URI, or "".
func (u URI) Address() string {
	pu, err := url.Parse(u.URI)
	if err != nil || !strings.EqualFold(pu.Scheme, "mailto") {
		return ""
	}
	addr := pu.Opaque
	if addr == "" {
		addr = strings.TrimPrefix(pu.Path, "//")
	}
	if i := strings.IndexByte(addr, '?'); i >= 0 {
		addr = addr[:i]
	}
	if a, err := url.PathUnescape(addr); err == nil {
		addr = a
	}
	return addr
}

// Host returns the destination host of the URI: the domain of a mailto:
// address, otherwise the host of the authority (RFC 7489 §7.1 step 1).
func (u URI) Host() string {
	if a := u.Address(); a != "" {
		if i := strings.LastIndexByte(a, '@'); i >= 0 {
			return normalizeDomain(a[i+1:])
		}
		return ""
	}
	pu, err := url.Parse(u.URI)
	if err != nil {
		return ""
	}
	return normalizeDomain(pu.Hostname())
}

func (u URI) String() string {
	if u.sizeText != "" {
		return u.URI + "!" + u.sizeText
	}
	return u.URI
}

// Tag is one tag=value pair of a record, as written.
type Tag struct {
	Name, Value string
}

// Record is a DMARC policy record (RFC 7489 §6.3, RFC 9989 §4.7). Fields
// hold the values written in the record; zero values mean the tag was
// absent or had an invalid value, and the accessor methods give the
// effective value with the defaults applied.
type Record struct {
	// Policy is p=. Empty if absent or invalid; see Evaluate for what then
	// applies (RFC 7489 §6.6.3 step 6, RFC 9989 §4.10.1).
	Policy Policy
	// SubdomainPolicy is sp=; empty means p= applies.
	SubdomainPolicy Policy
	// NonexistentPolicy is np= (RFC 9989 §4.7); empty means sp=, then p=,
	// applies. Ignored under RFC7489 rules.
	NonexistentPolicy Policy
	// ADKIM and ASPF are adkim= and aspf=; empty means relaxed.
	ADKIM, ASPF Alignment
	// Percent is pct= (RFC 7489 §6.3; removed by RFC 9989): nil when
	// absent (100 applies).
	Percent *int
	// PSD is psd= (RFC 9989 §4.7): 'y', 'n', or 0 when absent or 'u'.
	PSD byte
	// Testing is t=y (RFC 9989 §4.7).
	Testing bool
	// testingSet records that t= was written, for String.
	testingSet bool
	psdU       bool
	// FailureOptions is fo=, the valid options in order ("0", "1", "d",
	// "s"); nil means the default "0".
	FailureOptions []string
	// ReportFormat is rf= (RFC 7489 §6.3; removed by RFC 9989); nil means
	// the default afrf.
	ReportFormat []string
	// ReportInterval is ri= in seconds (RFC 7489 §6.3; removed by RFC
	// 9989); 0 means the default 86400.
	ReportInterval uint32
	// AggregateURIs and FailureURIs are rua= and ruf=, the URIs that parse.
	AggregateURIs, FailureURIs []URI
	// Unknown holds the tags the package does not know, in order; they are
	// ignored (RFC 9989 §4.7) and kept for String.
	Unknown []Tag
	// Invalid names the known tags whose value was invalid and therefore
	// discarded (RFC 9989 §4.8), in order.
	Invalid []string
}

// Pct returns the effective pct= (100 when absent).
func (r *Record) Pct() int {
	if r.Percent == nil {
		return 100
	}
	return *r.Percent
}

// DKIMAlignment returns the effective adkim= (relaxed when absent).
func (r *Record) DKIMAlignment() Alignment {
	if r.ADKIM == "" {
		return Relaxed
	}
	return r.ADKIM
}

// SPFAlignment returns the effective aspf= (relaxed when absent).
func (r *Record) SPFAlignment() Alignment {
	if r.ASPF == "" {
		return Relaxed
	}
	return r.ASPF
}

// FO returns fo= as written, colon-separated; "0" when absent.
func (r *Record) FO() string {
	if len(r.FailureOptions) == 0 {
		return "0"
	}
	return strings.Join(r.FailureOptions, ":")
}

func (r *Record) invalid(tag string) bool {
	for _, t := range r.Invalid {
		if t == tag {
			return true
		}
	}
	return false
}

func trimWSP(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' })
}

// splitTags splits a tag-value list (RFC 6376 §3.2, used by RFC 7489 §6.4)
// into its tags; the parts that are not a tag=value pair (no "=", or a
// name that is not letters) come back in junk.
func splitTags(s string) (tags []Tag, junk []string) {
	for _, part := range strings.Split(s, ";") {
		part = trimWSP(part)
		if part == "" {
			continue
		}
		i := strings.IndexByte(part, '=')
		if i <= 0 {
			junk = append(junk, part)
			continue
		}
		name := trimWSP(part[:i])
		if !isTagName(name) {
			junk = append(junk, part)
			continue
		}
		tags = append(tags, Tag{Name: name, Value: trimWSP(part[i+1:])})
	}
	return tags, junk
}

func isTagName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// IsDMARCRecord reports whether a TXT string starts with the v=DMARC1 tag,
// the test by which RFC 7489 §6.6.3 steps 2 and 4 and RFC 9989 §4.10 step 2
// keep or discard TXT records.
func IsDMARCRecord(txt string) bool {
	s := strings.TrimLeft(txt, " \t")
	if len(s) < 1 || (s[0] != 'v' && s[0] != 'V') {
		return false
	}
	s = strings.TrimLeft(s[1:], " \t")
	if !strings.HasPrefix(s, "=") {
		return false
	}
	s = strings.TrimLeft(s[1:], " \t")
	if !strings.HasPrefix(s, "DMARC1") {
		return false
	}
	rest := strings.TrimLeft(s[len("DMARC1"):], " \t")
	return rest == "" || rest[0] == ';'
}

// Parse parses a DMARC policy record leniently, as a receiver must (RFC
// 9989 §4.8: "Syntax errors in the remainder of the record MUST be
// discarded in favor of default values (if any) or ignored outright").
//
// It fails, with an error wrapping ErrSyntax, only when the text is not a
// DMARC record: empty, or not starting with v=DMARC1 (RFC 7489 §6.3, RFC
// 9989 §4.7: such a record "MUST be ignored"). Tags without "=", unknown
// tags, and the obsolete "!size" suffix of URIs are tolerated; a known tag
// with an invalid value is dropped and named in Record.Invalid. The first
// of repeated tags wins. Values are compared without regard to case, and an
// abbreviated p=, sp= or np= value ("n", "quar") is read as the policy it
// abbreviates, as OpenDMARC does; Check reports both.
func Parse(txt string) (*Record, error) {
	if trimWSP(txt) == "" {
		return nil, fmt.Errorf("%w: empty record", ErrSyntax)
	}
	if !IsDMARCRecord(txt) {
		return nil, fmt.Errorf("%w: record does not start with v=DMARC1", ErrSyntax)
	}
	tags, _ := splitTags(txt)
	r := &Record{}
	seen := map[string]bool{}
	for _, t := range tags[1:] {
		name := strings.ToLower(t.Name)
		if seen[name] {
			continue
		}
		seen[name] = true
		if !r.setTag(name, t.Value) {
			if knownTags[name] {
				r.Invalid = append(r.Invalid, name)
			} else {
				r.Unknown = append(r.Unknown, t)
			}
		}
	}
	return r, nil
}

// knownTags are the tags of RFC 7489 §6.3 and RFC 9989 §4.7.
var knownTags = map[string]bool{
	"v": true, "p": true, "sp": true, "np": true, "adkim": true, "aspf": true,
	"pct": true, "fo": true, "rf": true, "ri": true, "rua": true, "ruf": true,
	"psd": true, "t": true,
}

// parsePolicy accepts none, quarantine and reject, case-insensitively, and
// any non-empty prefix of them.
func parsePolicy(v string) (Policy, bool) {
	v = strings.ToLower(v)
	if v == "" {
		return "", false
	}
	for _, p := range []Policy{PolicyNone, PolicyQuarantine, PolicyReject} {
		if strings.HasPrefix(string(p), v) {
			return p, true
		}
	}
	return "", false
}

func parseAlignment(v string) (Alignment, bool) {
	switch v = strings.ToLower(v); {
	case v == "":
		return "", false
	case strings.HasPrefix("relaxed", v):
		return Relaxed, true
	case strings.HasPrefix("strict", v):
		return Strict, true
	}
	return "", false
}

// setTag sets one known tag from its value as written; it returns false
// for unknown tags (and a second v=) and for invalid values, which leave
// the field as it was.
func (r *Record) setTag(name, v string) bool {
	switch name {
	case "p":
		return setPolicy(&r.Policy, v)
	case "sp":
		return setPolicy(&r.SubdomainPolicy, v)
	case "np":
		return setPolicy(&r.NonexistentPolicy, v)
	case "adkim":
		return setAlignment(&r.ADKIM, v)
	case "aspf":
		return setAlignment(&r.ASPF, v)
	case "pct":
		return r.setPct(v)
	case "ri":
		return r.setInterval(v)
	case "rf":
		return setOptions(&r.ReportFormat, v, "afrf")
	case "fo":
		return setOptions(&r.FailureOptions, v, "0", "1", "d", "s")
	case "rua":
		return setURIs(&r.AggregateURIs, v)
	case "ruf":
		return setURIs(&r.FailureURIs, v)
	case "psd":
		return r.setPSD(v)
	case "t":
		return r.setTesting(v)
	}
	return false // "v" again, or a tag the package does not know
}

// setPolicy reads p=, sp= or np= (RFC 9989 §4.7), abbreviations included.
func setPolicy(dst *Policy, v string) bool {
	p, ok := parsePolicy(v)
	if ok {
		*dst = p
	}
	return ok
}

// setAlignment reads adkim= or aspf= (RFC 9989 §4.7).
func setAlignment(dst *Alignment, v string) bool {
	a, ok := parseAlignment(v)
	if ok {
		*dst = a
	}
	return ok
}

// setPct reads pct=, an integer from 0 to 100 (RFC 7489 §6.3).
func (r *Record) setPct(v string) bool {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 100 {
		return false
	}
	r.Percent = &n
	return true
}

// setInterval reads ri=, a 32-bit unsigned number of seconds (RFC 7489
// §6.3).
func (r *Record) setInterval(v string) bool {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return false
	}
	r.ReportInterval = uint32(n)
	return true
}

// setOptions reads a colon-separated list (rf=, fo=), keeping the
// options among allowed, lower-cased and in order; a list with none of
// them is invalid.
func setOptions(dst *[]string, v string, allowed ...string) bool {
	var out []string
	for _, f := range strings.Split(v, ":") {
		if f = strings.ToLower(trimWSP(f)); slices.Contains(allowed, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return false
	}
	*dst = out
	return true
}

// setURIs reads rua= or ruf=; a list with no usable URI is invalid.
func setURIs(dst *[]URI, v string) bool {
	uris := parseURIList(v)
	if len(uris) == 0 {
		return false
	}
	*dst = uris
	return true
}

// setPSD reads psd= (RFC 9989 §4.7): y, n or u.
func (r *Record) setPSD(v string) bool {
	switch strings.ToLower(v) {
	case "y":
		r.PSD = 'y'
	case "n":
		r.PSD = 'n'
	case "u":
		r.PSD, r.psdU = 0, true
	default:
		return false
	}
	return true
}

// setTesting reads t= (RFC 9989 §4.7): y or n.
func (r *Record) setTesting(v string) bool {
	switch strings.ToLower(v) {
	case "y":
		r.Testing = true
	case "n":
		r.Testing = false
	default:
		return false
	}
	r.testingSet = true
	return true
}

// parseURIList parses a dmarc-urilist (RFC 9989 §4.8), keeping the URIs
// that parse as absolute URIs.
func parseURIList(v string) []URI {
	var out []URI
	for _, s := range strings.Split(v, ",") {
		s = trimWSP(s)
		var u URI
		if i := strings.LastIndexByte(s, '!'); i >= 0 {
			size, ok := parseSize(s[i+1:])
			if !ok {
				continue
			}
			u.MaxSize, u.sizeText = size, s[i+1:]
			s = s[:i]
		}
		pu, err := url.Parse(s)
		if err != nil || pu.Scheme == "" || len(s) == len(pu.Scheme)+1 {
			continue
		}
		u.URI = s
		out = append(out, u)
	}
	return out
}

// parseSize parses the obsolete size suffix: 1*DIGIT ["k" / "m" / "g" /
// "t"] (RFC 7489 §6.4).
func parseSize(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	mult := uint64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<63)/mult {
		return 0, false
	}
	return n * mult, true
}

// String returns the record in canonical form: "v=DMARC1" and then every
// tag that was set, known tags in a fixed order and unknown ones after
// them. Parse(r.String()) gives back a record with the same String.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=DMARC1")
	add := func(name, value string) {
		b.WriteString("; ")
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(value)
	}
	if r.Policy != "" {
		add("p", string(r.Policy))
	}
	if r.SubdomainPolicy != "" {
		add("sp", string(r.SubdomainPolicy))
	}
	if r.NonexistentPolicy != "" {
		add("np", string(r.NonexistentPolicy))
	}
	switch {
	case r.PSD != 0:
		add("psd", string(r.PSD))
	case r.psdU:
		add("psd", "u")
	}
	if r.Testing {
		add("t", "y")
	} else if r.testingSet {
		add("t", "n")
	}
	if r.ADKIM != "" {
		add("adkim", string(r.ADKIM))
	}
	if r.ASPF != "" {
		add("aspf", string(r.ASPF))
	}
	if r.Percent != nil {
		add("pct", strconv.Itoa(*r.Percent))
	}
	if len(r.FailureOptions) > 0 {
		add("fo", strings.Join(r.FailureOptions, ":"))
	}
	if len(r.ReportFormat) > 0 {
		add("rf", strings.Join(r.ReportFormat, ":"))
	}
	if r.ReportInterval != 0 {
		add("ri", strconv.FormatUint(uint64(r.ReportInterval), 10))
	}
	uris := func(us []URI) string {
		s := make([]string, len(us))
		for i, u := range us {
			s[i] = u.String()
		}
		return strings.Join(s, ",")
	}
	if len(r.AggregateURIs) > 0 {
		add("rua", uris(r.AggregateURIs))
	}
	if len(r.FailureURIs) > 0 {
		add("ruf", uris(r.FailureURIs))
	}
	for _, t := range r.Unknown {
		if strings.ContainsAny(t.Value, ";") || !isTagName(t.Name) {
			continue
		}
		add(t.Name, t.Value)
	}
	return b.String()
}
