package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

const zoneFile = "testdata/example.zone"

// authcheck runs the program on stdin and returns its exit status and
// output.
func authcheck(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := run(args, bytes.NewReader(stdin), &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bhOf is the bh= of each DKIM-Signature field of a message, read here
// with a regular expression rather than the program's tag parser.
func bhOf(t *testing.T, msg []byte) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`bh=([A-Za-z0-9+/=]+);`).FindAllSubmatch(msg, -1) {
		out = append(out, string(m[1]))
	}
	if len(out) == 0 {
		t.Fatal("no bh= in the message")
	}
	return out
}

func wantLines(t *testing.T, name, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("%s: no %q in the output:\n%s", name, l, out)
		}
	}
}

// TestRelayed: the message the smart host signed twice (dkimpy, not this
// module) passes everything; the output shows the client taken from the
// topmost Received field and Return-Path, each check's DNS, and the hops.
func TestRelayed(t *testing.T) {
	t.Parallel()
	msg := readFile(t, "testdata/relayed.eml")
	bh := bhOf(t, msg)
	status, out, errOut := authcheck(t, msg, "-zone", zoneFile, "-authserv-id", "mx.example.net")
	if status != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", status, errOut, out)
	}
	first, _, _ := strings.Cut(out, "\n")
	want := "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=bounces+1a2b@em1234.example.com; " +
		"dkim=pass header.d=provider.example header.i=@provider.example header.s=pm header.a=ed25519-sha256 header.b=bOV3B9O2; " +
		"dkim=pass header.d=example.com header.i=@example.com header.s=s1 header.a=ed25519-sha256 header.b=76THQRji; " +
		"dmarc=pass header.from=example.com"
	if first != want {
		t.Errorf("first line\n%s\nwant\n%s", first, want)
	}
	wantLines(t, "relayed", out,
		"client: ip=198.51.100.10 helo=mta7.provider.example mail-from=bounces+1a2b@em1234.example.com\n  (from Received field 1, Return-Path)",
		"== spf: pass\nidentity: mailfrom, domain em1234.example.com\nmatched: include:_spf.provider.example in em1234.example.com",
		`TXT _spf.provider.example: "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:25::/48 -all"`,
		"== dkim 1 of 2: pass d=provider.example s=pm a=ed25519-sha256 c=relaxed/relaxed",
		"body hash: bh="+bh[0]+", the body as received matches",
		`TXT pm._domainkey.provider.example: "v=DKIM1; k=ed25519; p=phYH5TneDrblkgW7ON0n2t8ldHAcAl6sKUC0YvLABF8="`,
		"== dkim 2 of 2: pass d=example.com s=s1",
		"key: pm._domainkey.provider.example\n",
		"key: s1._domainkey.example.com, a CNAME to s1.example-com.dkim.provider.example\n",
		`TXT s1._domainkey.example.com: "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`,
		"== dmarc: pass\nauthor domain (From): example.com\nrecord: v=DMARC1; p=quarantine",
		"found at: _dmarc.example.com\norganizational domain: example.com\npolicy: p=quarantine, disposition none",
		"spf alignment: pass (em1234.example.com)\ndkim alignment: pass (example.com)",
		"== received chain: 2 hops, first to last\n1. Thu, 03 Dec 2026 12:43:01 +0000  -\n   from app.example.com (app.example.com) [203.0.113.7] by mta7.provider.example with ESMTPSA\n"+
			"2. Thu, 03 Dec 2026 12:43:04 +0000  +3s\n   from mta7.provider.example (mta7.provider.example) [198.51.100.10] by mx.example.net with ESMTPS\n",
	)
	// The section order: the field, the client, spf, dkim, dmarc, hops.
	last := -1
	for _, s := range []string{"Authentication-Results:", "client:", "== spf:", "== dkim 1", "== dkim 2", "== dmarc:", "== received chain:"} {
		i := strings.Index(out, s)
		if i <= last {
			t.Errorf("%q out of order", s)
		}
		last = i
	}
}

// TestTampered: a mailing list passed the message on from an address the
// return path's SPF does not permit, with a footer: both body hashes
// fail, DMARC fails, and the exit status is 1.
func TestTampered(t *testing.T) {
	t.Parallel()
	msg := readFile(t, "testdata/tampered.eml")
	bh := bhOf(t, msg)
	status, out, _ := authcheck(t, msg, "-zone", zoneFile)
	if status != 1 {
		t.Errorf("exit %d, want 1", status)
	}
	wantLines(t, "tampered", out,
		`; spf=fail reason="em1234.example.com does not permit 203.0.113.66 (-all in em1234.example.com)" smtp.mailfrom=bounces+1a2b@em1234.example.com;`,
		`; dkim=fail reason="body hash did not verify" header.d=provider.example`,
		`; dkim=fail reason="body hash did not verify" header.d=example.com`,
		"; dmarc=fail reason=",
		"client: ip=203.0.113.66 helo=list.example.org",
		"matched: -all in em1234.example.com",
		"body hash: bh="+bh[0]+", the body as received hashes to ",
		"== dmarc: fail\nreason: no aligned pass for example.com: spf fail for em1234.example.com, dkim fail for provider.example, dkim fail for example.com",
		"policy: p=quarantine, disposition quarantine",
		"spf alignment: none\ndkim alignment: none",
		"== received chain: 3 hops", "+3s\n", "+1m6s\n",
	)
	if strings.Contains(out, "hashes to "+bh[0]) {
		t.Error("the altered body hashes to the signed bh=")
	}
}

// TestFlags: -ip, -helo and -mail-from replace what the message says:
// from another address SPF fails, and DMARC passes by DKIM alone. -dns
// asks a DNS server for the same zone.
func TestFlags(t *testing.T) {
	t.Parallel()
	z, err := dnstest.ReadZoneFile(zoneFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dnstest.NewServer(z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	msg := readFile(t, "testdata/relayed.eml")
	status, out, _ := authcheck(t, msg, "-dns", srv.Addr, "-ip", "192.0.2.99", "-helo", "elsewhere.example", "-mail-from", "alice@example.com")
	if status != 0 {
		t.Errorf("exit %d, want 0\n%s", status, out)
	}
	wantLines(t, "flags", out, "client: ip=192.0.2.99 helo=elsewhere.example mail-from=alice@example.com\n  (from -ip, -helo, -mail-from)",
		"spf=fail", "spf alignment: none\ndkim alignment: pass (example.com)", "dmarc=pass",
		"key: s1._domainkey.example.com, a CNAME to s1.example-com.dkim.provider.example\n")
	// The null sender with -ip: postmaster@HELO is checked (RFC 7208 §2.4).
	_, out, _ = authcheck(t, msg, "-zone", zoneFile, "-ip", "198.51.100.10", "-helo", "mta7.provider.example", "-mail-from", "")
	wantLines(t, "null sender", out, "mail-from=<>", "identity: mailfrom, domain mta7.provider.example")
	// -ip alone: the MAIL FROM is still Return-Path's.
	_, out, _ = authcheck(t, msg, "-zone", zoneFile, "-ip", "198.51.100.10")
	wantLines(t, "-ip alone", out, "client: ip=198.51.100.10 helo=- mail-from=bounces+1a2b@em1234.example.com\n  (from -ip, Return-Path)", "spf=pass")
	// Without -ip, -mail-from replaces Return-Path alone.
	_, out, _ = authcheck(t, msg, "-zone", zoneFile, "-mail-from", "alice@example.com")
	wantLines(t, "-mail-from", out, "client: ip=198.51.100.10 helo=mta7.provider.example mail-from=alice@example.com\n  (from Received field 1, Return-Path, -mail-from)",
		"identity: mailfrom, domain example.com")
}

// TestJSON: -json prints one object with every part, its values those
// of the message.
func TestJSON(t *testing.T) {
	t.Parallel()
	msg := readFile(t, "testdata/tampered.eml")
	bh := bhOf(t, msg)
	status, out, _ := authcheck(t, msg, "-zone", zoneFile, "-json")
	if status != 1 {
		t.Errorf("exit %d, want 1", status)
	}
	var got struct {
		AuthenticationResults string `json:"authentication_results"`
		Client                struct {
			IP       string `json:"ip"`
			HELO     string `json:"helo"`
			MailFrom string `json:"mail_from"`
		} `json:"client"`
		SPF struct {
			Result  string   `json:"result"`
			Trace   []string `json:"trace"`
			Lookups []lookup `json:"lookups"`
		} `json:"spf"`
		DKIM []struct {
			Result, Reason, Domain, Selector string
			BodyHash                         string   `json:"body_hash"`
			Computed                         string   `json:"computed_body_hash"`
			KeyName                          string   `json:"key_name"`
			KeyLookups                       []lookup `json:"key_lookups"`
			KeyCNAME                         string   `json:"key_cname"`
		} `json:"dkim"`
		DMARC struct {
			Result, Record, Disposition string
			SPF                         string `json:"spf_alignment"`
			Lookups                     []lookup
		} `json:"dmarc"`
		Received []struct {
			Field      int       `json:"field"`
			IP         string    `json:"ip"`
			Date       time.Time `json:"date"`
			DelayNS    int64     `json:"delay_ns"`
			DelayKnown bool      `json:"delay_known"`
		} `json:"received"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.HasPrefix(got.AuthenticationResults, "localhost; spf=fail ") || got.Client.IP != "203.0.113.66" || got.Client.HELO != "list.example.org" ||
		got.Client.MailFrom != "bounces+1a2b@em1234.example.com" {
		t.Errorf("header and client: %q %+v", got.AuthenticationResults, got.Client)
	}
	if got.SPF.Result != "fail" || len(got.SPF.Trace) == 0 || len(got.SPF.Lookups) == 0 || got.SPF.Lookups[0].Name != "em1234.example.com" {
		t.Errorf("spf: %+v", got.SPF)
	}
	// Lists are lists even when empty, and text is not HTML-escaped: an
	// unsigned message from a HELO name that is no domain makes no lookup
	// for SPF and has no signature.
	_, bare, _ := authcheck(t, []byte("Received: from x (x [192.0.2.1]) by y; Thu, 03 Dec 2026 09:15:00 +0000\r\nFrom: a@example.com\r\n\r\nhi\r\n"), "-zone", zoneFile, "-json")
	for _, k := range []string{`"lookups": null`, `"dkim": null`, `\u003e`} {
		if strings.Contains(bare, k) {
			t.Errorf("the JSON has %s:\n%s", k, bare)
		}
	}
	if !strings.Contains(bare, `"dkim": [],`) || !strings.Contains(bare, `"lookups": []`) || !strings.Contains(bare, `"record x -> not a valid domain name"`) {
		t.Errorf("empty lists or the trace missing:\n%s", bare)
	}
	if len(got.DKIM) != 2 {
		t.Fatalf("%d dkim results, want 2", len(got.DKIM))
	}
	for i, d := range got.DKIM {
		if d.Result != "fail" || d.Reason != "body hash did not verify" || d.BodyHash != bh[i] || d.Computed == "" || d.Computed == d.BodyHash ||
			d.KeyName != d.Selector+"._domainkey."+d.Domain || len(d.KeyLookups) != 1 || len(d.KeyLookups[0].Answers) != 1 {
			t.Errorf("dkim %d: %+v", i, d)
		}
	}
	if got.DKIM[0].KeyCNAME != "" || got.DKIM[1].KeyCNAME != "s1.example-com.dkim.provider.example" {
		t.Errorf("key CNAMEs %q, %q", got.DKIM[0].KeyCNAME, got.DKIM[1].KeyCNAME)
	}
	if got.DMARC.Result != "fail" || got.DMARC.Disposition != "quarantine" || got.DMARC.SPF != "none" ||
		!strings.HasPrefix(got.DMARC.Record, "v=DMARC1; p=quarantine") || got.DMARC.Lookups[0].Name != "_dmarc.example.com" {
		t.Errorf("dmarc: %+v", got.DMARC)
	}
	if len(got.Received) != 3 {
		t.Fatalf("%d hops, want 3", len(got.Received))
	}
	for i, w := range []struct {
		field int
		ip    string
		delay time.Duration
	}{{3, "203.0.113.7", 0}, {2, "198.51.100.10", 3 * time.Second}, {1, "203.0.113.66", 66 * time.Second}} {
		h := got.Received[i]
		if h.Field != w.field || h.IP != w.ip || time.Duration(h.DelayNS) != w.delay || h.DelayKnown != (i > 0) || h.Date.IsZero() {
			t.Errorf("hop %d: %+v, want %+v", i+1, h, w)
		}
	}
}

// TestTime: -time is the clock of x= expiry. A message signed with a one
// hour x= passes within the hour and is a permerror after it (RFC 6376
// §3.5, §6.1.1); with SPF failing,
// DMARC follows DKIM, and the exit status with it.
func TestTime(t *testing.T) {
	t.Parallel()
	signed := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	rec, err := dkim.KeyRecordText(key.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	zone := filepath.Join(t.TempDir(), "x.zone")
	text := fmt.Sprintf("$ORIGIN example.org.\n@ TXT \"v=spf1 -all\"\n_dmarc TXT \"v=DMARC1; p=reject\"\nsel._domainkey TXT %q\n", rec)
	if err := os.WriteFile(zone, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := dkim.NewSigner("example.org", "sel", key, &dkim.SignOptions{Expiration: time.Hour, Now: func() time.Time { return signed }})
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	body := "Return-Path: <a@example.org>\r\nReceived: from a.example.org (a.example.org [192.0.2.1]) by mx.example.net; Thu, 03 Dec 2026 09:00:05 +0000\r\n" +
		"From: a@example.org\r\nTo: b@example.net\r\nSubject: x\r\n\r\nhello\r\n"
	if err := dkim.Sign(context.Background(), &msg, strings.NewReader(body), s); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at     time.Time
		status int
		want   string
	}{
		{signed.Add(30 * time.Minute), 0, "== dkim 1 of 1: pass"},
		{signed.Add(2 * time.Hour), 1, "== dkim 1 of 1: permerror d=example.org s=sel a=ed25519-sha256 c=relaxed/relaxed\nreason: signature expired at 2026-12-03T10:00:00Z\n"},
	} {
		status, out, _ := authcheck(t, msg.Bytes(), "-zone", zone, "-time", strconv.FormatInt(tc.at.Unix(), 10))
		if status != tc.status {
			t.Errorf("-time %v: exit %d, want %d", tc.at, status, tc.status)
		}
		wantLines(t, tc.at.String(), out, tc.want, "expires at: 2026-12-03T10:00:00Z", "spf=fail")
	}
}

// TestRefused: a header block the DKIM verifier refuses (over its 256 KiB
// limit) is a message that does not pass: exit 1, naming standard input.
func TestRefused(t *testing.T) {
	t.Parallel()
	msg := "X-Filler: " + strings.Repeat("a", dkim.DefaultMaxHeaderBytes) + "\r\nFrom: a@example.com\r\n\r\nhi\r\n"
	status, out, errOut := authcheck(t, []byte(msg), "-zone", zoneFile, "-ip", "192.0.2.1", "-helo", "h.example")
	if status != 1 || out != "" || !strings.HasPrefix(errOut, "authcheck: standard input: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q", status, out, errOut)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("input/output error") }

// TestUsage: bad flags, files and input are usage errors (exit 2), on
// one line naming what is at fault, before any work.
func TestUsage(t *testing.T) {
	t.Parallel()
	msg := readFile(t, "testdata/relayed.eml")
	bare := []byte("From: a@example.com\r\nTo: b@example.net\r\n\r\nhi\r\n")
	missing := filepath.Join(t.TempDir(), "missing.zone")
	for _, tc := range []struct {
		args  []string
		stdin []byte
		want  string
	}{
		{[]string{"-bogus"}, msg, "authcheck: flag provided but not defined: -bogus\n"},
		{[]string{"-zone", zoneFile, "extra"}, msg, "authcheck: unexpected argument \"extra\"\n"},
		{[]string{"-ip", "999.1.1.1", "-helo", "h"}, msg, "authcheck: -ip \"999.1.1.1\": not an IP address\n"},
		{[]string{"-ip", "192.0.2.1", "-mail-from", ""}, msg, "authcheck: -helo is required with -ip when -mail-from is empty\n"},
		{[]string{"-zone", zoneFile, "-ip", "192.0.2.1"}, bare, "authcheck: -helo is required with -ip when the MAIL FROM is the null sender (no -mail-from, no Return-Path)\n"},
		{[]string{"-zone", zoneFile, "-dns", "127.0.0.1:53"}, msg, "authcheck: -zone and -dns exclude each other\n"},
		{[]string{"-dns", "nonsense"}, msg, "authcheck: -dns \"nonsense\": want HOST:PORT, such as 127.0.0.1:53\n"},
		{[]string{"-zone", zoneFile, "-rules", "2026"}, msg, "authcheck: -rules \"2026\": want 9989 or 7489\n"},
		{[]string{"-zone", zoneFile, "-time", "soon"}, msg, "authcheck: -time \"soon\": want Unix seconds\n"},
		{[]string{"-zone", missing}, msg, "authcheck: -zone: open " + missing + ": no such file or directory\n"},
		{[]string{"-zone", zoneFile}, nil, "authcheck: standard input: empty message\n"},
		{[]string{"-zone", zoneFile}, bare, "authcheck: -ip is required: the message has no Received field\n"},
		{[]string{"-zone", zoneFile}, []byte("Received: by mx.example.net; Thu, 03 Dec 2026 09:00:05 +0000\r\n" + string(bare)),
			"authcheck: -ip is required: no Received field of the message names the client's address\n"},
	} {
		status, out, errOut := authcheck(t, tc.stdin, tc.args...)
		if status != 2 || errOut != tc.want || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 2, %q", tc.args, status, errOut, out, tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if status := run([]string{"-zone", zoneFile}, failingReader{}, &stdout, &stderr); status != 2 || stderr.String() != "authcheck: standard input: input/output error\n" {
		t.Errorf("unreadable input: exit %d, %q", status, stderr.String())
	}
	// -h: the usage and every flag on standard output, exit 0.
	status, out, _ := authcheck(t, nil, "-h")
	if status != 0 {
		t.Errorf("-h: exit %d", status)
	}
	wantLines(t, "-h", out, "usage: authcheck ", "-authserv-id", "-dns", "-helo", "-ip", "-json", "-mail-from", "-rules", "-time", "-zone", "0  when DMARC passes")
}

// TestRules: -rules chooses how DMARC finds organizational domains. The
// RFC 6376 example is signed by example.com for a From at
// football.example.com, which has a policy of its own: with the public
// suffix list (RFC 7489) both have the organizational domain example.com
// and the signature aligns; with the DNS Tree Walk (RFC 9989) the From
// domain is its own organizational domain and it does not.
func TestRules(t *testing.T) {
	t.Parallel()
	z := dnstest.NewZone()
	zoneLines(t, z, string(readFile(t, "testdata/dkim/rfc6376/keys.zone")))
	z.AddTXT("_dmarc.football.example.com.", "v=DMARC1; p=reject")
	addr := serve(t, z)
	msg := readFile(t, "testdata/dkim/rfc6376/a2-signed.eml")
	for rules, want := range map[string]int{"7489": 0, "9989": 1} {
		status, out, _ := authcheck(t, msg, "-dns", addr, "-rules", rules, "-ip", "192.0.2.1", "-helo", "h.example", "-mail-from", "a@h.example")
		if status != want {
			t.Errorf("-rules %s: exit %d, want %d\n%s", rules, status, want, out)
		}
		wantLines(t, rules, out, "== dkim 1 of 1: pass d=example.com s=brisbane")
	}
}

// TestLooped: a message with more Received fields than maxHops shows the
// topmost and says how many it left out.
func TestLooped(t *testing.T) {
	t.Parallel()
	msg := strings.Repeat("Received: from a.example ([192.0.2.1]) by b.example; Thu, 03 Dec 2026 09:15:00 +0000\r\n", maxHops+7) +
		"From: a@example.com\r\n\r\nhi\r\n"
	_, out, _ := authcheck(t, []byte(msg), "-zone", zoneFile)
	wantLines(t, "looped", out, fmt.Sprintf("== received chain: %d hops, first to last\n(7 earlier Received fields not shown", maxHops),
		fmt.Sprintf("\n%d. Thu, 03 Dec 2026 09:15:00 +0000  +0s\n", maxHops))
}

// TestSigTags: a result finds its own field by b=, whatever the order,
// and the field of its position when b= is unknown.
func TestSigTags(t *testing.T) {
	t.Parallel()
	fields := []string{"v=1; d=a.example; bh=AAA=; b=Zm9v YmFy", "v=1; d=b.example; bh=BBB=; b=cXV4"}
	for _, tc := range []struct {
		i       int
		b, want string
	}{{0, "cXV4", "b.example"}, {1, "Zm9vYmFy", "a.example"}, {1, "", "b.example"}, {0, "bm9uZQ", "a.example"}} {
		if got := sigTags(fields, tc.i, tc.b); got["d"] != tc.want {
			t.Errorf("result %d b=%s: d=%s, want %s", tc.i, tc.b, got["d"], tc.want)
		}
	}
	if sigTags(fields, 2, "") != nil {
		t.Error("a result past the fields has tags")
	}
}
