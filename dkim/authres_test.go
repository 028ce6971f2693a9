package dkim_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/msgauth"
)

// TestAuthResultsHeaderB: header.b is the first 8 characters of b=, longer
// when two signatures begin alike, so that each names one (RFC 6008 §4),
// and the written header parses back with every property.
func TestAuthResultsHeaderB(t *testing.T) {
	t.Parallel()
	results := dkim.Results{
		{Status: dkim.Pass, Domain: "example.com", Selector: "s1", Identifier: "@example.com",
			Algorithm: "ed25519-sha256", Signature: "abcdefghij1xyz"},
		{Status: dkim.Pass, Domain: "relay.example.net", Selector: "smtpapi", Identifier: "@relay.example.net",
			Algorithm: "rsa-sha256", Signature: "abcdefghij2xyz"},
		{Status: dkim.Pass, Domain: "other.example", Selector: "k", Identifier: "@other.example",
			Algorithm: "rsa-sha256", Signature: "QRSTUVWXYZ"},
	}
	want := []map[string]string{
		{"header.b": "abcdefghij1", "header.d": "example.com", "header.s": "s1", "header.a": "ed25519-sha256"},
		{"header.b": "abcdefghij2", "header.d": "relay.example.net", "header.s": "smtpapi", "header.a": "rsa-sha256"},
		{"header.b": "QRSTUVWX", "header.d": "other.example", "header.s": "k", "header.a": "rsa-sha256"},
	}
	text := msgauth.Format("mx.example.org", results)
	id, parsed, err := authres.Parse(text)
	if err != nil || id != "mx.example.org" || len(parsed) != 3 {
		t.Fatalf("parse %q: %v %q %d", text, err, id, len(parsed))
	}
	for i, p := range parsed {
		g, ok := p.(*authres.GenericResult)
		if !ok {
			// go-msgauth parses method dkim into its typed form.
			d, ok := p.(*authres.DKIMResult)
			if !ok || d.Domain != want[i]["header.d"] || d.Value != authres.ResultPass {
				t.Fatalf("entry %d: %#v", i, p)
			}
			continue
		}
		for k, v := range want[i] {
			if g.Params[k] != v {
				t.Errorf("entry %d: %s=%q, want %q", i, k, g.Params[k], v)
			}
		}
	}
	for i, r := range results.AuthResults() {
		g := r.(*authres.GenericResult)
		for k, v := range want[i] {
			if g.Params[k] != v {
				t.Errorf("entry %d: %s=%q, want %q", i, k, g.Params[k], v)
			}
		}
	}
	if none := strings.TrimSpace(msgauth.Format("mx", dkim.Results(nil))); none != "mx; dkim=none" {
		t.Errorf("no signature: %q", none)
	}
}
