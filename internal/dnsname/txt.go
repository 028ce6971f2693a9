package dnsname

// SplitTXT splits a record text into the character-strings of at most 255
// octets that one TXT record carries (RFC 1035 §3.3.14); readers join them
// without separators (RFC 7208 §3.3, RFC 6376 §3.6.2.2). The empty text is
// one empty string.
func SplitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out, s = append(out, s[:255]), s[255:]
	}
	return append(out, s)
}
