package smarthost_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/spf"
)

// A receiving mail server checks a message the way the large mailbox
// providers do: SPF for the connecting client and its MAIL FROM, every DKIM
// signature while the message streams in, DMARC on both, and one
// Authentication-Results header for all three. The message came from a
// smart host (198.51.100.10, provider.example) that signed it for the
// customer's domain and its own, with the customer's return path; it was
// signed by another implementation (dkimpy; see testdata/example). A
// dnstest.Zone stands in for the DNS.
func Example() {
	ctx := context.Background()
	dns, _ := dnstest.ReadZoneFile("testdata/example/example.zone")
	msg, _ := os.Open("testdata/example/message.eml")
	client := netip.MustParseAddr("198.51.100.10")

	checker, _ := spf.NewChecker(dns, nil)
	spfResult := checker.CheckMailFrom(ctx, client, "bounces+1a2b@em1234.example.com", "mta7.provider.example")
	verifier, _ := dkim.NewVerifier(dns, nil)
	w := verifier.NewWriter(ctx)
	io.Copy(w, msg)
	dkimResults, _ := w.Results()
	evaluator, _ := dmarc.NewEvaluator(dns, nil)
	dmarcResult := evaluator.Evaluate(ctx, w.Header(), spfResult, dkimResults)

	fmt.Println(msgauth.Format("mx.example.net", spfResult, dkimResults, dmarcResult))
	// Output:
	// mx.example.net; spf=pass smtp.mailfrom=bounces+1a2b@em1234.example.com; dkim=pass header.d=provider.example header.i=@provider.example header.s=pm header.a=ed25519-sha256 header.b=bOV3B9O2; dkim=pass header.d=example.com header.i=@example.com header.s=s1 header.a=ed25519-sha256 header.b=76THQRji; dmarc=pass header.from=example.com
}
