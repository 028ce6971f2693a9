package dmarc

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Severity grades a Problem found by Check.
type Severity int

const (
	// Error: receivers ignore the tag or the whole record, or the record
	// breaks a MUST of RFC 7489 or RFC 9989.
	Error Severity = iota
	// Warning: the record works but is obsolete, redundant or unusual.
	Warning
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Problem is one finding of Check.
type Problem struct {
	Severity Severity
	Tag      string // the tag concerned, "" for the record as a whole
	Message  string // with the RFC section
}

func (p Problem) String() string {
	if p.Tag == "" {
		return p.Severity.String() + ": " + p.Message
	}
	return p.Severity.String() + ": " + p.Tag + ": " + p.Message
}

// Check examines a DMARC record strictly, against the formal definitions of
// RFC 7489 §6.4 and RFC 9989 §4.8, and lists every problem in the order
// found. A record with no Error-severity problem is read the same way by
// every receiver. Check is for linters and for the domain owner's side;
// receivers use Parse.
func Check(txt string) []Problem {
	var ps []Problem
	add := func(sev Severity, tag, format string, args ...any) {
		ps = append(ps, Problem{Severity: sev, Tag: tag, Message: fmt.Sprintf(format, args...)})
	}
	if trimWSP(txt) == "" {
		add(Error, "", "empty record")
		return ps
	}
	if !IsDMARCRecord(txt) {
		add(Error, "v", "the record must start with v=DMARC1 (case-sensitive); receivers ignore it (RFC 7489 §6.3, RFC 9989 §4.7)")
		return ps
	}
	if txt != strings.TrimLeft(txt, " \t") {
		add(Warning, "", "leading white space")
	}
	tags, junk := splitTags(txt)
	if tags[0].Name != "v" {
		add(Error, "v", "tag name must be lower-case \"v\"")
	}
	for _, j := range junk {
		add(Error, "", "%q is not a tag=value pair; receivers ignore it (RFC 7489 §6.4)", j)
	}
	seen := map[string]bool{}
	var hasP, hasRUA, hasRUF, hasFO bool
	for i, t := range tags[1:] {
		name := t.Name
		if name != strings.ToLower(name) && knownTags[strings.ToLower(name)] {
			add(Error, name, "tag names are case-sensitive; write %q", strings.ToLower(name))
			name = strings.ToLower(name)
		}
		if seen[name] {
			add(Error, name, "tag appears more than once; receivers use the first (RFC 6376 §3.2)")
			continue
		}
		seen[name] = true
		v := t.Value
		switch name {
		case "v":
			add(Error, "v", "v= must appear once, first")
		case "p", "sp", "np":
			switch Policy(v) {
			case PolicyNone, PolicyQuarantine, PolicyReject:
			default:
				if _, ok := parsePolicy(v); ok {
					add(Error, name, "%q is not one of none, quarantine, reject; some receivers read it as an abbreviation, others ignore the tag (RFC 9989 §4.8)", v)
				} else {
					add(Error, name, "%q is not one of none, quarantine, reject (RFC 9989 §4.8)", v)
				}
			}
			if name == "p" {
				hasP = true
				if i != 0 {
					add(Warning, "p", "RFC 7489 §6.4 wants p= right after v=; some older receivers insist")
				}
			}
			if name == "np" {
				add(Warning, "np", "np= is defined by RFC 9989 only; RFC 7489 receivers ignore it")
			}
		case "adkim", "aspf":
			if v != "r" && v != "s" {
				add(Error, name, "%q is not r or s (RFC 9989 §4.8)", v)
			}
		case "pct":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 || strconv.Itoa(n) != v {
				add(Error, name, "%q is not an integer from 0 to 100 (RFC 7489 §6.3)", v)
			}
			add(Warning, name, "pct= is removed by RFC 9989 (Appendix A.6); use t=y for testing")
		case "ri":
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				add(Error, name, "%q is not a 32-bit unsigned integer (RFC 7489 §6.3)", v)
			}
			add(Warning, name, "ri= is removed by RFC 9989")
		case "rf":
			for _, f := range strings.Split(v, ":") {
				if f != "afrf" {
					add(Error, name, "report format %q is not registered; only afrf is (RFC 7489 §6.3)", f)
				}
			}
			add(Warning, name, "rf= is removed by RFC 9989")
		case "fo":
			hasFO = true
			if !validFO(v) {
				add(Error, name, "%q is not a colon-separated list of 0, 1, d, s with 0 and 1 exclusive (RFC 9989 §4.8)", v)
			}
		case "rua", "ruf":
			if name == "rua" {
				hasRUA = true
			} else {
				hasRUF = true
			}
			checkURIs(v, name, add)
		case "psd":
			if v != "y" && v != "n" && v != "u" {
				add(Error, name, "%q is not y, n or u (RFC 9989 §4.8)", v)
			}
		case "t":
			if v != "y" && v != "n" {
				add(Error, name, "%q is not y or n (RFC 9989 §4.8)", v)
			}
		default:
			add(Warning, t.Name, "unknown tag; receivers ignore it (RFC 9989 §4.7)")
		}
	}
	if !hasP {
		if hasRUA {
			add(Error, "p", "p= is missing; receivers act as if p=none because rua= is present (RFC 7489 §6.6.3, RFC 9989 §4.10.1)")
		} else {
			add(Error, "p", "p= is missing and there is no rua=: receivers apply no DMARC processing (RFC 7489 §6.6.3, RFC 9989 §4.10.1)")
		}
	}
	if hasFO && !hasRUF {
		add(Warning, "fo", "fo= has no effect without ruf= (RFC 9989 §4.7)")
	}
	return ps
}

func validFO(v string) bool {
	seen := map[string]bool{}
	for _, f := range strings.Split(v, ":") {
		switch f {
		case "0", "1", "d", "s":
		default:
			return false
		}
		if seen[f] {
			return false
		}
		seen[f] = true
	}
	return !(seen["0"] && seen["1"])
}

func checkURIs(v, tag string, add func(Severity, string, string, ...any)) {
	for _, s := range strings.Split(v, ",") {
		s = trimWSP(s)
		if i := strings.LastIndexByte(s, '!'); i >= 0 {
			if _, ok := parseSize(s[i+1:]); !ok {
				add(Error, tag, "%q: \"!\" must be percent-encoded in a URI (RFC 9989 §4.8)", s)
				continue
			}
			add(Warning, tag, "%q: the !size suffix is obsolete; reporters ignore it (RFC 9989 §4.8)", s)
			s = s[:i]
		}
		pu, err := url.Parse(s)
		if err != nil || pu.Scheme == "" {
			add(Error, tag, "%q is not an absolute URI (RFC 3986)", s)
			continue
		}
		if !strings.EqualFold(pu.Scheme, "mailto") {
			add(Warning, tag, "%q: receivers need only support mailto: (RFC 9989 §4.7)", s)
			continue
		}
		a := URI{URI: s}.Address()
		if i := strings.LastIndexByte(a, '@'); i <= 0 || i == len(a)-1 {
			add(Error, tag, "%q does not hold an e-mail address (RFC 6068)", s)
		}
	}
}
