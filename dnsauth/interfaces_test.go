package dnsauth_test

import (
	"net"
	"testing"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/spf"
)

// TestResolversSatisfyEveryPackage: the module's two resolvers, and
// *net.Resolver, are accepted by every package that asks DNS questions, with
// no adapter. dmarc's HostResolver is the optional form that enables np=
// (RFC 9989 §4.7); every resolver here has it.
func TestResolversSatisfyEveryPackage(t *testing.T) {
	t.Parallel()
	resolvers := map[string]any{
		"*dnsauth.Resolver": (*dnsauth.Resolver)(nil),
		"*dnstest.Zone":     (*dnstest.Zone)(nil),
		"*net.Resolver":     (*net.Resolver)(nil),
	}
	for name, r := range resolvers {
		if _, ok := r.(spf.Resolver); !ok {
			t.Errorf("%s is not an spf.Resolver", name)
		}
		if _, ok := r.(dkim.Resolver); !ok {
			t.Errorf("%s is not a dkim.Resolver", name)
		}
		if _, ok := r.(dmarc.Resolver); !ok {
			t.Errorf("%s is not a dmarc.Resolver", name)
		}
		if _, ok := r.(dmarc.HostResolver); !ok {
			t.Errorf("%s is not a dmarc.HostResolver", name)
		}
	}
}

// The same, checked by the compiler.
var (
	_ spf.Resolver       = (*dnsauth.Resolver)(nil)
	_ spf.Resolver       = (*dnstest.Zone)(nil)
	_ dkim.Resolver      = (*dnsauth.Resolver)(nil)
	_ dkim.Resolver      = (*dnstest.Zone)(nil)
	_ dmarc.HostResolver = (*dnsauth.Resolver)(nil)
	_ dmarc.HostResolver = (*dnstest.Zone)(nil)
)
