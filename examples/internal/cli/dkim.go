package cli

import (
	"crypto/ed25519"
	"fmt"

	"github.com/smarthost-go/smarthost/dkim"
)

// CheckDKIM has dkim.NewSigner check a signing domain (-d), a selector
// (-s) and an h= list (-headers; nil for the default), so that a program
// refuses them before it reads or makes a key, with the dkim package's own
// rules (RFC 6376 §3.1, §3.5, §5.4). The Signers it makes for that hold a
// fixed Ed25519 key and never sign. The error names the flag.
func CheckDKIM(domain, selector string, headers []string) error {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	if _, err := dkim.NewSigner(domain, "s", key, nil); err != nil {
		return fmt.Errorf("-d: %s", Msg(err))
	}
	if _, err := dkim.NewSigner("example.com", selector, key, nil); err != nil {
		return fmt.Errorf("-s: %s", Msg(err))
	}
	if _, err := dkim.NewSigner("example.com", "s", key, &dkim.SignOptions{Headers: headers}); err != nil {
		return fmt.Errorf("-headers: %s", Msg(err))
	}
	return nil
}
