package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/relay"
)

// TestDemo plays the demo and checks each step by itself, not by what the
// demo printed: the records published, the signatures and the
// Authentication-Results of the message the MX received, its return path,
// and the bounce's event and suppression.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	s, err := play(ctx, &out, false)
	if err != nil {
		t.Fatalf("play: %v\n%s", err, out.String())
	}
	// The zone, asked in memory after the server stopped.
	zone := s.dns.srv.Zone

	t.Run("records", func(t *testing.T) {
		for _, r := range s.dns.report.Records {
			if r.Status != dnsauth.RecordOK {
				t.Errorf("%s %s: %s %s", r.Record.Name, r.Record.Type, r.Status, r.Detail)
			}
		}
		// The customer's SPF record keeps its own network and adds the
		// provider's include.
		spfs, err := zone.LookupTXT(ctx, customerDomain)
		if err != nil || len(spfs) != 1 || spfs[0] != "v=spf1 ip4:192.0.2.0/24 include:"+spfInclude+" -all" {
			t.Errorf("SPF of %s: %q, %v", customerDomain, spfs, err)
		}
		// The selector is a CNAME to the provider, whose record holds the
		// public half of the key the relay signs with.
		cname, err := zone.LookupCNAME(ctx, "s1._domainkey."+customerDomain)
		if err != nil || cname != "s1.domainkey."+target+"." {
			t.Errorf("CNAME of the selector: %q, %v", cname, err)
		}
		txt, err := zone.LookupTXT(ctx, "s1._domainkey."+customerDomain)
		if err != nil || len(txt) != 1 {
			t.Fatalf("key record: %q, %v", txt, err)
		}
		rec, err := dkim.ParseKeyRecord(txt[0])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := x509.MarshalPKIXPublicKey(s.dns.customerKey.Public())
		got, _ := x509.MarshalPKIXPublicKey(rec.PublicKey)
		if !bytes.Equal(got, want) {
			t.Error("the published key is not the customer's signing key")
		}
	})

	t.Run("port 25", func(t *testing.T) {
		if !errors.Is(s.direct, errPort25) {
			t.Errorf("the direct attempt: %v, want the blocked port", s.direct)
		}
	})

	t.Run("received", func(t *testing.T) {
		m := s.first
		if m == nil {
			t.Fatal("no message at the MX")
		}
		// Both signatures verify, checked again here from the zone.
		v, err := dkim.NewVerifier(zone, nil)
		if err != nil {
			t.Fatal(err)
		}
		results, err := v.Verify(ctx, bytes.NewReader(m.data))
		if err != nil || len(results) != 2 {
			t.Fatalf("DKIM: %v, %v; want two signatures", results, err)
		}
		domains := map[string]bool{}
		for _, r := range results {
			if r.Status != dkim.Pass {
				t.Errorf("signature of %s: %s %v", r.Domain, r.Status, r.Err)
			}
			domains[r.Domain] = true
		}
		if !domains[customerDomain] || !domains[providerDomain] {
			t.Errorf("signatures of %v, want %s and %s", domains, customerDomain, providerDomain)
		}

		// The first field is the MX's Authentication-Results; it parses
		// to spf=pass dkim=pass dkim=pass dmarc=pass.
		name, value, ok := strings.Cut(unfold(firstField(m.data)), ":")
		if !ok || name != "Authentication-Results" {
			t.Fatalf("first field %q, want Authentication-Results", name)
		}
		id, ar, err := authres.Parse(value)
		if err != nil || id != mxHost {
			t.Fatalf("Authentication-Results %q: %q %v", value, id, err)
		}
		var verdicts []string
		for _, r := range ar {
			switch r := r.(type) {
			case *authres.SPFResult:
				verdicts = append(verdicts, "spf="+string(r.Value))
			case *authres.DKIMResult:
				verdicts = append(verdicts, "dkim="+string(r.Value)+":"+r.Domain)
			case *authres.DMARCResult:
				verdicts = append(verdicts, "dmarc="+string(r.Value)+":"+r.From)
			}
		}
		if got, want := strings.Join(verdicts, " "), "spf=pass dkim=pass:customer.example dkim=pass:provider.example dmarc=pass:customer.example"; got != want {
			t.Errorf("Authentication-Results say %q, want %q", got, want)
		}

		// The envelope sender is the return path the relay gave it, with
		// the ID of its Received field.
		rpID, isRP := relay.ReturnPathID(m.mailFrom)
		if !isRP || !regexp.MustCompile(`^bounces\+[a-z0-9]+@em1234\.customer\.example$`).MatchString(m.mailFrom) {
			t.Errorf("envelope sender %q, want bounces+ID@%s", m.mailFrom, returnPathDomain)
		}
		if !bytes.Contains(m.data, []byte("with ESMTPSA id "+rpID)) {
			t.Errorf("no Received field with the id %q", rpID)
		}
		if m.spfHELO.Status != msgauth.Pass || m.spfHELO.Domain != relayHost {
			t.Errorf("SPF of the HELO name: %s for %s, %v", m.spfHELO.Status, m.spfHELO.Domain, m.spfHELO.Err)
		}
		if m.helo != relayHost || len(m.rcpts) != 1 || m.rcpts[0] != firstRcpt {
			t.Errorf("EHLO %q, recipients %q", m.helo, m.rcpts)
		}
	})

	t.Run("bounce", func(t *testing.T) {
		if s.bounced == nil {
			t.Fatal("no bounce")
		}
		e := s.bounced.event
		if e.Type != relay.EventBounced || e.QueueID == "" || e.QueueID != s.secondIDs.queueID || e.QueueID == s.firstID ||
			e.Rcpt != goneRcpt || e.Account != accountName || !e.Hard {
			t.Errorf("bounced event %+v; want the queue ID %s of the message to %s", e, s.secondIDs.queueID, goneRcpt)
		}
		if e.Reply == nil || e.Reply.Code != 550 || e.Reply.Enhanced != (relay.EnhancedCode{5, 1, 1}) {
			t.Errorf("bounced event's reply %v, want the DSN's 550 5.1.1", e.Reply)
		}
		sup := s.bounced.suppression
		if sup == nil || sup.Account != accountName || sup.Recipient != goneRcpt || sup.QueueID != s.secondIDs.queueID {
			t.Errorf("suppression %+v", sup)
		}
		if r := s.third; r == nil || r.Code != 550 || r.Enhanced != (relay.EnhancedCode{5, 1, 1}) || !strings.Contains(r.Message, "suppressed") {
			t.Errorf("third submission: %v, %v; want 550 5.1.1 suppressed", r, s.refusal)
		}
	})

	if !strings.HasSuffix(out.String(), "\nevery check passed\n") {
		t.Errorf("output does not end with the verdict:\n%s", out.String())
	}
}

// TestRunVerbose checks that -v shows the conversations: the submission
// until STARTTLS, the delivery to the MX and the bounce in full, and the
// DNS questions.
func TestRunVerbose(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), &out, true); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"| app.customer.example > STARTTLS\n",
		"| app.customer.example > [TLS handshake",
		"| mx.example.net | MAIL FROM:<bounces+",
		"| mx.example.net | DKIM-Signature: v=1; a=ed25519-sha256",
		"| mx.example.net > MAIL FROM:<>",
		"| mx.example.net > Final-Recipient: rfc822; gone@example.net\n",
		"| dns  MX em1234.customer.example.\n",
		"| dns  TXT pm._domainkey.provider.example.\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, out.String())
		}
	}
	// The API key is shown cut short, and never whole.
	if key := regexp.MustCompile(regexp.QuoteMeta(relay.KeyPrefix) + `[a-z2-7]{16}_[a-z2-7]+`).FindString(out.String()); key != "" {
		t.Errorf("the whole API key is in the output: %s", key)
	}
}

// TestCommandSave runs the program with -o and checks what it wrote: the
// message as the MX received it, and a zone file that answers for the
// customer's records.
func TestCommandSave(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := command(context.Background(), []string{"-o", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	msg, err := os.ReadFile(filepath.Join(dir, "message.eml"))
	if err != nil {
		t.Fatal(err)
	}
	stored := regexp.MustCompile(`^Return-Path: <bounces\+[a-z0-9]+@` + regexp.QuoteMeta(returnPathDomain) + `>\r\n` +
		`Received: from mta1\.provider\.example \(mta1\.provider\.example \[127\.0\.0\.1\]\)\r\n\tby ` + regexp.QuoteMeta(mxHost) + ` with ESMTPS?\r\n` +
		`\tfor <[^>]+>; [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n` +
		`Authentication-Results: ` + regexp.QuoteMeta(mxHost) + `;`)
	if !stored.Match(msg) {
		t.Errorf("message.eml begins %q", msg[:min(len(msg), 300)])
	}
	z, err := dnstest.ReadZoneFile(filepath.Join(dir, "demo.zone"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if mx, err := z.LookupMX(ctx, returnPathDomain); err != nil || len(mx) != 1 || mx[0].Host != bounceHost+"." {
		t.Errorf("MX of %s through its CNAME: %v, %v", returnPathDomain, mx, err)
	}
	// The message's signatures verify against the zone written.
	v, _ := dkim.NewVerifier(z, nil)
	results, err := v.Verify(ctx, bytes.NewReader(msg))
	if err != nil || len(results) != 2 || results[0].Status != dkim.Pass || results[1].Status != dkim.Pass {
		t.Errorf("DKIM of message.eml against demo.zone: %v, %v", results, err)
	}
}

// firstField returns the first header field of msg, folded as it is.
func firstField(msg []byte) string {
	end := 0
	for {
		i := bytes.Index(msg[end:], []byte("\r\n"))
		if i < 0 {
			return string(msg)
		}
		end += i + 2
		if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
			return string(msg[:end])
		}
	}
}

// unfold joins the lines of a folded field (RFC 5322 §2.2.3).
func unfold(f string) string {
	return strings.TrimRight(strings.ReplaceAll(strings.ReplaceAll(f, "\r\n ", " "), "\r\n\t", "\t"), "\r\n")
}

// TestCommandFails: a demo that cannot finish exits 1 with one line that
// says why, and never claims that every check passed.
func TestCommandFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := command(ctx, nil, &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), "demo: ") || strings.Count(stderr.String(), "\n") != 1 ||
		!strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("exit %d, stderr %q; want 1 and one line saying why", code, stderr.String())
	}
	if strings.Contains(stdout.String(), "every check passed") {
		t.Errorf("stdout claims success:\n%s", stdout.String())
	}
}
