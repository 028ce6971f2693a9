package msgauth_test

import (
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/internal/peertest"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/spf"
)

// perlParser prints what Mail::AuthenticationResults (a strict RFC 8601
// parser, Debian libmail-authenticationresults-perl) reads in a header: the
// authserv-id, then each entry and its properties, one a line.
const perlParser = `
use strict; use warnings;
use Mail::AuthenticationResults::Parser;
local $/; my $h = <STDIN>;
my $p = Mail::AuthenticationResults::Parser->new()->parse($h);
print "id ", $p->value()->value(), "\n";
for my $e (@{$p->children()}) {
  print "entry ", $e->key(), "=", $e->value(), "\n";
  for my $c (@{$e->children()}) { print "prop ", $c->key(), "=", $c->value(), "\n"; }
}
`

// TestInteropMailAuthenticationResults: a header holding attacker-chosen
// d=, s=, i= and reasons (the injection of a signature whose d= is
// `x" header.i=@bank.example policy.x="y`, odd local parts in MAIL FROM)
// is accepted by Mail::AuthenticationResults, which reads exactly our
// entries and properties back: nothing injected, nothing lost.
func TestInteropMailAuthenticationResults(t *testing.T) {
	t.Parallel()
	perl := peertest.Perl(t, "Mail::AuthenticationResults::Parser")
	injected := &dkim.Result{Status: dkim.PermError, Domain: `x" header.i=@bank.example policy.x="y`, Selector: "s1",
		Identifier: "@x", Algorithm: "rsa-sha256", Signature: "abcdefghijkl",
		Err: errors.New(`dkim: signature d=: dkim: invalid domain "x\" header.i=@bank.example policy.x=\"y"`)}
	good := &dkim.Result{Status: dkim.Pass, Domain: "example.com", Selector: "s1", Identifier: "@example.com",
		Algorithm: "ed25519-sha256", Signature: "76THQRjiP2yu"}
	ip := netip.MustParseAddr("192.0.2.1")
	spfResults := []*spf.Result{
		{Status: spf.Fail, Err: errors.New(`spf: example.com does not permit 192.0.2.1 (-all in example.com)`), IP: ip,
			Sender: `"o'brien; dkim=pass"@example.com`, Identity: spf.IdentityMailFrom},
		{Status: spf.Pass, IP: ip, Sender: "bounces+1a2b@em1234.example.com", Identity: spf.IdentityMailFrom},
		{Status: spf.PermError, Err: errors.New(`spf: syntax error: "a:\"x\\" policy.y=1": bad; dkim=pass`), IP: ip,
			HELO: "mta7.provider.example", Identity: spf.IdentityHELO},
	}
	results := []msgauth.Result{dkim.Results{injected, good}}
	for _, r := range spfResults {
		results = append(results, r)
	}

	var want []string
	want = append(want, "id mx.example.net")
	for _, r := range results {
		for _, e := range r.AuthResults() {
			line := strings.TrimPrefix(msgauth.Format("x", msgauth.Entries{e}), "x; ")
			method, _, _ := strings.Cut(line, " ")
			want = append(want, "entry "+method)
			params := entryParams(e)
			if v := params["reason"]; v != "" {
				want = append(want, "prop reason="+v)
			}
			for _, k := range []string{"smtp.mailfrom", "smtp.helo", "header.d", "header.i", "header.s", "header.a", "header.b"} {
				if v := params[k]; v != "" {
					want = append(want, "prop "+k+"="+v)
				}
			}
		}
	}
	h := msgauth.Header("mx.example.net", results...)
	cmd := exec.Command(perl, "-e", perlParser)
	cmd.Stdin = strings.NewReader(h)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Mail::AuthenticationResults refuses\n%s\n%s", h, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("header\n%s\nread as\n%s\nwant\n%s", h, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range got {
		if strings.Contains(l, "bank.example") && !strings.HasPrefix(l, "prop reason=") {
			t.Errorf("the injected domain reached %q", l)
		}
	}
}

// entryParams returns the method's properties of the entries this module
// writes.
func entryParams(e authres.Result) map[string]string {
	switch r := e.(type) {
	case *authres.SPFResult:
		return map[string]string{"reason": r.Reason, "smtp.mailfrom": r.From, "smtp.helo": r.Helo}
	case *authres.GenericResult:
		return r.Params
	case *authres.DKIMResult:
		return map[string]string{"reason": r.Reason, "header.d": r.Domain, "header.i": r.Identifier}
	}
	return nil
}
