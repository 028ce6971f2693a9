package dkim

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"github.com/smarthost-go/smarthost/internal/authtext"
)

// HeaderBLength is the number of b= characters in header.b, the least
// RFC 6008 §4 asks for.
const HeaderBLength = 8

// maxHeaderB bounds header.b when signatures begin alike: two signatures
// alike in more than this are copies of one another.
const maxHeaderB = 128

// Results are the results of one message's signatures, in header order.
// It is a msgauth.Result: its entries name every signature, or say
// dkim=none when there is none.
type Results []*Result

// AuthResult returns the result as an Authentication-Results entry for
// method dkim (RFC 8601 §2.7.1), with header.d, header.i, header.s,
// header.a and header.b (RFC 6008: the first HeaderBLength characters of
// the signature) and the reason. Values that are not valid domains,
// addresses or base64 (from a signature that did not parse) are left out,
// and the reason is made safe for the header, so a signature cannot write
// into the field what it likes. It is a *authres.GenericResult, because
// go-msgauth's DKIMResult has no field for header.s, header.a or header.b.
func (r *Result) AuthResult() authres.Result {
	return r.entry(r.Signature[:min(HeaderBLength, len(r.Signature))])
}

// AuthResults returns the one entry of AuthResult, so that a *Result is a
// msgauth.Result.
func (r *Result) AuthResults() []authres.Result {
	return []authres.Result{r.AuthResult()}
}

func (r *Result) entry(b string) authres.Result {
	if strings.Trim(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "" {
		b = ""
	}
	return &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(r.Status), Params: map[string]string{
		"reason":   authtext.Reason(r.Err),
		"header.d": authtext.Domain(r.Domain),
		"header.i": authtext.Address(r.Identifier),
		"header.s": authtext.Domain(r.Selector),
		"header.a": authtext.Keyword(r.Algorithm),
		"header.b": b,
	}}
}

// AuthResults returns one Authentication-Results entry per signature, as
// Result.AuthResult makes them, or a single dkim=none when the message had
// no signature (RFC 8601 §2.7.1). header.b is longer than HeaderBLength
// where two signatures of the message begin alike, so that each names one
// signature (RFC 6008 §4).
func (rs Results) AuthResults() []authres.Result {
	if len(rs) == 0 {
		return []authres.Result{&authres.DKIMResult{Value: authres.ResultNone}}
	}
	out := make([]authres.Result, len(rs))
	for i, r := range rs {
		out[i] = r.entry(rs.headerB(i))
	}
	return out
}

// headerB is the shortest prefix of at least HeaderBLength characters of
// rs[i].Signature that no other signature in rs starts with, or the whole
// signature when another has it all.
func (rs Results) headerB(i int) string {
	b := rs[i].Signature
	n := min(HeaderBLength, len(b))
	for j, o := range rs {
		if j == i {
			continue
		}
		for n < len(b) && n < maxHeaderB && strings.HasPrefix(o.Signature, b[:n]) {
			n++
		}
	}
	return b[:n]
}
