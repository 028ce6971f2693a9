package dkim

import "github.com/emersion/go-msgauth/authres"

// AuthResult returns the result as an Authentication-Results entry
// (RFC 8601 §2.7.1: method dkim, header.d and header.i).
func (r *Result) AuthResult() *authres.DKIMResult {
	return &authres.DKIMResult{
		Value:      authres.ResultValue(r.Status),
		Reason:     r.Reason(),
		Domain:     r.Domain,
		Identifier: r.Identifier,
	}
}

// AuthResults returns one entry per result, or a single dkim=none when the
// message had no signature (RFC 8601 §2.7.1).
func AuthResults(results []Result) []authres.Result {
	if len(results) == 0 {
		return []authres.Result{&authres.DKIMResult{Value: authres.ResultNone}}
	}
	out := make([]authres.Result, len(results))
	for i := range results {
		out[i] = results[i].AuthResult()
	}
	return out
}
