package spf_test

import (
	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/internal/spfsuite"
)

// The suite loaders live in internal/spfsuite, shared with the
// benchmark-comparison module.
type suiteCase = spfsuite.Case

func loadSuiteFile(path string) ([]*suiteCase, error) { return spfsuite.LoadFile(path) }

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: dnstest.DefaultTTL}
}
