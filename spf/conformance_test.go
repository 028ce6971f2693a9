package spf_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smarthost-go/smarthost/spf"
)

// override is the result the runner expects instead of a suite's, and why.
type override struct {
	results []string
	why     string
}

// rfc7208Wins names the suite cases whose expectation conflicts with
// RFC 7208 (as the RFC 7208 openspf suite reads it); the runner expects
// RFC 7208's result instead.
var rfc7208Wins = map[string]override{
	// Cases listing several results, where RFC 7208's answer is not the
	// one the suite prefers (mostly RFC 4408's type SPF records, which
	// RFC 7208 §3.1 and §14.1 retire: only TXT is queried).
	"rfc7208-tests.yml/multispf1":                     {[]string{"fail"}, "RFC 7208 §3.1: type SPF records are not queried"},
	"rfc4408-tests.yml/multispf1":                     {[]string{"fail"}, "RFC 7208 §3.1: type SPF records are not queried"},
	"rfc4408-tests.yml/multispf2":                     {[]string{"pass"}, "RFC 7208 §3.1: type SPF records are not queried"},
	"rfc4408-tests.yml/spfonly":                       {[]string{"none"}, "RFC 7208 §3.1: type SPF records are not queried"},
	"rfc4408-tests.yml/spfoverride":                   {[]string{"fail"}, "RFC 7208 §3.1: type SPF records are not queried"},
	"rfc4408-tests.yml/multitxt1":                     {[]string{"permerror"}, "RFC 7208 §4.5: two TXT SPF records are permerror"},
	"rfc4408-tests.yml/txttimeout":                    {[]string{"temperror"}, "RFC 7208 §4.4: TXT lookup timeout is temperror"},
	"rfc4408-tests.yml/exists-dnserr":                 {[]string{"temperror"}, "RFC 7208 §5: a DNS error is temperror"},
	"rfc4408-tests.yml/mx-limit":                      {[]string{"permerror"}, "RFC 7208 §4.6.4: over 10 MX names is permerror"},
	"rfc4408-tests.yml/invalid-domain-empty-label":    {[]string{"fail"}, "RFC 7208 leaves this undefined (suite CHANGES 2014.04); treated as non-existent, as RFC 4408 4.3/1 and 5/10/3 allow"},
	"rfc4408-tests.yml/invalid-domain-long":           {[]string{"fail"}, "RFC 7208 leaves this undefined (suite CHANGES 2014.04); treated as non-existent, as RFC 4408 4.3/1 and 5/10/3 allow"},
	"rfc4408-tests.yml/invalid-domain-long-via-macro": {[]string{"fail"}, "RFC 7208 leaves this undefined (suite CHANGES 2014.04); treated as non-existent, as RFC 4408 4.3/1 and 5/10/3 allow"},
	// pyspf extensions outside RFC 7208: a "default=" modifier honoured
	// in its lax mode (strict: 0) and an "ambiguous" result in its harsh
	// mode (strict: 2). RFC 7208 §6 ignores unknown modifiers, and
	// pyspf's own default (strict: 1) gives neutral here too.
	"pyspf-test.yml/default-modifier":       {[]string{"neutral"}, "RFC 7208 §6: unknown modifier ignored"},
	"pyspf-test.yml/default-modifier-harsh": {[]string{"neutral"}, "RFC 7208 §6: unknown modifier ignored"},
	// stalwart ignores a syntax error after a matching "-all"; RFC 7208
	// §4.6 checks the whole record (openspf rfc7208 "mech-after-all"-style
	// cases expect permerror).
	"all.yml/All test#0.0": {[]string{"permerror"}, "RFC 7208 §4.6: unknown mechanism \"ip\" anywhere is permerror"},
	// stalwart matches exists with AAAA records; RFC 7208 §5.7 asks for
	// an A record even for IPv6 clients.
	"exists.yml/Exists#1.0":           {[]string{"fail"}, "RFC 7208 §5.7: exists queries A only"},
	"macro.yml/Macro expansion 2#1.0": {[]string{"fail"}, "RFC 7208 §5.7: exists queries A only"},
	// stalwart does not limit void lookups; RFC 7208 §4.6.4 (and the
	// openspf "void-over-limit" case) gives permerror after 2.
	"basic.yml/DNS Lookup Limits#0.0": {[]string{"permerror"}, "RFC 7208 §4.6.4: more than 2 void lookups"},
	// stalwart looks up MX names until one matches and errs only at the
	// 11th; the openspf "mx-limit" case (and pyspf) make more than 10 MX
	// names permerror before any address lookup.
	"basic.yml/DNS Lookup Limits#5.0": {[]string{"permerror"}, "RFC 7208 §4.6.4: more than 10 MX names is permerror"},
}

// bundledSuites are the suite files run by default.
func bundledSuites(t testing.TB) []string {
	files := []string{"testdata/rfc7208-tests.yml", "testdata/rfc4408-tests.yml", "testdata/pyspf-test.yml"}
	st, err := filepath.Glob("testdata/stalwart-mail-auth/*.yml")
	if err != nil || len(st) == 0 {
		t.Fatalf("stalwart suite missing: %v", err)
	}
	return append(files, st...)
}

func loadCases(t testing.TB, files []string) []*suiteCase {
	var all []*suiteCase
	for _, f := range files {
		cs, err := loadSuiteFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			t.Fatalf("%s: no cases", f)
		}
		all = append(all, cs...)
	}
	return all
}

// runCase evaluates one case with a fresh Checker.
func runCase(c *suiteCase) *spf.Result {
	return runCaseWith(c, &spf.Options{Hostname: "receiver.example"})
}

func runCaseWith(c *suiteCase, opts *spf.Options) *spf.Result {
	chk, err := spf.NewChecker(c.Resolver, opts)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	ip, err := netip.ParseAddr(c.IP)
	if err != nil {
		return &spf.Result{Status: "bad test ip " + spf.Status(c.IP)}
	}
	if c.HostStyle {
		// The stalwart cases give the HELO name as "domain": HELO is
		// checked first and decides when it fails (RFC 7208 §2.3), else
		// MAIL FROM (null: postmaster@helo) decides.
		if r := chk.CheckHELO(ctx, ip, c.Domain); r.Status == spf.Fail {
			return r
		}
		return chk.CheckMailFrom(ctx, ip, c.Sender, c.Domain)
	}
	return chk.CheckMailFrom(ctx, ip, c.MailFrom, c.HELO)
}

// checkCase returns "" when the result is acceptable, else why not.
func checkCase(c *suiteCase, r *spf.Result) string {
	want := c.Results
	if w, ok := rfc7208Wins[c.ID()]; ok {
		want = w.results
	}
	if _, ok := rfc7208Wins[c.ID()]; !ok && len(want) > 1 {
		// Without a named reason, the suite's preferred result is due.
		want = want[:1]
	}
	if !slices.Contains(want, string(r.Status)) {
		return fmt.Sprintf("result %s (%v), want %v", r.Status, r.Err, want)
	}
	if (r.Err == nil) != (r.Status == spf.Pass) {
		return fmt.Sprintf("status %s with Err %v", r.Status, r.Err)
	}
	if r.Status == spf.None && !errors.Is(r.Err, spf.ErrNoRecord) {
		return fmt.Sprintf("status none with Err %v, want ErrNoRecord", r.Err)
	}
	if c.Explanation != nil && r.Status == spf.Fail {
		want := *c.Explanation
		if want == "DEFAULT" {
			want = ""
		}
		if r.Explanation != want {
			return fmt.Sprintf("explanation %q, want %q", r.Explanation, want)
		}
	}
	return ""
}

// TestConformance runs the openspf RFC 7208 and RFC 4408 suites, pyspf's
// own cases and the stalwart mail-auth cases. SPF_SUITE=a.yml,b.yml runs
// those files instead and ends with the line "N passed, M failed".
func TestConformance(t *testing.T) {
	files := bundledSuites(t)
	custom := os.Getenv("SPF_SUITE")
	if custom != "" {
		files = strings.Split(custom, ",")
		for i, f := range files {
			// Paths may be relative to the module root as well as to
			// the package directory (where go test runs).
			if _, err := os.Stat(f); err != nil && !filepath.IsAbs(f) {
				if _, err := os.Stat(filepath.Join("..", f)); err == nil {
					files[i] = filepath.Join("..", f)
				}
			}
		}
	}
	cases := loadCases(t, files)
	var passed, failed atomic.Int64
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.File+"/"+c.Name, func(t *testing.T) {
				t.Parallel()
				r := runCase(c)
				// Concurrent MX address lookups give the same result
				// and the same counts.
				if rc := runCaseWith(c, &spf.Options{Hostname: "receiver.example", ConcurrentMX: true}); rc.Status != r.Status ||
					rc.DNSTerms != r.DNSTerms || rc.VoidLookups != r.VoidLookups || rc.Explanation != r.Explanation {
					t.Errorf("ConcurrentMX: %s %d/%d %q, sequential %s %d/%d %q", rc.Status, rc.DNSTerms, rc.VoidLookups, rc.Explanation,
						r.Status, r.DNSTerms, r.VoidLookups, r.Explanation)
				}
				if msg := checkCase(c, r); msg != "" {
					failed.Add(1)
					t.Errorf("%s: %s\n%s", c.Scenario, msg, r.Trace)
					return
				}
				passed.Add(1)
			})
		}
	})
	if custom == "" {
		// The bundled suites must keep their sizes (see SOURCES).
		counts := map[string]int{}
		for _, c := range cases {
			counts[c.File]++
		}
		for f, n := range map[string]int{"rfc7208-tests.yml": 203, "rfc4408-tests.yml": 191, "pyspf-test.yml": 16} {
			if counts[f] != n {
				t.Errorf("%s: %d cases, want %d", f, counts[f], n)
			}
		}
		for id := range rfc7208Wins {
			if !slices.ContainsFunc(cases, func(c *suiteCase) bool { return c.ID() == id }) {
				t.Errorf("rfc7208Wins names %s, which is not a case", id)
			}
		}
	}
	conformanceSummary = fmt.Sprintf("%d passed, %d failed", passed.Load(), failed.Load())
	t.Log(conformanceSummary)
}

// conformanceSummary is TestConformance's count, printed by TestMain as
// the last line of the run (after go test's per-test lines).
var conformanceSummary string

func TestMain(m *testing.M) {
	code := m.Run()
	if conformanceSummary != "" {
		fmt.Println(conformanceSummary)
	}
	os.Exit(code)
}
