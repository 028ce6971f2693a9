package msgauth_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/msgauth"
)

// TestFormat: the field value as RFC 8601 §2.2 writes it. The expected
// strings are written from the grammar: a token stays bare, a reason with
// spaces is a quoted-string, an address or base64 property is a pvalue,
// and anything else is quoted with '"' and '\' escaped.
func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		id   string
		rs   []msgauth.Result
		want string
	}{
		{"none", "mx.example.net", nil, "mx.example.net; none"},
		{"empty entries", "mx.example.net", []msgauth.Result{msgauth.Entries{}}, "mx.example.net; none"},
		{"spf pass", "mx.example.net", []msgauth.Result{msgauth.Entries{
			&authres.SPFResult{Value: authres.ResultPass, From: "bounces+1a2b@em1234.example.com"},
		}}, "mx.example.net; spf=pass smtp.mailfrom=bounces+1a2b@em1234.example.com"},
		{"reason quoted, properties in RFC order", "mx.example.net", []msgauth.Result{msgauth.Entries{
			&authres.GenericResult{Method: "dkim", Value: authres.ResultFail, Params: map[string]string{
				"header.b": "ab/+Cd==", "header.s": "s1", "header.d": "example.com", "reason": "body hash did not verify",
				"header.i": "@example.com", "header.a": "ed25519-sha256",
			}},
		}}, `mx.example.net; dkim=fail reason="body hash did not verify" header.d=example.com header.i=@example.com header.s=s1 header.a=ed25519-sha256 header.b=ab/+Cd==`},
		{"quote and backslash escaped", `mx "1"`, []msgauth.Result{msgauth.Entries{
			&authres.GenericResult{Method: "x-test", Value: "pass", Params: map[string]string{
				"reason": `a "b" \c`, "policy.x": "two words", "smtp.a": "a;b",
			}},
		}}, `"mx \"1\""; x-test=pass reason="a \"b\" \\c" policy.x="two words" smtp.a="a;b"`},
		{"control characters dropped", "mx.example.net", []msgauth.Result{msgauth.Entries{
			&authres.DMARCResult{Value: authres.ResultPass, From: "exa\r\nmple.com"},
		}}, "mx.example.net; dmarc=pass header.from=example.com"},
		{"bad method, result or property name left out", "mx.example.net", []msgauth.Result{msgauth.Entries{
			&authres.GenericResult{Method: "bad method", Value: "pass"},
			&authres.GenericResult{Method: "x", Value: "pa ss"},
			&authres.GenericResult{Method: "x", Value: "pass", Params: map[string]string{"nodot": "1", "a.b c": "2", "a.b": "3"}},
		}}, "mx.example.net; x=pass a.b=3"},
	} {
		if got := msgauth.Format(tc.id, tc.rs...); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestHeader: the whole field, folded before each entry and where a line
// would pass 78 characters, every line at most 78 when its words allow,
// CRLF at the end; unfolded, it is "Authentication-Results: " + Format.
func TestHeader(t *testing.T) {
	t.Parallel()
	rs := msgauth.Entries{
		&authres.SPFResult{Value: authres.ResultPass, From: "bounces+1a2b@em1234.example.com"},
		&authres.GenericResult{Method: "dkim", Value: authres.ResultPass, Params: map[string]string{
			"header.d": "example.com", "header.i": "@example.com", "header.s": "s1",
			"header.a": "ed25519-sha256", "header.b": "76THQRji",
		}},
		&authres.DMARCResult{Value: authres.ResultPass, From: "example.com"},
	}
	h := msgauth.Header("mx.example.net", rs)
	want := "Authentication-Results: mx.example.net;\r\n" +
		" spf=pass smtp.mailfrom=bounces+1a2b@em1234.example.com;\r\n" +
		" dkim=pass header.d=example.com header.i=@example.com header.s=s1\r\n" +
		" header.a=ed25519-sha256 header.b=76THQRji;\r\n" +
		" dmarc=pass header.from=example.com\r\n"
	if h != want {
		t.Errorf("got\n%q\nwant\n%q", h, want)
	}
	unfolded := strings.ReplaceAll(strings.TrimSuffix(h, "\r\n"), "\r\n", "") // RFC 5322 §2.2.3
	if unfolded != "Authentication-Results: "+msgauth.Format("mx.example.net", rs) {
		t.Errorf("unfolded %q differs from Format", unfolded)
	}
	if got := msgauth.Header("mx.example.net"); got != "Authentication-Results: mx.example.net; none\r\n" {
		t.Errorf("no results: %q", got)
	}
}

// FuzzAuthResultsRoundTrip: whatever d=, s=, i=, a=, b= and reason a
// signature carries (an attacker writes them), the header we write parses
// back, with go-msgauth's authres.Parse, to exactly the properties of our
// entry and no others: nothing can be injected. The entry's properties are
// formatted under an unknown method, which authres.Parse keeps whole, and
// under dkim, which it reads into its typed DKIMResult.
func FuzzAuthResultsRoundTrip(f *testing.F) {
	f.Add("example.com", "s1", "@example.com", "ed25519-sha256", "76THQRjiP2yu", "body hash did not verify")
	f.Add(`x" header.i=@bank.example policy.x="y`, "s", "", "rsa-sha256", "abc", `dkim: signature d=: invalid domain "x\" header.i=@bank.example policy.x=\"y"`)
	f.Add("a;b", "s; dkim=pass header.d=bank.example", `"a b"@x.example`, "a=b", "AAAA; x", "ok; dkim=pass header.d=bank.example reason=x")
	f.Add("bank.example", "(c)", `\@x`, "rsa-sha256", "", "l=5 header.d=evil.example")
	f.Fuzz(func(t *testing.T, d, s, i, a, b, reason string) {
		r := &dkim.Result{Status: dkim.PermError, Err: errors.New(reason), Domain: d, Selector: s,
			Identifier: i, Algorithm: a, Signature: b}
		entry := r.AuthResult().(*authres.GenericResult)
		want := map[string]string{}
		for k, v := range entry.Params {
			if strings.Contains(k, ".") && v != "" {
				want[k] = v
			}
		}
		generic := &authres.GenericResult{Method: "x-dkim", Value: entry.Value, Params: entry.Params}
		text := msgauth.Format("mx.example.net", msgauth.Entries{generic})
		id, parsed, err := authres.Parse(text)
		if err != nil || id != "mx.example.net" || len(parsed) != 1 {
			t.Fatalf("%q: parse: %v, %q, %d entries", text, err, id, len(parsed))
		}
		g, ok := parsed[0].(*authres.GenericResult)
		if !ok || g.Method != "x-dkim" || g.Value != authres.ResultPermError {
			t.Fatalf("%q: parsed %#v", text, parsed[0])
		}
		got := map[string]string{}
		for k, v := range g.Params {
			if strings.Contains(k, ".") {
				got[k] = v
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%q:\nparsed properties %q\nwant %q", text, got, want)
		}

		text = msgauth.Format("mx.example.net", r)
		_, parsed, err = authres.Parse(text)
		if err != nil || len(parsed) != 1 {
			t.Fatalf("%q: parse: %v, %d entries", text, err, len(parsed))
		}
		typed, ok := parsed[0].(*authres.DKIMResult)
		if !ok || typed.Value != authres.ResultPermError || typed.Domain != want["header.d"] || typed.Identifier != want["header.i"] {
			t.Fatalf("%q: parsed %#v, want d=%q i=%q", text, parsed[0], want["header.d"], want["header.i"])
		}
		h := msgauth.Header("mx.example.net", r)
		for _, line := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("line of %d octets", len(line))
			}
		}
	})
}
