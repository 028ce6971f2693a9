package dnsauth

import (
	"strings"

	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// QuoteTXT returns the data of a TXT record holding text as a zone file
// writes it (RFC 1035 §5.1): character-strings of at most 255 octets
// (§3.3.14), each quoted, '"' and '\' escaped, separated by spaces, as in
//
//	s1._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...IDAQAB"
func QuoteTXT(text string) string {
	parts := dnsname.SplitTXT(text)
	for i, p := range parts {
		p = strings.ReplaceAll(p, `\`, `\\`)
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `\"`) + `"`
	}
	return strings.Join(parts, " ")
}
