package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/internal/peertest"
)

// mailauthAuthenticate runs mailauth's authenticate (SPF, DKIM and DMARC,
// as a receiving MX does) on each case: a message file, the client (or,
// with trust, none: mailauth reads it from the topmost Received field and
// Return-Path, as authcheck does) and a DNS server on 127.0.0.1 that
// serves the case's zone, the one authcheck asks with -dns. Output: per
// case, the SPF result with the client mailauth used, one [d, s, result,
// comment] per signature, and the DMARC result.
const mailauthAuthenticate = `
const fs = require('fs');
const dns = require('node:dns');
const { authenticate } = require('mailauth');
let input = '';
process.stdin.on('data', d => (input += d));
process.stdin.on('end', async () => {
    const out = [];
    for (const c of JSON.parse(input)) {
        const r = new dns.promises.Resolver({ timeout: 2000, tries: 2 });
        r.setServers([c.dns]);
        const opts = { mta: 'mx.example.net', resolver: (name, type) => r.resolve(name, type), disableArc: true, disableBimi: true };
        if (c.trust) {
            opts.trustReceived = true;
        } else {
            Object.assign(opts, { ip: c.ip, helo: c.helo, sender: c.sender });
        }
        const res = await authenticate(fs.readFileSync(c.file), opts);
        out.push({
            spf: res.spf.status.result,
            ip: res.spf['client-ip'] || '',
            helo: res.spf.helo || '',
            sender: res.spf['envelope-from'] || '',
            dkim: res.dkim.results.map(x => [x.signingDomain || '', x.selector || '', x.status.result, x.status.comment || '']),
            dmarc: res.dmarc ? res.dmarc.status.result : 'none'
        });
    }
    console.log(JSON.stringify(out));
});
`

// interopCase is one message checked by both.
type interopCase struct {
	Name   string `json:"-"`
	File   string `json:"file"`
	DNS    string `json:"dns"`
	Trust  bool   `json:"trust"`
	IP     string `json:"ip,omitempty"`
	HELO   string `json:"helo,omitempty"`
	Sender string `json:"sender,omitempty"`
	// Want, when set, is what the case must give, "spf dkim... dmarc",
	// whatever mailauth says.
	Want string `json:"-"`
}

type mailauthResult struct {
	SPF    string      `json:"spf"`
	IP     string      `json:"ip"`
	HELO   string      `json:"helo"`
	Sender string      `json:"sender"`
	DKIM   [][4]string `json:"dkim"`
	DMARC  string      `json:"dmarc"`
}

// zoneLines builds a zone from "name TXT-value" lines, the format of the
// DKIM conformance data.
func zoneLines(t *testing.T, z *dnstest.Zone, text string) {
	t.Helper()
	for l := range strings.Lines(text) {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		name, value, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("bad zone line %q", l)
		}
		z.AddTXT(strings.TrimSuffix(name, ".")+".", value)
	}
}

// serve starts a DNS server for z, closed with the test.
func serve(t *testing.T, z *dnstest.Zone) string {
	t.Helper()
	srv, err := dnstest.NewServer(z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr
}

// fromDomain is the domain of the message's first From address, read
// loosely (the test data has plain addresses).
func fromDomain(msg []byte) string {
	for l := range strings.Lines(string(msg)) {
		if l == "\r\n" || l == "\n" {
			break
		}
		if v, ok := strings.CutPrefix(l, "From:"); ok {
			v = strings.TrimSpace(v)
			if i := strings.LastIndexByte(v, '<'); i >= 0 {
				v = v[i+1:]
			}
			_, d, _ := strings.Cut(v, "@")
			return strings.ToLower(strings.TrimRight(d, ">\r\n "))
		}
	}
	return ""
}

// conformanceCases are the signed messages of testdata/dkim (its
// MANIFEST.json), each with its key zone plus an SPF record and a DMARC
// policy for the From domain, checked twice: from an address the SPF
// record permits and from one it does not, so that DMARC rests on SPF
// once and on DKIM alone once.
func conformanceCases(t *testing.T, dir string) []interopCase {
	t.Helper()
	var manifest []struct{ Message, Zone string }
	if err := json.Unmarshal(readFile(t, "testdata/dkim/MANIFEST.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	var cases []interopCase
	for i, m := range manifest {
		msg := readFile(t, filepath.Join("testdata/dkim", m.Message))
		z := dnstest.NewZone()
		if strings.HasPrefix(m.Zone, "(") { // stalwart: zone lines, a blank line, the message with LF ends
			zone, body, _ := strings.Cut(string(msg), "\n\n")
			zoneLines(t, z, zone)
			msg = []byte(strings.ReplaceAll(body, "\n", "\r\n"))
		} else {
			zoneLines(t, z, string(readFile(t, filepath.Join("testdata/dkim", m.Zone))))
		}
		file := filepath.Join(dir, fmt.Sprintf("%02d.eml", i))
		if err := os.WriteFile(file, msg, 0o600); err != nil {
			t.Fatal(err)
		}
		d := fromDomain(msg)
		if d == "" {
			t.Fatalf("%s: no From domain", m.Message)
		}
		z.AddTXT(d+".", "v=spf1 ip4:192.0.2.0/24 -all")
		z.AddTXT("_dmarc."+d+".", "v=DMARC1; p=reject")
		addr := serve(t, z)
		for _, ip := range []string{"192.0.2.1", "203.0.113.9"} {
			cases = append(cases, interopCase{Name: fmt.Sprintf("%s (%s) from %s", m.Message, m.Zone, ip), File: file, DNS: addr,
				IP: ip, HELO: "mail." + d, Sender: "bounces@" + d})
		}
	}
	return cases
}

// relayCases are messages signed the way the relay signs: a signature
// for the customer's domain and one for the provider's, with the return
// path on the customer's authenticated subdomain (a CNAME to the
// provider), keys from a zone written here. Both programs read the
// client from the Received fields (the header-analyzer mode): as
// delivered, as a list passes it on with a footer, and with its From
// changed on the way; and the two messages of testdata with their zone.
func relayCases(t *testing.T, dir string) []interopCase {
	t.Helper()
	seed := func(s string) *[32]byte { h := sha256.Sum256([]byte(s)); return &h }
	customer, err := dkim.GenerateKey("ed25519", bytes.NewReader(seed("customer")[:]))
	if err != nil {
		t.Fatal(err)
	}
	provider, err := dkim.GenerateKey("rsa2048", nil) // an RSA key cannot be drawn from a fixed seed
	if err != nil {
		t.Fatal(err)
	}
	z := dnstest.NewZone()
	record := func(name string, k crypto.Signer) {
		rec, err := dkim.KeyRecordText(k.Public(), nil)
		if err != nil {
			t.Fatal(err)
		}
		z.AddTXT(name, rec)
	}
	z.AddTXT("shop.example.", "v=spf1 include:_spf.relay.example -all")
	z.AddTXT("_dmarc.shop.example.", "v=DMARC1; p=reject; rua=mailto:dmarc@shop.example")
	z.AddCNAME("em77.shop.example.", "u77.rp.relay.example.")
	z.AddCNAME("s1._domainkey.shop.example.", "s1.shop-example.dkim.relay.example.")
	z.AddTXT("_spf.relay.example.", "v=spf1 ip4:198.51.100.0/24 -all")
	z.AddTXT("u77.rp.relay.example.", "v=spf1 include:_spf.relay.example -all")
	z.AddMX("u77.rp.relay.example.", 10, "bounces.relay.example.")
	z.AddIP("bounces.relay.example.", netip.MustParseAddr("198.51.100.53"))
	record("s1.shop-example.dkim.relay.example.", customer)
	record("rk._domainkey.relay.example.", provider)
	addr := serve(t, z)

	now := time.Date(2026, 12, 3, 9, 15, 0, 0, time.UTC)
	cs, err := dkim.NewSigner("shop.example", "s1", customer, &dkim.SignOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := dkim.NewSigner("relay.example", "rk", provider, &dkim.SignOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	body := "From: Shop <orders@shop.example>\r\nTo: <carol@example.net>\r\nSubject: Your order 1042\r\n" +
		"Date: Thu, 03 Dec 2026 09:15:00 +0000\r\nMessage-ID: <1042@shop.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nYour order has shipped.\r\n"
	relayed := "Received: from app.shop.example ([203.0.113.7])\r\n\t(Authenticated sender: shop)\r\n\tby out1.relay.example with ESMTPSA id q1; Thu, 03 Dec 2026 09:15:01 +0000\r\n" + body
	var signed bytes.Buffer
	if err := dkim.Sign(context.Background(), &signed, strings.NewReader(relayed), cs, ps); err != nil {
		t.Fatal(err)
	}
	const rp = "Return-Path: <bounces+q1@em77.shop.example>\r\n"
	mx := "Received: from out1.relay.example (out1.relay.example [198.51.100.20])\r\n\tby mx.example.net (Postfix) with ESMTPS id 4Qx\r\n\tfor <carol@example.net>; Thu, 03 Dec 2026 09:15:03 +0000 (UTC)\r\n"
	list := "Received: from lists.example.org (lists.example.org [192.0.2.77])\r\n\tby mx.example.net (Postfix) with ESMTPS id 4Qy; Thu, 03 Dec 2026 09:16:00 +0000\r\n"
	msgs := map[string][2]string{
		"relay: as delivered":        {rp + mx + signed.String(), "pass pass pass pass"},
		"relay: footer by a list":    {rp + list + mx + signed.String() + "--\r\nlist footer\r\n", "fail fail fail fail"},
		"relay: From changed on way": {rp + mx + strings.Replace(signed.String(), "From: Shop <orders@shop.example>", "From: Shop <orders@shop.example.org>", 1), "pass fail fail none"},
	}
	var cases []interopCase
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range msgs {
			if !yield(k) {
				return
			}
		}
	}) {
		file := filepath.Join(dir, strings.NewReplacer(":", "", " ", "-").Replace(name)+".eml")
		if err := os.WriteFile(file, []byte(msgs[name][0]), 0o600); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, interopCase{Name: name, File: file, DNS: addr, Trust: true, Want: msgs[name][1]})
	}
	ez, err := dnstest.ReadZoneFile(zoneFile)
	if err != nil {
		t.Fatal(err)
	}
	eaddr := serve(t, ez)
	for _, f := range [][2]string{{"testdata/relayed.eml", "pass pass pass pass"}, {"testdata/tampered.eml", "fail fail fail fail"}} {
		abs, err := filepath.Abs(f[0])
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, interopCase{Name: f[0], File: abs, DNS: eaddr, Trust: true, Want: f[1]})
	}
	return cases
}

// demoCases are the messages examples/demo produces: it runs, writes the
// message its MX received, as the mailbox keeps it (Return-Path, the MX's
// Received field), and its DNS zone; both programs read the client from
// the message, against that zone.
func demoCases(t *testing.T, dir string) []interopCase {
	t.Helper()
	out := filepath.Join(dir, "demo")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "../demo", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ../demo -o: %v\n%s", err, b)
	}
	z, err := dnstest.ReadZoneFile(filepath.Join(out, "demo.zone"))
	if err != nil {
		t.Fatal(err)
	}
	return []interopCase{{Name: "demo: message.eml", File: filepath.Join(out, "message.eml"), DNS: serve(t, z), Trust: true, Want: "pass pass pass pass"}}
}

// TestInteropMailauth checks the signed messages of testdata/dkim and
// messages signed as the relay signs with authcheck and with mailauth
// 4.9.5's authenticate, and compares the SPF result, each signature's
// result and the DMARC result, and, where both read the client from the
// message, its address and MAIL FROM. authcheck runs with -rules 7489:
// mailauth finds organizational domains with the public suffix list. (Under
// the DNS Tree Walk of RFC 9989, the default, football.example.com with a
// policy of its own is its own organizational domain, and a signature by
// example.com no longer aligns with it.) mailauth takes the HELO name from
// a Received field only when it finds no address there, and otherwise
// checks "[IP]"; that changes no result here. They agree except where the
// RFCs decide against mailauth or leave the choice open, each case counted:
//
//   - a body hash that does not verify is dkim=fail for us (RFC 6376 §6.1.3
//     makes it PERMFAIL, RFC 8601 §2.7.1 fail), neutral for mailauth;
//   - a key record with an empty p= (revoked, RFC 6376 §3.6.1) is fail for
//     us, neutral for mailauth;
//   - a key record whose h= does not list the signature's hash (RFC 6376
//     §3.6.1, §6.1.2) is fail for us; mailauth ignores h= and passes;
//   - a key whose p= is a bare PKCS#1 RSA key rather than the
//     SubjectPublicKeyInfo of RFC 6376 §3.6.1 passes for us, as for dkimpy;
//     mailauth gives neutral ("unknown key type");
//   - an x= in the past (RFC 6376 §3.5) is permerror for us; mailauth
//     gives neutral;
//   - a message with two From fields is dmarc=permerror for us (RFC 9989
//     §4.4: DMARC cannot apply; RFC 7489 §6.6.1 suggests rejecting it),
//     none for mailauth.
//
// DMARC agrees where the DKIM results differ only in how a signature
// fails: neither counts a signature that does not pass. Where one side
// passes a signature the other does not and SPF fails, DMARC follows that
// signature (the PKCS#1 key here); that too is counted.
func TestInteropMailauth(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "authenticate.js")
	if err := os.WriteFile(script, []byte(mailauthAuthenticate), 0o600); err != nil {
		t.Fatal(err)
	}
	node := peertest.Node(t, script)
	cases := append(conformanceCases(t, dir), relayCases(t, dir)...)
	cases = append(cases, demoCases(t, dir)...)
	var theirs []mailauthResult
	peertest.RunJSON(t, node, cases, &theirs)
	if len(theirs) != len(cases) {
		t.Fatalf("mailauth gave %d results for %d cases", len(theirs), len(cases))
	}
	var spfAgree, dkimAgree, dkimSigs, dmarcAgree, clientAgree, trusted int
	explained := map[string]int{}
	for i, c := range cases {
		args := []string{"-json", "-dns", c.DNS, "-authserv-id", "mx.example.net", "-rules", "7489"}
		if !c.Trust {
			args = append(args, "-ip", c.IP, "-helo", c.HELO, "-mail-from", c.Sender)
		}
		status, out, errOut := authcheck(t, readFile(t, c.File), args...)
		var ours report
		if err := json.Unmarshal([]byte(out), &ours); err != nil {
			t.Fatalf("%s: exit %d, %v\n%s%s", c.Name, status, err, out, errOut)
		}
		if (status == 0) != (ours.DMARC.Result == "pass") {
			t.Errorf("%s: exit %d with dmarc=%s", c.Name, status, ours.DMARC.Result)
		}
		if c.Want != "" {
			got := []string{string(ours.SPF.Result)}
			for _, d := range ours.DKIM {
				got = append(got, string(d.Result))
			}
			if got := strings.Join(append(got, string(ours.DMARC.Result)), " "); got != c.Want {
				t.Errorf("%s: spf, dkim, dmarc %q, want %q", c.Name, got, c.Want)
			}
		}
		m := theirs[i]
		if c.Trust {
			trusted++
			// mailauth takes the HELO name from the field only when it
			// finds no address there, and otherwise checks "[IP]".
			if ours.Client.IP.String() == m.IP && ours.Client.MailFrom == m.Sender && m.HELO == "["+m.IP+"]" && ours.Client.HELO != "" {
				clientAgree++
			} else {
				t.Errorf("%s: client ours %s %s %s, mailauth %s %s %s", c.Name, ours.Client.IP, ours.Client.HELO, ours.Client.MailFrom, m.IP, m.HELO, m.Sender)
			}
		}
		if string(ours.SPF.Result) == m.SPF {
			spfAgree++
		} else {
			t.Errorf("%s: spf ours %s (%s), mailauth %s", c.Name, ours.SPF.Result, ours.SPF.Reason, m.SPF)
		}
		if len(ours.DKIM) != len(m.DKIM) {
			t.Errorf("%s: %d signatures, mailauth %d: %v", c.Name, len(ours.DKIM), len(m.DKIM), m.DKIM)
			continue
		}
		// A signature one passes and the other does not can turn DMARC.
		onlyOurs, onlyTheirs := false, false
		for j, d := range ours.DKIM {
			dkimSigs++
			their := m.DKIM[j]
			if d.Domain != their[0] || d.Selector != their[1] {
				t.Errorf("%s: signature %d is d=%s s=%s, mailauth's d=%s s=%s", c.Name, j+1, d.Domain, d.Selector, their[0], their[1])
				continue
			}
			if string(d.Result) == their[2] {
				dkimAgree++
				continue
			}
			rule := dkimRule(d, their)
			if rule == "" {
				t.Errorf("%s: signature d=%s s=%s: ours %s (%s), mailauth %s (%s)", c.Name, d.Domain, d.Selector, d.Result, d.Reason, their[2], their[3])
				continue
			}
			explained[rule]++
			onlyOurs = onlyOurs || d.Result == "pass"
			onlyTheirs = onlyTheirs || their[2] == "pass"
		}
		switch {
		case string(ours.DMARC.Result) == m.DMARC:
			dmarcAgree++
		case onlyTheirs && ours.DMARC.Result == "fail" && m.DMARC == "pass":
			explained["dmarc on a dkim pass of mailauth's only: fail/pass"]++
		case onlyOurs && ours.DMARC.Result == "pass" && m.DMARC == "fail":
			explained["dmarc on a dkim pass of ours only: pass/fail"]++
		case ours.DMARC.Result == "permerror" && m.DMARC == "none" && strings.Contains(ours.DMARC.Reason, "2 From fields"):
			explained["two From fields: permerror/none"]++
		default:
			t.Errorf("%s: dmarc ours %s (%s), mailauth %s", c.Name, ours.DMARC.Result, ours.DMARC.Reason, m.DMARC)
		}
	}
	t.Logf("compared %d messages with mailauth 4.9.5: spf %d agree; dkim %d of %d signatures agree; dmarc %d agree; the client read from Received/Return-Path %d of %d agree; differences the RFCs decide: %v",
		len(cases), spfAgree, dkimAgree, dkimSigs, dmarcAgree, clientAgree, trusted, explained)
	if len(explained) == 0 || dkimAgree < dkimSigs*3/4 {
		t.Errorf("the known differences should show and most signatures agree: %v, %d of %d", explained, dkimAgree, dkimSigs)
	}
}

// dkimRule names the documented difference that explains our result d
// beside mailauth's, or "".
func dkimRule(d dkimReport, their [4]string) string {
	switch {
	case d.Result == "fail" && their[2] == "neutral" && strings.Contains(their[3], "body hash did not verify"):
		return "body hash: fail/neutral"
	case d.Result == "fail" && their[2] == "neutral" && strings.Contains(d.Reason, "revoked"):
		return "revoked key: fail/neutral"
	case d.Result == "fail" && their[2] == "pass" && strings.Contains(d.Reason, "h="):
		return "key h=: fail/pass"
	case d.Result == "pass" && their[2] == "neutral" && their[3] == "unknown key type":
		return "PKCS#1 key: pass/neutral"
	case d.Result == "permerror" && their[2] == "neutral" && strings.Contains(d.Reason, "expired"):
		return "expired x=: permerror/neutral"
	}
	return ""
}
