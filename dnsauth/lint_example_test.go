package dnsauth_test

import (
	"context"
	"fmt"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// Lint says what is wrong with a domain's records and how to fix each.
func ExampleResolver_Lint() {
	srv, _ := dnstest.NewServer(dnstest.MustParseZone(`
$ORIGIN example.com.
@       TXT "v=spf1 ptr include:_spf.provider.net ?all"
_dmarc  TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
_spf.provider.net. TXT "v=spf1 ip4:192.0.2.0/24 -all"
`))
	defer srv.Close()
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{srv.Addr}})
	if err != nil {
		panic(err)
	}
	rep, err := r.Lint(context.Background(), "example.com", nil)
	if err != nil {
		panic(err)
	}
	for _, f := range rep.Findings {
		fmt.Println(f.Severity, f.Code, f.Name)
	}
	fmt.Println("SPF lookups:", rep.SPF.Lookups)
	// Output:
	// warning spf-ptr example.com.
	// warning spf-all-neutral example.com.
	// warning dmarc-p-none _dmarc.example.com.
	// SPF lookups: 2
}
