package dkim

import (
	"fmt"
	"strings"
)

// tag is one tag-spec of a tag-list (RFC 6376 §3.2).
type tag struct {
	name  string
	value string // without the surrounding FWS; inner FWS kept
	// start and end delimit the raw value region in the parsed text: from
	// just after "=" to just before the next ";" (or the end), so the
	// surrounding white space is included (RFC 6376 §3.7, b= removal).
	start, end int
}

// maxTags bounds the number of tags of one list; real lists have under 20.
const maxTags = 64

// parseTagList parses a tag-list (RFC 6376 §3.2):
//
//	tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//	tag-name  =  ALPHA *ALNUMPUNC
//
// Tag names are case-sensitive; a duplicate name is an error. Empty
// tag-specs (white space only, as after a final ";") are skipped. Values
// may hold any byte but ";"; a value with a control character other than
// FWS is refused.
func parseTagList(s string) ([]tag, error) {
	var tags []tag
	pos := 0
	for pos <= len(s) {
		end := strings.IndexByte(s[pos:], ';')
		if end < 0 {
			end = len(s)
		} else {
			end += pos
		}
		spec := s[pos:end]
		if strings.TrimLeft(spec, " \t\r\n") == "" {
			pos = end + 1
			continue
		}
		eq := strings.IndexByte(spec, '=')
		if eq < 0 {
			return nil, fmt.Errorf("%w: tag-spec %q has no \"=\"", ErrSyntax, clip(spec))
		}
		name := strings.Trim(spec[:eq], " \t\r\n")
		if !validTagName(name) {
			return nil, fmt.Errorf("%w: bad tag name %q", ErrSyntax, clip(name))
		}
		for _, t := range tags {
			if t.name == name {
				return nil, fmt.Errorf("%w: duplicate tag %q", ErrSyntax, name)
			}
		}
		if len(tags) == maxTags {
			return nil, fmt.Errorf("%w: more than %d tags", ErrSyntax, maxTags)
		}
		raw := spec[eq+1:]
		for i := 0; i < len(raw); i++ {
			if c := raw[i]; c < 0x20 && !isFWSByte(c) || c == 0x7f {
				return nil, fmt.Errorf("%w: control character in tag %q", ErrSyntax, name)
			}
		}
		tags = append(tags, tag{
			name:  name,
			value: strings.Trim(raw, " \t\r\n"),
			start: pos + eq + 1,
			end:   end,
		})
		pos = end + 1
	}
	return tags, nil
}

func validTagName(n string) bool {
	if n == "" || !isAlpha(n[0]) {
		return false
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// lookupTag returns the value of the named tag.
func lookupTag(tags []tag, name string) (string, bool) {
	for _, t := range tags {
		if t.name == name {
			return t.value, true
		}
	}
	return "", false
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// splitColonList splits a colon-separated list with optional FWS around the
// items (h= of RFC 6376 §3.5 and §3.6.1, t= and s= of §3.6.1).
func splitColonList(s string) []string {
	parts := strings.Split(s, ":")
	for i, p := range parts {
		parts[i] = strings.Trim(p, " \t\r\n")
	}
	return parts
}
