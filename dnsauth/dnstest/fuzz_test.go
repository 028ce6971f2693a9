package dnstest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// FuzzParseZone loads arbitrary zone text and asks every name it holds
// for every type: no panic, no hang (CNAME loops in the data included).
func FuzzParseZone(f *testing.F) {
	f.Add(updZone)
	f.Add("$ORIGIN a.\n@ CNAME b.\nb. CNAME a.\n")
	f.Add("example.com. TXT \"a\" \"b\"\n*.example.com. MX 10 mx\n")
	f.Add("$TTL 60\nexample.com. IN SOA ns hm 1 2 3 4 5\n$INCLUDE /etc/passwd\n")
	f.Fuzz(func(t *testing.T, text string) {
		z, err := dnstest.ParseZone(text)
		if err != nil {
			return
		}
		ctx := context.Background()
		zp := dns.NewZoneParser(stringsReader(text), ".", "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			n := rr.Header().Name
			z.LookupTXT(ctx, n)
			z.LookupMX(ctx, n)
			z.LookupNetIP(ctx, "ip", n)
			z.LookupCNAME(ctx, n)
			z.LookupNS(ctx, n)
		}
	})
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
