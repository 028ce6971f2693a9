package dnsauth

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// Purpose says what a record of a plan is for.
type Purpose string

// The purposes of the records of domain authentication.
const (
	PurposeReturnPath Purpose = "return-path" // the envelope sender's domain: bounces and SPF (RFC 7208 §2.4)
	PurposeDKIM       Purpose = "dkim"        // a DKIM key, or the CNAME to it (RFC 6376 §3.6.2.1)
	PurposeSPF        Purpose = "spf"         // the domain's own SPF record (RFC 7208 §3)
	PurposeDMARC      Purpose = "dmarc"       // the DMARC policy record (RFC 9989 §4.7)
	PurposeDelegation Purpose = "delegation"  // NS records handing a subdomain to the provider (RFC 1034 §4.2.2)
)

// Record is one DNS record of a plan, in the form people and zone files
// use: Name is absolute (with the final dot), raw labels as the resolvers
// of this module take them; Type is the mnemonic ("CNAME", "TXT", "MX",
// "NS"); Value is the data as a zone file writes it, except for TXT, whose
// Value is the text itself, unquoted and unsplit (the string a TXT lookup
// returns). The JSON field names are stable.
type Record struct {
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	Value   string  `json:"value"`
	TTL     uint32  `json:"ttl"`
	Purpose Purpose `json:"purpose"`
	// Selector is the DKIM selector of a PurposeDKIM record.
	Selector string `json:"selector,omitempty"`
	// Replaces is, for a record that changes one already published (the
	// domain's SPF record), the value it replaces; "" for a new record.
	Replaces string `json:"replaces,omitempty"`
}

// RR returns the record as a miekg/dns resource record.
func (r Record) RR() (dns.RR, error) {
	rr, err := dns.NewRR(r.zoneLine())
	if err != nil {
		return nil, fmt.Errorf("dnsauth: record %s %s: %w", r.Name, r.Type, err)
	}
	if rr == nil {
		return nil, fmt.Errorf("dnsauth: record %s %s: empty", r.Name, r.Type)
	}
	return rr, nil
}

// String returns the record as one zone-file line (RFC 1035 §5.1), as BIND
// reads it: name, TTL, class, type and data, TXT data quoted and split
// into strings of at most 255 octets.
func (r Record) String() string {
	rr, err := r.RR()
	if err != nil {
		return r.zoneLine()
	}
	return rr.String()
}

// zoneLine writes the record as zone-file text without miekg/dns.
func (r Record) zoneLine() string {
	v := r.Value
	if strings.EqualFold(r.Type, "TXT") {
		v = QuoteTXT(v)
	}
	return dnsname.Escape(r.Name) + " " + strconv.FormatUint(uint64(r.TTL), 10) + " IN " + r.Type + " " + v
}
