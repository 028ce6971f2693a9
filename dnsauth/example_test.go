package dnsauth_test

import (
	"context"
	"fmt"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

func ExampleResolver() {
	srv, _ := dnstest.NewServer(dnstest.MustParseZone(`
$ORIGIN example.com.
@                TXT   "v=spf1 include:_spf.provider.net -all"
s1._domainkey    CNAME s1.dkim.provider.net.
s1.dkim.provider.net. TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
`))
	defer srv.Close()
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	spf, _ := r.LookupTXT(ctx, "example.com")
	fmt.Println(spf[0])
	key, _ := r.LookupTXT(ctx, "s1._domainkey.example.com")
	fmt.Println(key[0][:19])
	// Output:
	// v=spf1 include:_spf.provider.net -all
	// v=DKIM1; k=ed25519;
}

// Lookup gives the whole answer, with the AD bit of a validating resolver.
func ExampleResolver_Lookup() {
	srv, _ := dnstest.NewServer(dnstest.MustParseZone(`_dmarc.example.com. 300 TXT "v=DMARC1; p=reject"`))
	defer srv.Close()
	srv.SetAuthenticated(true)
	r, _ := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	a, _ := r.Lookup(context.Background(), "_dmarc.example.com", dns.TypeTXT)
	fmt.Println(a.Canonical, a.Authenticated, a.TTL)
	// Output:
	// _dmarc.example.com. true 5m0s
}
