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
	var c checker
	if !c.version(txt) {
		return c.ps
	}
	tags, junk := splitTags(txt)
	if tags[0].Name != "v" {
		c.add(Error, "v", "tag name must be lower-case \"v\"")
	}
	for _, j := range junk {
		c.add(Error, "", "%q is not a tag=value pair; receivers ignore it (RFC 7489 §6.4)", j)
	}
	seen := map[string]bool{}
	for i, t := range tags[1:] {
		name := t.Name
		if name != strings.ToLower(name) && knownTags[strings.ToLower(name)] {
			c.add(Error, name, "tag names are case-sensitive; write %q", strings.ToLower(name))
			name = strings.ToLower(name)
		}
		if seen[name] {
			c.add(Error, name, "tag appears more than once; receivers use the first (RFC 6376 §3.2)")
			continue
		}
		seen[name] = true
		c.tag(name, t.Value, i)
	}
	c.missing(seen)
	return c.ps
}

// checker gathers the problems Check finds.
type checker struct {
	ps []Problem
}

func (c *checker) add(sev Severity, tag, format string, args ...any) {
	c.ps = append(c.ps, Problem{Severity: sev, Tag: tag, Message: fmt.Sprintf(format, args...)})
}

// version checks that txt is a DMARC record at all (RFC 7489 §6.3, RFC
// 9989 §4.7); when it is not, nothing else is checked.
func (c *checker) version(txt string) bool {
	if trimWSP(txt) == "" {
		c.add(Error, "", "empty record")
		return false
	}
	if !IsDMARCRecord(txt) {
		c.add(Error, "v", "the record must start with v=DMARC1 (case-sensitive); receivers ignore it (RFC 7489 §6.3, RFC 9989 §4.7)")
		return false
	}
	if txt != strings.TrimLeft(txt, " \t") {
		c.add(Warning, "", "leading white space")
	}
	return true
}

// tag checks the value of one tag, the i-th after v=, named in lower case.
func (c *checker) tag(name, v string, i int) {
	switch name {
	case "v":
		c.add(Error, "v", "v= must appear once, first")
	case "p", "sp", "np":
		c.policy(name, v, i)
	case "adkim", "aspf":
		if v != "r" && v != "s" {
			c.add(Error, name, "%q is not r or s (RFC 9989 §4.8)", v)
		}
	case "pct":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 || strconv.Itoa(n) != v {
			c.add(Error, name, "%q is not an integer from 0 to 100 (RFC 7489 §6.3)", v)
		}
		c.add(Warning, name, "pct= is removed by RFC 9989 (Appendix A.6); use t=y for testing")
	case "ri":
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			c.add(Error, name, "%q is not a 32-bit unsigned integer (RFC 7489 §6.3)", v)
		}
		c.add(Warning, name, "ri= is removed by RFC 9989")
	case "rf":
		for _, f := range strings.Split(v, ":") {
			if f != "afrf" {
				c.add(Error, name, "report format %q is not registered; only afrf is (RFC 7489 §6.3)", f)
			}
		}
		c.add(Warning, name, "rf= is removed by RFC 9989")
	case "fo":
		if !validFO(v) {
			c.add(Error, name, "%q is not a colon-separated list of 0, 1, d, s with 0 and 1 exclusive (RFC 9989 §4.8)", v)
		}
	case "rua", "ruf":
		c.uris(v, name)
	case "psd":
		if v != "y" && v != "n" && v != "u" {
			c.add(Error, name, "%q is not y, n or u (RFC 9989 §4.8)", v)
		}
	case "t":
		if v != "y" && v != "n" {
			c.add(Error, name, "%q is not y or n (RFC 9989 §4.8)", v)
		}
	default:
		c.add(Warning, name, "unknown tag; receivers ignore it (RFC 9989 §4.7)")
	}
}

// policy checks p=, sp= or np=, the i-th tag after v=.
func (c *checker) policy(name, v string, i int) {
	switch Policy(v) {
	case PolicyNone, PolicyQuarantine, PolicyReject:
	default:
		if _, ok := parsePolicy(v); ok {
			c.add(Error, name, "%q is not one of none, quarantine, reject; some receivers read it as an abbreviation, others ignore the tag (RFC 9989 §4.8)", v)
		} else {
			c.add(Error, name, "%q is not one of none, quarantine, reject (RFC 9989 §4.8)", v)
		}
	}
	if name == "p" && i != 0 {
		c.add(Warning, "p", "RFC 7489 §6.4 wants p= right after v=; some older receivers insist")
	}
	if name == "np" {
		c.add(Warning, "np", "np= is defined by RFC 9989 only; RFC 7489 receivers ignore it")
	}
}

// missing reports what the tags seen lack: p= (RFC 7489 §6.6.3, RFC 9989
// §4.10.1), and ruf= for fo= to act on (RFC 9989 §4.7).
func (c *checker) missing(seen map[string]bool) {
	if !seen["p"] {
		if seen["rua"] {
			c.add(Error, "p", "p= is missing; receivers act as if p=none because rua= is present (RFC 7489 §6.6.3, RFC 9989 §4.10.1)")
		} else {
			c.add(Error, "p", "p= is missing and there is no rua=: receivers apply no DMARC processing (RFC 7489 §6.6.3, RFC 9989 §4.10.1)")
		}
	}
	if seen["fo"] && !seen["ruf"] {
		c.add(Warning, "fo", "fo= has no effect without ruf= (RFC 9989 §4.7)")
	}
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

// uris checks the URIs of rua= or ruf= (RFC 9989 §4.7, §4.8).
func (c *checker) uris(v, tag string) {
	for _, s := range strings.Split(v, ",") {
		s = trimWSP(s)
		if i := strings.LastIndexByte(s, '!'); i >= 0 {
			if _, ok := parseSize(s[i+1:]); !ok {
				c.add(Error, tag, "%q: \"!\" must be percent-encoded in a URI (RFC 9989 §4.8)", s)
				continue
			}
			c.add(Warning, tag, "%q: the !size suffix is obsolete; reporters ignore it (RFC 9989 §4.8)", s)
			s = s[:i]
		}
		pu, err := url.Parse(s)
		if err != nil || pu.Scheme == "" {
			c.add(Error, tag, "%q is not an absolute URI (RFC 3986)", s)
			continue
		}
		if !strings.EqualFold(pu.Scheme, "mailto") {
			c.add(Warning, tag, "%q: receivers need only support mailto: (RFC 9989 §4.7)", s)
			continue
		}
		a := URI{URI: s}.Address()
		if i := strings.LastIndexByte(a, '@'); i <= 0 || i == len(a)-1 {
			c.add(Error, tag, "%q does not hold an e-mail address (RFC 6068)", s)
		}
	}
}
