package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// seedKey is the Ed25519 key of RFC 8463 Appendix A.2, whose public half is
// 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=.
const seedKey = "../../dkim/testdata/rfc8463/ed25519-private-seed.b64"

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// delegated is a request of the delegated mode, with a key for s1.
func delegated(more ...string) []string {
	return append([]string{"-domain", "example.com", "-return-path", "em1234", "-selectors", "s1",
		"-target", "u1234.wl.provider.net", "-spf-include", "_spf.provider.net", "-mx", "mx.provider.net",
		"-existing-spf", "v=spf1 mx -all", "-dkim-key", "s1:" + seedKey, "-ttl", "300"}, more...)
}

// publicKeyFile writes the public half of seedKey as a PEM PUBLIC KEY.
func publicKeyFile(t *testing.T) string {
	t.Helper()
	seed, err := os.ReadFile(seedKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := dkim.ParsePrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "s1.pub")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPlanZone(t *testing.T) {
	t.Parallel()
	pub := publicKeyFile(t)
	for _, tc := range []struct {
		mode string
		args []string
		want string
	}{
		{"delegated", delegated(), `; records for example.com (delegated)
em1234.example.com.	300	IN	CNAME	u1234.wl.provider.net.
s1._domainkey.example.com.	300	IN	CNAME	s1.domainkey.u1234.wl.provider.net.
; replaces "v=spf1 mx -all"
example.com.	300	IN	TXT	"v=spf1 mx include:_spf.provider.net -all"
_dmarc.example.com.	300	IN	TXT	"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"

; records the provider serves for example.com
u1234.wl.provider.net.	300	IN	MX	10 mx.provider.net.
u1234.wl.provider.net.	300	IN	TXT	"v=spf1 include:_spf.provider.net -all"
s1.domainkey.u1234.wl.provider.net.	300	IN	TXT	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
`},
		// A public key file gives the record the private key gives; the
		// domain has no SPF record and a DMARC record with aspf=s.
		{"self-hosted", []string{"-mode", "self-hosted", "-domain", "example.com", "-return-path", "em1234",
			"-selectors", "s1", "-spf-include", "_spf.provider.net", "-mx", "mx.provider.net", "-dkim-key", "s1:" + pub,
			"-existing-dmarc", "v=DMARC1; p=reject; aspf=s", "-ttl", "300"}, `; records for example.com (self-hosted)
s1._domainkey.example.com.	300	IN	TXT	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
em1234.example.com.	300	IN	MX	10 mx.provider.net.
em1234.example.com.	300	IN	TXT	"v=spf1 include:_spf.provider.net -all"
example.com.	300	IN	TXT	"v=spf1 include:_spf.provider.net ~all"

; warning: example.com publishes no SPF record: the plan creates one that ends in ~all; list the domain's other senders before making it -all
; warning: the DMARC record of example.com has aspf=s: SPF for the return path em1234.example.com will not align, so DMARC rests on DKIM alone; remove aspf=s (relaxed is the default)
`},
		{"subdomain", []string{"-mode", "subdomain", "-domain", "example.com", "-subdomain", "mail",
			"-ns", "ns1.provider.net, ns2.provider.net", "-selectors", "s1", "-spf-include", "_spf.provider.net",
			"-mx", "mx.provider.net", "-existing-spf", "v=spf1 mx -all", "-report-uri", "mailto:d@example.com", "-ttl", "300"},
			`; records for example.com (subdomain)
mail.example.com.	300	IN	NS	ns1.provider.net.
mail.example.com.	300	IN	NS	ns2.provider.net.
; replaces "v=spf1 mx -all"
example.com.	300	IN	TXT	"v=spf1 mx include:_spf.provider.net -all"
_dmarc.example.com.	300	IN	TXT	"v=DMARC1; p=none; rua=mailto:d@example.com"

; records the provider serves for example.com
mail.example.com.	300	IN	MX	10 mx.provider.net.
mail.example.com.	300	IN	TXT	"v=spf1 include:_spf.provider.net -all"
`},
	} {
		code, out, errs := runCmd(append([]string{"plan"}, tc.args...)...)
		if code != 0 || out != tc.want || errs != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout\n%s\nwant\n%s", tc.mode, code, errs, out, tc.want)
		}
		// The zone text is what a zone file holds.
		if _, err := dnstest.ParseZone(out); err != nil {
			t.Errorf("%s: %v", tc.mode, err)
		}
	}
}

func TestPlanJSONAndTable(t *testing.T) {
	t.Parallel()
	code, out, errs := runCmd(append([]string{"plan", "-format", "json"}, delegated()...)...)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	type record struct{ Name, Type, Value string }
	var p struct {
		Records         []record `json:"records"`
		ProviderRecords []record `json:"provider_records"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	want := []record{
		{"em1234.example.com.", "CNAME", "u1234.wl.provider.net."},
		{"s1._domainkey.example.com.", "CNAME", "s1.domainkey.u1234.wl.provider.net."},
		{"example.com.", "TXT", "v=spf1 mx include:_spf.provider.net -all"},
		{"_dmarc.example.com.", "TXT", "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"},
	}
	if !slices.Equal(p.Records, want) || len(p.ProviderRecords) != 3 {
		t.Errorf("records %v, provider records %v", p.Records, p.ProviderRecords)
	}

	code, out, errs = runCmd(append([]string{"plan", "-format", "table"}, delegated()...)...)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, r := range append(want, p.ProviderRecords...) {
		if !strings.Contains(out, r.Name+" ") || !strings.Contains(out, r.Value) {
			t.Errorf("table lacks %s %s %s:\n%s", r.Name, r.Type, r.Value, out)
		}
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	code, out, errs := runCmd(append([]string{"revoke"}, delegated()...)...)
	want := `; withdraw the provider from example.com (delegated), most urgent first
; delete s1._domainkey.example.com.	300	IN	CNAME	s1.domainkey.u1234.wl.provider.net.
; delete em1234.example.com.	300	IN	CNAME	u1234.wl.provider.net.
; replaces "v=spf1 mx include:_spf.provider.net -all"
example.com.	300	IN	TXT	"v=spf1 mx -all"
`
	if code != 0 || out != want || errs != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errs, out, want)
	}
	code, out, _ = runCmd(append([]string{"revoke", "-format", "json"}, delegated()...)...)
	var j struct {
		Domain  string `json:"domain"`
		Changes []struct {
			Action string `json:"action"`
			Record struct {
				Name     string `json:"name"`
				Replaces string `json:"replaces"`
			} `json:"record"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 0 || j.Domain != "example.com." || len(j.Changes) != 3 ||
		j.Changes[0].Action != "delete" || j.Changes[2].Record.Replaces != "v=spf1 mx include:_spf.provider.net -all" {
		t.Errorf("json: exit %d, %v:\n%s", code, err, out)
	}
	code, out, _ = runCmd(append([]string{"revoke", "-format", "table"}, delegated()...)...)
	if code != 0 || !strings.Contains(out, "delete   s1._domainkey.example.com.") || !strings.Contains(out, `replaces "v=spf1 mx include:_spf.provider.net -all"`) {
		t.Errorf("table: exit %d:\n%s", code, out)
	}
}

// TestUsage: the request flags are checked in one place, each error
// naming its flag, before any file is read.
func TestUsage(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	plan := func(args ...string) []string { return append([]string{"plan"}, args...) }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{plan("-domain", "example.com", "-selectors", "s1", "-spf-include", "_spf.provider.net", "-target", "u.provider.net"), "-return-path is required in the delegated mode"},
		{plan(delegated("-mode", "self-hosted")...), "-target does not apply to the self-hosted mode"},
		{plan(delegated("-subdomain", "mail")...), "-subdomain does not apply to the delegated mode"},
		{plan("-mode", "subdomain", "-domain", "example.com", "-subdomain", "mail", "-selectors", "s1", "-spf-include", "_spf.provider.net"), "-ns is required in the subdomain mode"},
		{plan("-mode", "self-hosted", "-domain", "example.com", "-return-path", "em", "-selectors", "s1,s2", "-spf-include", "_spf.provider.net", "-mx", "mx.provider.net", "-dkim-key", "s1:"+seedKey), "-dkim-key is required for selector s2 in the self-hosted mode"},
		{plan(delegated("-dkim-key", "s3:"+seedKey)...), `-dkim-key "s3:` + seedKey + `": s3 is not one of -selectors`},
		{plan(delegated("-dkim-key", "s1:"+seedKey)...), "selector s1 has a key already"},
		{plan(delegated("-selectors", "s1,,s2")...), `-selectors "s1,,s2": an empty item`},
		{plan(delegated("-ttl", "0")...), "-ttl 0: want 1 to 2147483647 seconds"},
		{plan(delegated("-domain", "exa mple.com")...), `-domain: "exa mple.com": label "exa mple" holds ' '`},
		{plan(delegated("-existing-spf", "v=spf1 a -all")...), "-existing-spf: the domain publishes 2 SPF records"},
		{plan(delegated("-report-uri", "mailto:a@example.com;x")...), "-report-uri: "},
		{plan(delegated("-dkim-key", "s2:"+missing, "-selectors", "s1,s2")...), "-dkim-key: open " + missing},
		{plan(delegated("-dkim-key", "s2:main.go", "-selectors", "s1,s2")...), "-dkim-key: main.go: "},
		{plan(delegated("extra")...), `unexpected argument "extra"`},
	} {
		code, out, errs := runCmd(tc.args...)
		if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "domainauth: ") || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errs, tc.want)
		}
	}
}
