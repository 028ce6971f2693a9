package dkim

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// AuthResult returns the result as go-msgauth's typed entry for method dkim
// (RFC 8601 §2.7.1), which has fields for header.d and header.i only.
// AuthResults gives the full entries, with header.s, header.a and header.b.
func (r *Result) AuthResult() *authres.DKIMResult {
	return &authres.DKIMResult{
		Value:      authres.ResultValue(r.Status),
		Reason:     r.Reason(),
		Domain:     r.Domain,
		Identifier: r.Identifier,
	}
}

// HeaderBLength is the number of b= characters in header.b, the least
// RFC 6008 §4 asks for.
const HeaderBLength = 8

// AuthResults returns one Authentication-Results entry per result, or a
// single dkim=none when the message had no signature (RFC 8601 §2.7.1).
//
// Each entry carries header.d, header.i, header.s and header.a
// (RFC 8601 §2.7.1) and header.b (RFC 6008): the first HeaderBLength
// characters of the signature, more where two signatures of the message
// begin alike, so that each names one signature (RFC 6008 §4). The
// entries are *authres.GenericResult values with method dkim, because
// go-msgauth's DKIMResult has no field for header.s, header.a or header.b;
// authres.Format writes them like any other.
func AuthResults(results []Result) []authres.Result {
	if len(results) == 0 {
		return []authres.Result{&authres.DKIMResult{Value: authres.ResultNone}}
	}
	out := make([]authres.Result, len(results))
	for i := range results {
		r := &results[i]
		params := map[string]string{
			"reason":   r.Reason(),
			"header.d": r.Domain,
			"header.i": r.Identifier,
			"header.s": r.Selector,
			"header.a": r.Algorithm,
			"header.b": headerB(results, i),
		}
		out[i] = &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(r.Status), Params: params}
	}
	return out
}

// headerB is the shortest prefix of at least HeaderBLength characters of
// results[i].Signature that no other signature in results starts with,
// or the whole signature when another has it all.
func headerB(results []Result, i int) string {
	b := results[i].Signature
	n := min(HeaderBLength, len(b))
	for j := range results {
		if j == i {
			continue
		}
		o := results[j].Signature
		for n < len(b) && strings.HasPrefix(o, b[:n]) {
			n++
		}
	}
	return b[:n]
}
