package spf_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/spf"
)

func ExampleChecker_CheckMailFrom() {
	zone := dnstest.MustParseZone(`
example.com.      TXT "v=spf1 include:_spf.example.com -all exp=why.example.com"
_spf.example.com. TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all"
why.example.com.  TXT "%{i} is not one of %{d}'s designated mail servers."
`)
	c, err := spf.NewChecker(zone, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	r := c.CheckMailFrom(ctx, netip.MustParseAddr("192.0.2.25"), "alice@example.com", "mail.example.com")
	fmt.Println(r.Status, r.Mechanism)
	fmt.Println(strings.ReplaceAll(r.ReceivedSPF("mx.example.org"), "\r\n", "\n"))

	r = c.CheckMailFrom(ctx, netip.MustParseAddr("203.0.113.7"), "alice@example.com", "mail.example.com")
	fmt.Println(r.Status, r.Mechanism)
	fmt.Println(r.Explanation)
	// Output:
	// pass include:_spf.example.com
	// Received-SPF: pass (mx.example.org: domain of alice@example.com designates
	//  192.0.2.25 as permitted sender) client-ip=192.0.2.25;
	//  envelope-from="alice@example.com"; helo=mail.example.com;
	//  mechanism="include:_spf.example.com"; receiver=mx.example.org;
	//  identity=mailfrom
	// fail -all
	// 203.0.113.7 is not one of example.com's designated mail servers.
}

func ExampleResult_Trace() {
	zone := dnstest.MustParseZone(`
example.net. TXT "v=spf1 mx a:relay.example.net ~all"
example.net. MX  10 mx1.example.net.
mx1.example.net.   A 198.51.100.1
relay.example.net. A 198.51.100.2
`)
	c, err := spf.NewChecker(zone, nil)
	if err != nil {
		panic(err)
	}
	r := c.CheckHost(context.Background(), netip.MustParseAddr("198.51.100.2"), "example.net", "bob@example.net")
	fmt.Print(r.Trace)
	// Output:
	// lookup TXT example.net -> 1 records
	// record example.net: "v=spf1 mx a:relay.example.net ~all"
	// lookup MX example.net -> 1 records
	// lookup A mx1.example.net -> 1 records
	// term mx -> no match
	// lookup A relay.example.net -> 1 records
	// term a:relay.example.net -> match
	// result example.net: pass
}

func ExampleResult_AuthResults() {
	zone := dnstest.MustParseZone(`example.com. TXT "v=spf1 ip4:192.0.2.0/24 -all"`)
	c, err := spf.NewChecker(zone, nil)
	if err != nil {
		panic(err)
	}
	r := c.CheckMailFrom(context.Background(), netip.MustParseAddr("203.0.113.7"), "alice@example.com", "mail.example.com")
	fmt.Println(r.Err)
	fmt.Println("Authentication-Results:", msgauth.Format("mx.example.org", r))
	// Output:
	// spf: example.com does not permit 203.0.113.7 (-all in example.com)
	// Authentication-Results: mx.example.org; spf=fail reason="example.com does not permit 203.0.113.7 (-all in example.com)" smtp.mailfrom=alice@example.com
}

func ExampleParse() {
	r, err := spf.Parse("v=spf1 a mx/24 ip4:192.0.2.0/24 include:_spf.example.net ~all")
	if err != nil {
		panic(err)
	}
	for _, t := range r.Terms {
		fmt.Printf("%-24s dns=%v\n", t.String(), t.LooksUpDNS())
	}
	fmt.Println(r.DNSTerms(), "DNS-querying terms")
	_, err = spf.Parse("v=spf1 ip4:192.0.2.300 -all")
	fmt.Println(err)
	// Output:
	// a                        dns=true
	// mx/24                    dns=true
	// ip4:192.0.2.0/24         dns=false
	// include:_spf.example.net dns=true
	// ~all                     dns=false
	// 3 DNS-querying terms
	// spf: syntax error: "ip4:192.0.2.300": bad address
}
