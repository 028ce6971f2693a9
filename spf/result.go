package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/internal/authtext"
	"github.com/smarthost-go/smarthost/msgauth"
)

// Status is the result of check_host() (RFC 7208 §2.6): an RFC 8601 result
// keyword, the same type as the Status of dkim and dmarc. check_host()
// gives the seven constants below, never msgauth.Policy.
type Status = msgauth.Status

// The results of RFC 7208 §2.6, spelled as the RFC 8601 §2.7.2 keywords.
const (
	None      = msgauth.None      // no record, or no valid domain (§2.6.1)
	Neutral   = msgauth.Neutral   // neither permitted nor denied (§2.6.2)
	Pass      = msgauth.Pass      // permitted (§2.6.3)
	Fail      = msgauth.Fail      // not permitted (§2.6.4)
	SoftFail  = msgauth.SoftFail  // probably not permitted (§2.6.5)
	TempError = msgauth.TempError // a transient DNS error (§2.6.6)
	PermError = msgauth.PermError // a broken record or a limit passed (§2.6.7)
)

// Sentinel errors, wrapped by Result.Err with %w.
var (
	// ErrNoRecord: the domain publishes no SPF record or is not a valid
	// domain name (the None result wraps it, RFC 7208 §4.3); include and
	// redirect targets without a record give permerror wrapping it
	// (RFC 7208 §5.2, §6.1).
	ErrNoRecord = errors.New("spf: no SPF record")
	// ErrMultipleRecords: more than one SPF record (RFC 7208 §4.5).
	ErrMultipleRecords = errors.New("spf: more than one SPF record")
	// ErrDNS: a DNS lookup failed temporarily (temperror, RFC 7208 §2.6.6).
	ErrDNS = errors.New("spf: DNS lookup failed")
	// ErrSyntax: a record, domain-spec or macro is malformed (permerror,
	// RFC 7208 §4.6, §7.1).
	ErrSyntax = errors.New("spf: syntax error")
	// ErrTooManyLookups: more than the allowed DNS-querying terms, void
	// lookups or MX names (permerror, RFC 7208 §4.6.4).
	ErrTooManyLookups = errors.New("spf: too many DNS lookups")
	// ErrLoop: an include or redirect chain returns to a domain being
	// evaluated (permerror; the lookup limit would also end it).
	ErrLoop = errors.New("spf: include or redirect loop")
)

// Identity is the identity checked (RFC 7208 §2.3, §2.4), as written in the
// Received-SPF "identity" key.
type Identity string

// The identities of RFC 7208 §2.3 and §2.4.
const (
	IdentityMailFrom Identity = "mailfrom"
	IdentityHELO     Identity = "helo"
)

// Result is the outcome of one check_host() evaluation.
//
// Status is always set. Err is nil exactly when Status is Pass, and says
// why for every other status:
//
//   - None: wraps ErrNoRecord; the domain publishes no SPF record, or is
//     not a valid domain name (RFC 7208 §4.3);
//   - Neutral, SoftFail, Fail: names the domain, the client address and
//     the directive that matched ("spf: example.com does not permit
//     192.0.2.1 (-all in example.com)"), or says that none did;
//   - TempError: wraps ErrDNS;
//   - PermError: wraps ErrSyntax, ErrTooManyLookups, ErrMultipleRecords,
//     ErrLoop, or ErrNoRecord for an include or redirect target without a
//     record.
//
// Err is for people and logs; decisions go by Status.
type Result struct {
	Status Status
	Err    error
	// Explanation is the expanded exp= text on Fail (RFC 7208 §6.2); empty
	// when the record has no usable exp modifier.
	Explanation string
	// Mechanism is the directive that matched, as written (for example
	// "ip4:192.0.2.0/24" or "-all"); empty when none matched (the default
	// neutral, RFC 7208 §4.7) or on an error.
	Mechanism string
	// MatchedDomain is the domain whose record held Mechanism (an include
	// or redirect target, or Domain).
	MatchedDomain string
	// Domain is the domain evaluated (the <domain> of check_host()).
	Domain string
	// Sender, HELO, IP and Identity are the inputs, for the Received-SPF
	// header.
	Sender   string
	HELO     string
	IP       netip.Addr
	Identity Identity
	// DNSTerms and VoidLookups count the terms that caused DNS queries
	// and the void lookups among them (RFC 7208 §4.6.4).
	DNSTerms, VoidLookups int
	// Trace lists the lookups made and terms tried, in order.
	Trace Trace
}

// StepKind says what a trace step records.
type StepKind uint8

// Kinds of trace steps.
const (
	StepRecord StepKind = iota + 1 // record lookup and selection for Domain
	StepTerm                       // a term evaluated
	StepLookup                     // a DNS query made
	StepResult                     // the result of one record
)

// noteExplanation is the Note of the lookups made to compute an exp=
// explanation (RFC 7208 §6.2): the TXT lookup and any %{p} lookups.
const noteExplanation = "explanation"

// Step is one entry of a Trace.
type Step struct {
	Kind   StepKind
	Depth  int    // include/redirect depth, 0 for the top record
	Domain string // the domain whose record is being evaluated
	Query  string // for StepLookup: the query type ("TXT", "A", "MX" ...)
	Text   string // the record, the term, or the name queried
	Note   string // the outcome: "match", "no match", ...; "explanation" on the lookups made for exp= (RFC 7208 §6.2)
	Err    error  // the error of a lookup or term, if any
	N      int    // for StepLookup: the number of records answered
}

// String formats the step on one line, without indentation.
func (s Step) String() string {
	var b strings.Builder
	s.appendTo(&b)
	return b.String()
}

func (s Step) appendTo(b *strings.Builder) {
	switch s.Kind {
	case StepRecord:
		b.WriteString("record ")
		b.WriteString(s.Domain)
		if s.Text != "" {
			b.WriteString(": ")
			b.WriteString(strconv.Quote(s.Text))
		}
	case StepTerm:
		b.WriteString("term ")
		b.WriteString(s.Text)
	case StepLookup:
		b.WriteString("lookup ")
		b.WriteString(s.Query)
		b.WriteByte(' ')
		b.WriteString(s.Text)
		if s.Note != "" {
			b.WriteString(" (")
			b.WriteString(s.Note)
			b.WriteByte(')')
		}
	case StepResult:
		b.WriteString("result ")
		b.WriteString(s.Domain)
		b.WriteString(": ")
		b.WriteString(s.Text)
	}
	switch {
	case s.Err != nil:
		b.WriteString(" -> error: ")
		b.WriteString(s.Err.Error())
	case s.Kind == StepLookup:
		b.WriteString(" -> ")
		b.WriteString(strconv.Itoa(s.N))
		b.WriteString(" records")
	case s.Note != "":
		b.WriteString(" -> ")
		b.WriteString(s.Note)
	}
}

// Trace is the readable account of an evaluation.
type Trace []Step

// String formats the trace one step a line, indented by depth.
func (t Trace) String() string {
	var b strings.Builder
	for _, s := range t {
		b.WriteString(strings.Repeat("  ", s.Depth))
		s.appendTo(&b)
		b.WriteByte('\n')
	}
	return b.String()
}

// ReceivedSPF returns the Received-SPF header field (RFC 7208 §9.1), without
// the final CRLF, naming receiver as the host that made the check.
//
//	Received-SPF: pass (mx.example.org: domain of a@example.com designates
//	 192.0.2.1 as permitted sender) client-ip=192.0.2.1;
//	 envelope-from="a@example.com"; helo=mail.example.com;
//	 receiver=mx.example.org; identity=mailfrom
//
// The field is folded (CRLF before the space) ahead of a word that would
// pass column 78, and no line passes the 998 octets of RFC 5322 §2.1.1: a value or
// comment longer than maxReceivedValue octets (an error quoting a huge
// record, say) is cut and ends in "...(truncated)".
func (r *Result) ReceivedSPF(receiver string) string {
	var f receivedFolder
	f.word("Received-SPF:")
	f.word(string(r.Status))
	comment := strings.Fields(truncate(commentSafe(r.comment(receiver))))
	for i, w := range comment {
		if i == 0 {
			w = "(" + w
		}
		if i == len(comment)-1 {
			w += ")"
		}
		f.word(w)
	}
	var pairs []string
	kv := func(k, v string) { pairs = append(pairs, k+"="+kvValue(truncate(v))) }
	if r.IP.IsValid() {
		kv("client-ip", r.IP.String())
	}
	if r.Identity == IdentityMailFrom || r.Sender != "" {
		kv("envelope-from", r.Sender)
	}
	if r.HELO != "" {
		kv("helo", r.HELO)
	}
	if (r.Status == TempError || r.Status == PermError) && r.Err != nil {
		// RFC 7208 §9.1: "problem" is for an error discovered.
		kv("problem", r.Err.Error())
	}
	if r.Mechanism != "" {
		kv("mechanism", r.Mechanism)
	}
	if receiver != "" {
		kv("receiver", receiver)
	}
	if r.Identity != "" {
		kv("identity", string(r.Identity))
	}
	for i, p := range pairs {
		if i < len(pairs)-1 {
			p += ";"
		}
		// A quoted value may fold at its spaces too (RFC 5322 §3.2.4).
		for _, w := range strings.Split(p, " ") {
			f.word(w)
		}
	}
	return f.b.String()
}

// maxReceivedValue is the longest value or comment ReceivedSPF writes: even
// quoted with every octet escaped it fits a line of 998 octets.
const maxReceivedValue = 400

// truncate cuts s to maxReceivedValue octets, saying so.
func truncate(s string) string {
	const mark = "...(truncated)"
	if len(s) <= maxReceivedValue {
		return s
	}
	return s[:maxReceivedValue-len(mark)] + mark
}

// receivedFolder writes words separated by single spaces, folding before a
// word that would pass column 78: CRLF goes before the separating space
// (RFC 5322 §2.2.3), so unfolding gives the one-line field back.
type receivedFolder struct {
	b   strings.Builder
	col int
}

func (f *receivedFolder) word(w string) {
	switch {
	case f.b.Len() == 0:
	case f.col+1+len(w) > 78:
		f.b.WriteString("\r\n ")
		f.col = 1
	default:
		f.b.WriteByte(' ')
		f.col++
	}
	f.b.WriteString(w)
	f.col += len(w)
}

func (r *Result) comment(receiver string) string {
	var c string
	if receiver != "" {
		c = receiver + ": "
	}
	who := r.Sender
	if r.Identity == IdentityHELO {
		who = r.HELO
	}
	switch r.Status {
	case Pass:
		return c + "domain of " + who + " designates " + r.IP.String() + " as permitted sender"
	case Fail:
		return c + "domain of " + who + " does not designate " + r.IP.String() + " as permitted sender"
	case SoftFail:
		return c + "domain of transitioning " + who + " does not designate " + r.IP.String() + " as permitted sender"
	case Neutral:
		return c + r.IP.String() + " is neither permitted nor denied by domain of " + who
	case None:
		return c + "domain of " + who + " does not provide an SPF record"
	case TempError:
		return c + "temporary error in processing during lookup of " + who
	case PermError:
		return c + "permanent error in processing domain of " + r.Domain
	}
	return c + string(r.Status)
}

// commentSafe drops characters that would end or nest an RFC 5322 comment.
func commentSafe(s string) string {
	if !strings.ContainsAny(s, "()\\\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '(', ')', '\\', '\r', '\n':
			return -1
		}
		return r
	}, s)
}

// kvValue returns v as a dot-atom when it is one, else as a quoted-string
// (RFC 7208 §9.1, key-value-pair).
func kvValue(v string) string {
	atom := v != "" && !strings.HasPrefix(v, ".") && !strings.HasSuffix(v, ".") && !strings.Contains(v, "..")
	for i := 0; atom && i < len(v); i++ {
		c := v[i]
		atom = isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
	}
	if atom {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			// not representable; drop
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// AuthResult returns the result as an Authentication-Results "spf" entry
// (RFC 8601 §2.7.2), an *authres.SPFResult: the result keyword; the reason,
// which is Err without its "spf: " prefix and made safe for the header
// field; and for the MAIL FROM identity smtp.mailfrom, the sender (only
// "@domain" when its local part would need quoting, RFC 8601 §2.3), or
// for HELO smtp.helo, the HELO name when it is a domain name.
func (r *Result) AuthResult() authres.Result {
	ar := &authres.SPFResult{Value: authres.ResultValue(r.Status), Reason: authtext.Reason(r.Err)}
	if r.Identity == IdentityHELO {
		ar.Helo = authtext.Domain(r.HELO)
	} else {
		ar.From = authtext.Address(r.Sender)
	}
	return ar
}

// AuthResults returns the one entry of AuthResult, so that a *Result is a
// msgauth.Result and goes into msgauth.Header with the results of the
// other checks.
func (r *Result) AuthResults() []authres.Result {
	return []authres.Result{r.AuthResult()}
}

// String returns the status and why on one line: the directive that
// matched and the domain whose record held it ("pass (ip4:192.0.2.0/24 in
// example.com)"), else Err ("none (spf: no SPF record at example.com)").
func (r *Result) String() string {
	switch {
	case r.Mechanism != "":
		return fmt.Sprintf("%s (%s in %s)", r.Status, r.Mechanism, r.MatchedDomain)
	case r.Err != nil:
		return fmt.Sprintf("%s (%v)", r.Status, r.Err)
	}
	return string(r.Status)
}

// verdictError is the Err of a fail, softfail or neutral result (RFC 7208
// §2.6.2, §2.6.4, §2.6.5): what the record of domain says about ip, and
// which directive said it. Its text is made only when asked for.
type verdictError struct {
	status Status
	domain string     // the domain checked
	ip     netip.Addr // the client
	mech   string     // the directive that matched; "" when none did
	in     string     // the domain whose record held mech, or ran out of terms
}

func (e *verdictError) Error() string {
	var b strings.Builder
	b.WriteString("spf: ")
	b.WriteString(e.domain)
	if e.status == Neutral {
		b.WriteString(" neither permits nor denies ")
	} else {
		b.WriteString(" does not permit ")
	}
	b.WriteString(e.ip.String())
	switch {
	case e.mech != "":
		b.WriteString(" (")
		b.WriteString(e.mech)
		b.WriteString(" in ")
		b.WriteString(e.in)
		b.WriteByte(')')
	case e.in != "" && !strings.EqualFold(e.in, e.domain):
		// RFC 7208 §6.1: the record of a redirect target ran out.
		b.WriteString(": no mechanism matched in ")
		b.WriteString(e.in)
	default:
		// RFC 7208 §4.7: the default result.
		b.WriteString(": no mechanism matched")
	}
	return b.String()
}
