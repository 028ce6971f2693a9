package dnsauth_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// Apply pushes a plan by signed dynamic update; a second push finds every
// record in place, and a plan made from an SPF record that has changed
// since is refused, with what the zone holds.
func ExampleUpdater_Apply() {
	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
	srv, _ := dnstest.NewServer(dnstest.MustParseZone(`
$ORIGIN example.com.
@ SOA ns1 hostmaster 1 7200 900 1209600 300
@ NS  ns1
@ TXT "v=spf1 mx -all"
`))
	defer srv.Close()
	srv.AcceptUpdates(map[string]string{"update-key": secret})

	key, err := dnsauth.ParseTSIGKey("update-key:hmac-sha256:" + secret)
	if err != nil {
		panic(err)
	}
	u, err := dnsauth.NewUpdater(srv.Addr, "example.com", key, nil)
	if err != nil {
		panic(err)
	}
	req := &dnsauth.Request{Domain: "example.com", ReturnPath: "em1234", Selectors: []string{"s1"},
		Target: "u1234.wl.provider.net", SPFInclude: "_spf.provider.net", ExistingSPF: []string{"v=spf1 mx -all"}}
	plan, err := req.Plan()
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for range 2 {
		res, err := u.Apply(ctx, plan.Changes())
		if err != nil {
			panic(err)
		}
		for _, c := range res.Changes {
			fmt.Println(c.Outcome, c.Change.Action, c.Change.Record.Name, c.Change.Record.Type)
		}
	}

	req.ExistingSPF = []string{"v=spf1 a -all"}
	stale, _ := req.Plan()
	res, err := u.Apply(ctx, stale.Changes())
	fmt.Println(errors.Is(err, dnsauth.ErrConflict))
	for _, c := range res.Conflicts() {
		fmt.Printf("%s %s: %s: found %q\n", c.Change.Record.Name, c.Change.Record.Type, c.Reason, c.Found[0].Value)
	}
	// Output:
	// applied add em1234.example.com. CNAME
	// applied add s1._domainkey.example.com. CNAME
	// applied replace example.com. TXT
	// applied add _dmarc.example.com. TXT
	// skipped add em1234.example.com. CNAME
	// skipped add s1._domainkey.example.com. CNAME
	// skipped replace example.com. TXT
	// skipped add _dmarc.example.com. TXT
	// true
	// example.com. TXT: the record to replace is not there: "v=spf1 a -all": found "v=spf1 mx include:_spf.provider.net -all"
}
