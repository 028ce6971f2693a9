package smarthost_test

// The tour of the packages in README.md: each snippet there is the body of
// one of these examples, as TestREADMESnippets checks.

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
	"github.com/smarthost-go/smarthost/spf"
	"github.com/smarthost-go/smarthost/srs"
)

// The records a domain publishes for its smart-host provider, in the
// delegated mode: the return path and the DKIM selector are CNAMEs into
// the provider's zone, the provider's include joins the domain's own SPF
// record, and a DMARC record starts at p=none.
func Example_dnsauth() {
	plan, _ := (&dnsauth.Request{
		Domain:      "example.com",
		ReturnPath:  "em1234",
		Selectors:   []string{"s1"},
		Target:      "u1234.wl.provider.example",
		SPFInclude:  "_spf.provider.example",
		ExistingSPF: []string{"v=spf1 mx -all"},
	}).Plan()
	fmt.Print(plan.Zone())
	// Output:
	// ; records for example.com (delegated)
	// em1234.example.com.	3600	IN	CNAME	u1234.wl.provider.example.
	// s1._domainkey.example.com.	3600	IN	CNAME	s1.domainkey.u1234.wl.provider.example.
	// ; replaces "v=spf1 mx -all"
	// example.com.	3600	IN	TXT	"v=spf1 mx include:_spf.provider.example -all"
	// _dmarc.example.com.	3600	IN	TXT	"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"
}

// A zone for tests, served by a real DNS server on 127.0.0.1 and asked
// by the module's resolver, over UDP.
func Example_dnstest() {
	ctx := context.Background()
	zone := dnstest.MustParseZone(`
example.net.    MX 10 mx.example.net.
mx.example.net. A  192.0.2.25
`)
	srv, _ := dnstest.NewServer(zone)
	defer srv.Close()
	resolver, _ := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	mx, _ := resolver.LookupMX(ctx, "example.net")
	ips, _ := resolver.LookupNetIP(ctx, "ip4", mx[0].Host)
	fmt.Println(mx[0].Host, ips, zone.Queries())
	// Output:
	// mx.example.net. [192.0.2.25] [MX example.net. A mx.example.net.]
}

// SPF for a message a smart host sent from 198.51.100.10 with the
// customer's return path.
func Example_spf() {
	zone := dnstest.MustParseZone(`
em1234.example.com.    TXT "v=spf1 include:_spf.provider.example -all"
_spf.provider.example. TXT "v=spf1 ip4:198.51.100.0/24 -all"
`)
	checker, _ := spf.NewChecker(zone, nil)
	client := netip.MustParseAddr("198.51.100.10")
	result := checker.CheckMailFrom(context.Background(), client, "bounces+1a2b@em1234.example.com", "mta7.provider.example")
	fmt.Println(result.Status, result.Mechanism)
	// Output:
	// pass include:_spf.provider.example
}

// A DKIM signature made and verified, the key published in a zone.
func Example_dkim() {
	ctx := context.Background()
	key, _ := dkim.GenerateKey("ed25519", nil)
	signer, _ := dkim.NewSigner("example.com", "s1", key, nil)
	var signed bytes.Buffer
	dkim.Sign(ctx, &signed, strings.NewReader("From: alice@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"), signer)

	record, _ := dkim.KeyRecordText(key.Public(), nil)
	zone := dnstest.NewZone()
	zone.AddTXT(dkim.RecordName("s1", "example.com"), record)
	verifier, _ := dkim.NewVerifier(zone, nil)
	results, _ := verifier.Verify(ctx, &signed)
	fmt.Println(results[0].Status, results[0].Domain, results[0].Selector, results[0].Algorithm)
	// Output:
	// pass example.com s1 ed25519-sha256
}

// A forwarder's envelope sender, rewritten with SRS so that SPF passes for
// its own domain, and reversed when a bounce comes back.
func Example_srs() {
	ctx := context.Background()
	rewriter, _ := srs.NewRewriter("forwarder.example", []string{"a long random secret"}, &srs.Options{
		Now: func() time.Time { return time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC) },
	})
	forward, _ := rewriter.Forward(ctx, "alice@example.com")
	original, _ := rewriter.Reverse(ctx, forward)
	fmt.Println(forward, original)
	// Output:
	// SRS0=_1XM=JW=example.com=alice@forwarder.example alice@example.com
}

// DMARC for a message whose SPF passed for the customer's return path:
// relaxed alignment makes em1234.example.com count for example.com.
func Example_dmarc() {
	zone := dnstest.MustParseZone(`_dmarc.example.com. TXT "v=DMARC1; p=reject"`)
	evaluator, _ := dmarc.NewEvaluator(zone, nil)
	header := mail.Header{"From": {"Shop <orders@example.com>"}}
	spfPass := &authres.SPFResult{Value: authres.ResultPass, From: "bounces+1a2b@em1234.example.com"}
	result := evaluator.Evaluate(context.Background(), header, msgauth.Entries{spfPass})
	fmt.Println(result.Status, result.SPF, result.Policy)
	// Output:
	// pass pass reject
}

// A program submits to its smart host over STARTTLS with an API key; here
// the smart host is a test server on 127.0.0.1.
func Example_relay() {
	upstream, _ := smtptest.NewServer(&smtptest.Options{Users: map[string]string{relay.KeyUser: "shk_example"}})
	defer upstream.Close()
	client, _ := relay.NewClient(upstream.Addr, &relay.ClientOptions{
		TLS:         relay.StartTLS,
		RootCAs:     upstream.CertPool(), // a real smart host: nil, the system's roots
		Credentials: &sasl.Credentials{Username: relay.KeyUser, Password: "shk_example"},
	})
	defer client.Close()
	env := &relay.Envelope{From: "orders@example.com", To: relay.To("bob@example.net")}
	msg := relay.Bytes("From: orders@example.com\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello.\r\n")
	receipt, _ := client.Send(context.Background(), env, msg)
	fmt.Println(receipt.Accepted(), receipt.Rcpts[0].Reply.Code, receipt.TLS != nil)
	// Output:
	// [bob@example.net] 250 true
}
