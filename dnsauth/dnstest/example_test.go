package dnstest_test

import (
	"context"
	"fmt"
	"net"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// A Zone answers lookups from zone-file text, and counts them.
func ExampleZone() {
	z := dnstest.MustParseZone(`
$ORIGIN example.com.
@               TXT   "v=spf1 include:_spf.provider.net -all"
_dmarc          TXT   "v=DMARC1; p=reject"
em1234          CNAME u1.provider.net.
`)
	ctx := context.Background()
	txt, _ := z.LookupTXT(ctx, "example.com")
	fmt.Println(txt[0])
	_, err := z.LookupTXT(ctx, "nothing.example.com")
	fmt.Println(err.(*net.DNSError).IsNotFound)
	fmt.Println(z.Queries())
	// Output:
	// v=spf1 include:_spf.provider.net -all
	// true
	// [TXT example.com. TXT nothing.example.com.]
}

// Failures can be injected per name and type.
func ExampleZone_Fail() {
	z := dnstest.NewZone()
	z.AddTXT("example.com", "v=spf1 -all")
	z.Fail("example.com", dns.TypeTXT, dnstest.ServFail)
	_, err := z.LookupTXT(context.Background(), "example.com")
	fmt.Println(err.(*net.DNSError).IsTemporary, err)
	// Output:
	// true lookup example.com on dnstest: server misbehaving (SERVFAIL)
}

// A Server serves a Zone on 127.0.0.1 over UDP and TCP, for code that
// speaks DNS on the wire.
func ExampleServer() {
	srv, err := dnstest.NewServer(dnstest.MustParseZone(`example.com. 300 IN MX 10 mx.example.com.`))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	r, _ := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	mx, _ := r.LookupMX(context.Background(), "example.com")
	fmt.Println(mx[0].Host, mx[0].Pref)
	// Output:
	// mx.example.com. 10
}
