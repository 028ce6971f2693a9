package dmarc

import "golang.org/x/net/idna"

// toALabels converts the U-labels of a domain to A-labels ("xn--",
// RFC 5890 §2.3.2.1), as RFC 9989 §5.3.1 requires for the author domain,
// with the UTS #46 mapping for lookups (case folding and normalization) of
// golang.org/x/net/idna. An all-ASCII domain is returned as it is. It
// returns false for a domain IDNA refuses (invalid UTF-8, disallowed code
// points, a bad Bidi label).
func toALabels(d string) (string, bool) {
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(d)
			return a, err == nil
		}
	}
	return d, true
}
