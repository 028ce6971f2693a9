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
	"sync"
	"testing"

	"github.com/miekg/dns"

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

// verifyWorld is the DNS of a domain and its provider on three loopback
// servers: rec is what a recursive resolver sees (the parent zone's
// delegation of example.com to ns1.example.com, the domain's records and
// the provider's), ns1 serves the zone example.com, prov the zone
// provider.net.
type verifyWorld struct {
	rec, ns1, prov *dnstest.Server
}

func newVerifyWorld(t *testing.T) *verifyWorld {
	t.Helper()
	// The records come from the plan itself: its zone text, the owner's
	// then the provider's.
	code, out, errs := runCmd(append([]string{"plan"}, delegated()...)...)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errs)
	}
	owner, provider, ok := strings.Cut(out, "\n\n")
	if !ok {
		t.Fatalf("plan: no provider's records:\n%s", out)
	}
	const parent = `
example.com.       NS   ns1.example.com.
ns1.example.com.   A    127.0.0.1
provider.net.      NS   ns.provider.net.
ns.provider.net.   A    127.0.0.1
`
	const providerData = `
_spf.provider.net. TXT  "v=spf1 ip4:192.0.2.0/24 -all"
mx.provider.net.   A    192.0.2.25
`
	w := &verifyWorld{}
	for _, s := range []struct {
		srv  **dnstest.Server
		text string
	}{
		{&w.rec, parent + providerData + owner + provider},
		{&w.ns1, "example.com. SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300\nexample.com. NS ns1.example.com.\n" + owner},
		{&w.prov, "provider.net. SOA ns.provider.net. hostmaster.provider.net. 1 3600 600 86400 300\nprovider.net. NS ns.provider.net.\n" + providerData + provider},
	} {
		srv, err := dnstest.NewServer(dnstest.MustParseZone(s.text))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		*s.srv = srv
	}
	return w
}

func (w *verifyWorld) args(more ...string) []string {
	return append(append([]string{"verify"}, delegated("-dns", w.rec.Addr, "-ip", "192.0.2.10", "-provider",
		"-ns-addr", "ns1.example.com="+w.ns1.Addr, "-ns-addr", "ns.provider.net="+w.prov.Addr)...), more...)
}

// removeDMARC takes the DMARC record out of the domain's zone, on its
// server and in the recursive view.
func (w *verifyWorld) removeDMARC() {
	w.rec.Zone.Remove("_dmarc.example.com", dns.TypeTXT)
	w.ns1.Zone.Remove("_dmarc.example.com", dns.TypeTXT)
}

func (w *verifyWorld) addDMARC() {
	w.rec.Zone.AddTXT("_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com")
	w.ns1.Zone.AddTXT("_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com")
}

func TestVerifyOK(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	code, out, errs := runCmd(w.args()...)
	want := `ok em1234.example.com. CNAME u1234.wl.provider.net.
ok s1._domainkey.example.com. CNAME s1.domainkey.u1234.wl.provider.net.
ok example.com. TXT "v=spf1 mx include:_spf.provider.net -all"
ok _dmarc.example.com. TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"
ok u1234.wl.provider.net. MX 10 mx.provider.net.
ok u1234.wl.provider.net. TXT "v=spf1 include:_spf.provider.net -all"
ok s1.domainkey.u1234.wl.provider.net. TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
pass em1234.example.com. spf 192.0.2.10
pass s1._domainkey.example.com. dkim s1
pass example.com. dmarc none
`
	if code != 0 || out != want || errs != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errs, out, want)
	}
}

func TestVerifyMissing(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	w.removeDMARC()
	code, out, errs := runCmd(w.args()...)
	if code != 1 || errs != "" || !strings.Contains(out, "\nmissing _dmarc.example.com. TXT \"v=DMARC1; p=none;") ||
		!strings.Contains(out, "\nnone example.com. dmarc -\n") {
		t.Errorf("exit %d, stderr %q, stdout\n%s", code, errs, out)
	}
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "ok ") && !strings.HasPrefix(line, "pass ") && !strings.Contains(line, "_dmarc.example.com. TXT") && !strings.Contains(line, " dmarc ") {
			t.Errorf("line %q is not ok", line)
		}
	}
}

// signalWriter is a standard error that says when it is first written
// to.
type signalWriter struct {
	mu    sync.Mutex
	b     bytes.Buffer
	first chan struct{}
}

func (s *signalWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() == 0 {
		close(s.first)
	}
	return s.b.Write(p)
}

func (s *signalWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestVerifyWait: the DMARC record is published after the first round;
// verify -wait checks again and ends as soon as everything is ok.
func TestVerifyWait(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	w.removeDMARC()
	stderr := &signalWriter{first: make(chan struct{})}
	go func() {
		select {
		case <-stderr.first:
			w.addDMARC()
		case <-t.Context().Done():
		}
	}()
	var stdout bytes.Buffer
	// Rounds every 2s (a quarter of -wait), with time to spare.
	code := run(w.args("-wait", "8s"), nil, &stdout, stderr)
	errs := stderr.String()
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	if code != 0 || len(lines) < 2 ||
		!strings.HasPrefix(lines[0], "domainauth: round 1: 6 of 7 records ok (missing _dmarc.example.com. TXT); spf pass, dkim s1 pass, dmarc none") ||
		!strings.HasSuffix(lines[len(lines)-1], "7 of 7 records ok; spf pass, dkim s1 pass, dmarc pass; all ok") {
		t.Errorf("exit %d, stderr\n%s\nstdout\n%s", code, errs, stdout.String())
	}
	if strings.Contains(stdout.String(), "missing") {
		t.Errorf("stdout is not the last round's:\n%s", stdout.String())
	}
}

// TestVerifyWaitTimeout: the record never comes; verify ends when -wait
// is up.
func TestVerifyWaitTimeout(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	w.removeDMARC()
	code, out, errs := runCmd(w.args("-wait", "1s")...)
	if code != 1 || !strings.Contains(out, "missing _dmarc.example.com. TXT") ||
		!strings.HasPrefix(errs, "domainauth: round 1: ") || !strings.Contains(errs, "\ndomainauth: -wait 1s is up: not everything is ok after round ") {
		t.Errorf("exit %d, stderr\n%s\nstdout\n%s", code, errs, out)
	}
}

const (
	tsigSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
	wrongTSIG  = "d3JvbmctZG9lcy1ub3QtbWF0Y2gtdGhlLXNlcnZlcg=="
)

func newPushServer(t *testing.T) *dnstest.Server {
	t.Helper()
	srv, err := dnstest.NewServer(dnstest.MustParseZone(`
$ORIGIN example.com.
@    SOA ns1 hostmaster 1 7200 900 1209600 300
@    NS  ns1
ns1  A   127.0.0.1
@    TXT "v=spf1 mx -all"
`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.AcceptUpdates(map[string]string{"update-key": tsigSecret})
	return srv
}

func pushArgs(srv *dnstest.Server, secret string, more ...string) []string {
	return append(append([]string{"push"}, delegated("-server", srv.Addr, "-tsig", "update-key:hmac-sha256:"+secret)...), more...)
}

// outcomes returns the first word of each line of a push's table that
// names a change.
func outcomes(out string) []string {
	var o []string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 2 && strings.HasSuffix(f[2], ".") {
			o = append(o, f[0])
		}
	}
	return o
}

func cname(srv *dnstest.Server, name string) []dns.RR {
	return srv.Zone.Resolve(name, dns.TypeCNAME).Records
}

func TestPush(t *testing.T) {
	t.Parallel()
	srv := newPushServer(t)

	code, out, errs := runCmd(pushArgs(srv, tsigSecret)...)
	if code != 0 || errs != "" || !slices.Equal(outcomes(out), []string{"applied", "applied", "applied", "applied"}) {
		t.Fatalf("push: exit %d, stderr %q, stdout\n%s", code, errs, out)
	}
	if rrs := cname(srv, "em1234.example.com."); len(rrs) != 1 || rrs[0].(*dns.CNAME).Target != "u1234.wl.provider.net." {
		t.Errorf("em1234.example.com. CNAME: %v", rrs)
	}
	if rrs := cname(srv, "s1._domainkey.example.com."); len(rrs) != 1 {
		t.Errorf("s1._domainkey.example.com. CNAME: %v", rrs)
	}
	if txt, err := srv.Zone.LookupTXT(t.Context(), "example.com"); err != nil || !slices.Equal(txt, []string{"v=spf1 mx include:_spf.provider.net -all"}) {
		t.Errorf("example.com. TXT: %q %v", txt, err)
	}
	if txt, err := srv.Zone.LookupTXT(t.Context(), "_dmarc.example.com"); err != nil || len(txt) != 1 {
		t.Errorf("_dmarc.example.com. TXT: %q %v", txt, err)
	}

	code, out, errs = runCmd(pushArgs(srv, tsigSecret)...)
	if code != 0 || errs != "" || !slices.Equal(outcomes(out), []string{"skipped", "skipped", "skipped", "skipped"}) {
		t.Errorf("push again: exit %d, stderr %q, stdout\n%s", code, errs, out)
	}

	// A wrong secret: refused, nothing changed, and neither secret shown.
	code, out, errs = runCmd(pushArgs(srv, wrongTSIG, "-revoke")...)
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "domainauth: ") || !strings.Contains(errs, "refused") {
		t.Errorf("wrong secret: exit %d, stderr %q, stdout\n%s", code, errs, out)
	}
	for _, s := range []string{wrongTSIG, tsigSecret, wrongTSIG[:12], tsigSecret[:12]} {
		if strings.Contains(out+errs, s) {
			t.Errorf("wrong secret: the secret is shown: stderr %q, stdout\n%s", errs, out)
		}
	}
	if rrs := cname(srv, "s1._domainkey.example.com."); len(rrs) != 1 {
		t.Errorf("a refused push changed the zone: s1._domainkey.example.com. CNAME: %v", rrs)
	}

	code, out, errs = runCmd(pushArgs(srv, tsigSecret, "-revoke")...)
	if code != 0 || errs != "" || !slices.Equal(outcomes(out), []string{"applied", "applied", "applied"}) {
		t.Errorf("push -revoke: exit %d, stderr %q, stdout\n%s", code, errs, out)
	}
	for _, name := range []string{"s1._domainkey.example.com.", "em1234.example.com."} {
		if rrs := cname(srv, name); len(rrs) != 0 {
			t.Errorf("after -revoke, %s CNAME: %v", name, rrs)
		}
	}
	if txt, err := srv.Zone.LookupTXT(t.Context(), "example.com"); err != nil || !slices.Equal(txt, []string{"v=spf1 mx -all"}) {
		t.Errorf("after -revoke, example.com. TXT: %q %v", txt, err)
	}
}

// TestPushConflict: the SPF record has changed since the plan was made;
// nothing is changed.
func TestPushConflict(t *testing.T) {
	t.Parallel()
	srv := newPushServer(t)
	srv.Zone.Remove("example.com", dns.TypeTXT)
	srv.Zone.AddTXT("example.com", "v=spf1 a -all")
	code, out, errs := runCmd(pushArgs(srv, tsigSecret)...)
	if code != 1 || !strings.Contains(out, "conflict") || !strings.Contains(errs, "conflict") || strings.Count(errs, "\n") != 1 {
		t.Errorf("exit %d, stderr %q, stdout\n%s", code, errs, out)
	}
	if rrs := cname(srv, "em1234.example.com."); len(rrs) != 0 {
		t.Errorf("a conflicting push changed the zone: %v", rrs)
	}
}

func TestPushBadSecret(t *testing.T) {
	t.Parallel()
	const bad = "not*base64*at*all"
	code, out, errs := runCmd(append([]string{"push"}, delegated("-server", "127.0.0.1:53", "-tsig", "update-key:hmac-sha256:"+bad)...)...)
	if code != 2 || out != "" || !strings.HasPrefix(errs, "domainauth: -tsig: ") || strings.Contains(errs, bad) {
		t.Errorf("exit %d, stderr %q, stdout %q", code, errs, out)
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
		{append([]string{"verify"}, delegated("-dkim-key", "s2:"+missing, "-selectors", "s1,s2", "-dns", "x")...), "-dns \"x\": want HOST:PORT"},
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

func TestLint(t *testing.T) {
	t.Parallel()
	srv, err := dnstest.NewServer(dnstest.MustParseZone(`
good.example.               TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.good.example.        TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.example"
s1._domainkey.good.example. TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
bad.example.                TXT "v=spf1 ip4:192.0.2.0/24 -all"
bad.example.                TXT "v=spf1 mx -all"
_dmarc.bad.example.         TXT "v=DMARC1; p=reject; rua=mailto:dmarc@bad.example"
`))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"good.example", "-dns", srv.Addr, "-selectors", "s1"}, 0, "lint of good.example: 0 errors, 0 warnings"},
		{[]string{"-dns", srv.Addr, "bad.example"}, 1, "lint of bad.example: 1 error,"},
		{[]string{"-dns", srv.Addr, "-selectors", "s2", "good.example"}, 1, "s2._domainkey.good.example."},
	} {
		code, out, errs := runCmd(append([]string{"lint"}, tc.args...)...)
		if code != tc.code || errs != "" || !strings.Contains(out, tc.want) {
			t.Errorf("lint %q: exit %d, want %d; stderr %q, stdout\n%s", tc.args, code, tc.code, errs, out)
		}
	}
}
