package dmarc

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestOpenDMARCRecordParse runs OpenDMARC's record-parse cases. OpenDMARC's
// outcomes map onto Parse: EMPTY and BAD_VERSION are Parse errors,
// NO_REQUIRED_P is a record without p=, BAD_VALUE a record with a tag in
// Invalid, OKAY a record with p= and nothing invalid.
func TestOpenDMARCRecordParse(t *testing.T) {
	var cases []struct {
		Case     int
		Record   string
		Expected string
	}
	readJSON(t, "testdata/opendmarc/dmarc-record-parse.json", &cases)
	if len(cases) != 19 {
		t.Fatalf("%d cases, want 19", len(cases))
	}
	for _, c := range cases {
		r, err := Parse(c.Record)
		var got string
		switch {
		case err != nil && strings.TrimSpace(c.Record) == "":
			got = "DMARC_PARSE_ERROR_EMPTY"
		case err != nil:
			got = "DMARC_PARSE_ERROR_BAD_VERSION"
		case len(r.Invalid) > 0:
			got = "DMARC_PARSE_ERROR_BAD_VALUE"
		case r.Policy == "":
			got = "DMARC_PARSE_ERROR_NO_REQUIRED_P"
		default:
			got = "DMARC_PARSE_OKAY"
		}
		if got != c.Expected {
			t.Errorf("case %d %q: got %s, want %s (record %+v)", c.Case, c.Record, got, c.Expected, r)
		}
	}
}

// TestRealWorldTolerated: every record Mail::DMARC tolerates parses, with
// its p= and the values a reader of the record sees.
func TestRealWorldTolerated(t *testing.T) {
	f, err := os.Open("testdata/mail-dmarc/real-world-records-tolerated.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	recs := map[string]*Record{}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		n++
		domain, txt, ok := strings.Cut(strings.TrimPrefix(line, "domain="), ";")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		r, err := Parse(txt)
		if err != nil {
			t.Errorf("%s: %v", domain, err)
			continue
		}
		if r.Policy == "" {
			t.Errorf("%s: no p= in %q", domain, txt)
		}
		recs[domain] = r
		// Round trip.
		r2, err := Parse(r.String())
		if err != nil || r2.String() != r.String() {
			t.Errorf("%s: round trip %q -> %q (%v)", domain, r.String(), r2, err)
		}
	}
	if n != 34 {
		t.Errorf("%d records, want 34", n)
	}
	// Spot checks against the text of the records.
	if r := recs["cmnet.org"]; r == nil || len(r.AggregateURIs) != 1 || r.AggregateURIs[0].URI != "mailto:postmaster@cmnet.org" || r.AggregateURIs[0].MaxSize != 10<<20 || r.Pct() != 100 || r.ReportInterval != 86400 {
		t.Errorf("cmnet.org: %+v", r)
	}
	if r := recs["genetex.com"]; r == nil || r.SubdomainPolicy != "" || r.Policy != PolicyNone {
		t.Errorf("genetex.com: sp-none must not set sp: %+v", r)
	}
	if r := recs["theluxurycloset.info"]; r == nil || r.Policy != PolicyReject || r.DKIMAlignment() != Strict || r.SPFAlignment() != Relaxed {
		t.Errorf("theluxurycloset.info: %+v", r)
	}
	if r := recs["teogenes.com.br"]; r == nil || r.Policy != PolicyQuarantine || r.SubdomainPolicy != PolicyQuarantine || r.FailureOptions != nil {
		t.Errorf("teogenes.com.br: fo:1:d has no '=' and must be ignored: %+v", r)
	}
	if r := recs["mail-peninsula.com"]; r == nil || r.ReportInterval != 86000 || r.AggregateURIs[0].Address() != "umesh@force24.co.uk" {
		t.Errorf("mail-peninsula.com: %+v", r)
	}
}

func TestParseValues(t *testing.T) {
	r, err := Parse("v=DMARC1;p=reject; sp=quarantine; np=none; psd=n; t=y; adkim=s; aspf=s; pct=20; fo=1:d; rf=afrf; ri=3600; rua=mailto:a@example.com, mailto:b@example.net!5k; ruf=mailto:f@example.com; x=1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Policy != PolicyReject || r.SubdomainPolicy != PolicyQuarantine || r.NonexistentPolicy != PolicyNone ||
		r.PSD != 'n' || !r.Testing || r.ADKIM != Strict || r.ASPF != Strict || r.Pct() != 20 ||
		r.FO() != "1:d" || r.ReportInterval != 3600 || len(r.AggregateURIs) != 2 || r.AggregateURIs[1].MaxSize != 5<<10 ||
		r.AggregateURIs[1].Host() != "example.net" || len(r.FailureURIs) != 1 || len(r.Unknown) != 1 {
		t.Fatalf("%+v", r)
	}
	want := "v=DMARC1; p=reject; sp=quarantine; np=none; psd=n; t=y; adkim=s; aspf=s; pct=20; fo=1:d; rf=afrf; ri=3600; rua=mailto:a@example.com,mailto:b@example.net!5k; ruf=mailto:f@example.com; x=1"
	if r.String() != want {
		t.Errorf("String:\n got %s\nwant %s", r.String(), want)
	}
	for _, bad := range []string{"", "  ", "v=DMARC2; p=none", "p=none; v=DMARC1", "v=dmarc1; p=none", "v=DMARC1p=none"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	// Defaults.
	r, _ = Parse("v=DMARC1; p=none")
	if r.Pct() != 100 || r.DKIMAlignment() != Relaxed || r.SPFAlignment() != Relaxed || r.FO() != "0" || r.Testing || r.PSD != 0 {
		t.Errorf("defaults: %+v", r)
	}
}

func TestCheck(t *testing.T) {
	has := func(ps []Problem, sev Severity, tag string) bool {
		for _, p := range ps {
			if p.Severity == sev && p.Tag == tag {
				return true
			}
		}
		return false
	}
	if ps := Check("v=DMARC1; p=reject; rua=mailto:d@example.com"); len(ps) != 0 {
		t.Errorf("clean record: %v", ps)
	}
	ps := Check("v=DMARC1; p=n; sp=bob; adkim=x; pct=101; fo=0:1; rf=iodef; ri=-1; rua=mailto:a@b.example!x, https://r.example/; psd=q; t=maybe; fo:1; p=none; foo=bar")
	for _, w := range []struct {
		sev Severity
		tag string
	}{{Error, "p"}, {Error, "sp"}, {Error, "adkim"}, {Error, "pct"}, {Error, "fo"}, {Error, "rf"}, {Error, "ri"}, {Error, "rua"}, {Error, "psd"}, {Error, "t"}, {Error, ""}, {Warning, "foo"}, {Warning, "rua"}, {Warning, "pct"}} {
		if !has(ps, w.sev, w.tag) {
			t.Errorf("no %v for %q in %v", w.sev, w.tag, ps)
		}
	}
	if ps := Check("v=DMARC1; pct=100"); !has(ps, Error, "p") {
		t.Errorf("missing p: %v", ps)
	}
	if ps := Check("V=BOB"); len(ps) != 1 || ps[0].Tag != "v" {
		t.Errorf("bad version: %v", ps)
	}
}
