package dmarc_test

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
)

func ExampleParse() {
	r, err := dmarc.Parse("v=DMARC1; p=quarantine; sp=reject; rua=mailto:dmarc@example.com; fo:1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Policy, r.SubdomainPolicy, r.DKIMAlignment(), r.Pct(), r.AggregateURIs[0].Address())
	fmt.Println(r)
	// Output:
	// quarantine reject r 100 dmarc@example.com
	// v=DMARC1; p=quarantine; sp=reject; rua=mailto:dmarc@example.com
}

func ExampleCheck() {
	for _, p := range dmarc.Check("v=DMARC1; p=quarantine; pct=50; rua=mailto:dmarc@example.com!10m") {
		fmt.Println(p)
	}
	// Output:
	// warning: pct: pct= is removed by RFC 9989 (Appendix A.6); use t=y for testing
	// warning: rua: "mailto:dmarc@example.com!10m": the !size suffix is obsolete; reporters ignore it (RFC 9989 §4.8)
}

func ExampleEvaluator_Evaluate() {
	zone := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"
`)
	e, err := dmarc.NewEvaluator(zone, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, _ := mail.ReadMessage(strings.NewReader("From: Alice <alice@example.com>\r\nSubject: hi\r\n\r\nbody\r\n"))
	// SPF passed for the bounce domain of a sending service; DKIM passed
	// for a subdomain of the author domain: relaxed alignment. The spf and
	// dkim packages' results can be passed as they are; here the entries
	// are written out.
	spf := &authres.SPFResult{Value: authres.ResultPass, From: "bounces+alice=example.com@bounces.esp.example"}
	sig := &authres.GenericResult{Method: "dkim", Value: authres.ResultPass, Params: map[string]string{"header.d": "mail.example.com", "header.s": "s1"}}
	res := e.Evaluate(context.Background(), msg.Header, msgauth.Entries{spf, sig})
	fmt.Println(res.Status, res.PolicyDomain, res.SPF, res.DKIM, res.DKIMDomains)
	fmt.Println(msgauth.Format("mx.example.net", res))

	// The same message without the signature fails, and the record asks
	// for rejection.
	res = e.Evaluate(context.Background(), msg.Header, msgauth.Entries{spf})
	fmt.Println(res.Status, res.Policy, res.Disposition)
	fmt.Println(res.Err)
	// Output:
	// pass example.com fail pass [mail.example.com]
	// mx.example.net; dmarc=pass header.from=example.com
	// fail reject reject
	// dmarc: no aligned pass for example.com: spf pass for bounces.esp.example not aligned, no dkim pass
}

// Evaluate reads the results in an Authentication-Results field that a
// trusted upstream host wrote, as OpenDMARC does.
func ExampleEvaluator_Evaluate_upstream() {
	zone := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=quarantine"
`)
	e, err := dmarc.NewEvaluator(zone, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, upstream, err := authres.Parse("mx.example.net; spf=pass smtp.mailfrom=example.com; dkim=fail header.d=example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	res := e.Evaluate(context.Background(), mail.Header{"From": {"bob@example.com"}}, msgauth.Entries(upstream))
	fmt.Println(res.Status, res.SPF, res.DKIM, res.Inputs.SPF[0].Domain, res.Inputs.DKIM[0].Result)
	// Output:
	// pass pass none example.com fail
}

func ExampleEvaluator_Lookup() {
	zone := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine"
`)
	e, err := dmarc.NewEvaluator(zone, nil) // RFC 9989 DNS Tree Walk
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := e.Lookup(context.Background(), "news.mail.example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Domain, d.OrgDomain, d.Record.SubdomainPolicy, d.Queries)
	// Output:
	// example.com example.com quarantine 4
}

func ExampleReporter() {
	zone := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
`)
	e, err := dmarc.NewEvaluator(zone, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	rp, err := dmarc.NewReporter("Receiver", "noreply-dmarc@receiver.example", &dmarc.ReporterOptions{
		Now:  func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		Rand: bytes.NewReader(make([]byte, 64)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res := e.Evaluate(context.Background(), mail.Header{"From": {"a@example.com"}},
		msgauth.Entries{&authres.SPFResult{Value: authres.ResultPass, From: "@example.com"}})
	rp.Add(netip.MustParseAddr("192.0.2.10"), res)
	reports, _ := rp.Reports(true)
	for _, r := range reports {
		fmt.Println(r.Filename())
		fmt.Println(r.Subject())
		fmt.Println(r.Destinations[0].Address(), len(r.Feedback.Records), r.Feedback.Records[0].Row.PolicyEvaluated.SPF)
	}
	// Output:
	// receiver.example!example.com!1772323200!1772409599.xml.gz
	// Report Domain: example.com Submitter: receiver.example Report-ID: <example.com.1772323200.0000000000000000>
	// dmarc@example.com 1 pass
}

func ExampleParseReport() {
	f, err := os.Open("testdata/stalwart/dmarc-feedback/101.eml")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	fb, err := dmarc.ParseReport(f, nil) // an e-mail with a gzip attachment
	if err != nil {
		fmt.Println(err)
		return
	}
	dmarc.Summarize(fb).WriteText(os.Stdout)
	// Output:
	// reports: 1 from "backschues.NET
	// domains: stalw.art
	// period:  2022-11-08T23:00:00Z to 2022-11-09T23:00:00Z
	// messages: 1, DMARC pass 0, fail 1
	//
	// SOURCE IP       COUNT  DMARC  DISPOSITION  DKIM  SPF   HEADER FROM  DKIM RESULTS                  SPF RESULTS
	// 50.223.129.194  1      fail   none         fail  fail  stalw.art    ietf.org=pass,stalw.art=fail  ietf.org=none
}
