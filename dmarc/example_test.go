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
	e := &dmarc.Evaluator{Resolver: zone}
	msg, _ := mail.ReadMessage(strings.NewReader("From: Alice <alice@example.com>\r\nSubject: hi\r\n\r\nbody\r\n"))
	res := e.Evaluate(context.Background(), &dmarc.Params{
		Header: msg.Header,
		// SPF passed for the bounce domain of a sending service; DKIM
		// passed for a subdomain of the author domain: relaxed alignment.
		SPF:  dmarc.SPFResult{Domain: "bounces.esp.example", Result: authres.ResultPass},
		DKIM: []dmarc.DKIMResult{{Domain: "mail.example.com", Selector: "s1", Result: authres.ResultPass}},
	})
	fmt.Println(res.Status, res.PolicyDomain, res.SPF, res.DKIM, res.DKIMDomains)
	fmt.Println(authres.Format("mx.example.net", []authres.Result{res.AuthResult()}))

	// The same message without the signature fails, and the record asks
	// for rejection.
	res = e.Evaluate(context.Background(), &dmarc.Params{Header: msg.Header,
		SPF: dmarc.SPFResult{Domain: "bounces.esp.example", Result: authres.ResultPass}})
	fmt.Println(res.Status, res.Policy, res.Disposition)
	// Output:
	// pass example.com fail pass [mail.example.com]
	// mx.example.net; dmarc=pass header.from=example.com
	// fail reject reject
}

func ExampleEvaluator_Lookup() {
	zone := dnstest.MustParseZone(`
_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine"
`)
	e := &dmarc.Evaluator{Resolver: zone} // RFC 9989 DNS Tree Walk
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
	e := &dmarc.Evaluator{Resolver: zone}
	rp := &dmarc.Reporter{
		OrgName: "Receiver", Email: "noreply-dmarc@receiver.example",
		Now:  func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		Rand: bytes.NewReader(make([]byte, 64)),
	}
	p := &dmarc.Params{
		Header:   mail.Header{"From": {"a@example.com"}},
		SPF:      dmarc.SPFResult{Domain: "example.com", Result: authres.ResultPass},
		SourceIP: netip.MustParseAddr("192.0.2.10"),
	}
	rp.Add(p, e.Evaluate(context.Background(), p))
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
	fb, err := dmarc.ParseReport(f) // an e-mail with a gzip attachment
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
