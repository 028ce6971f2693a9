// Command dkim-keygen makes a DKIM signing key and prints its key record.
//
//	dkim-keygen [-a ed25519|rsa2048|rsa3072|rsa4096] -d DOMAIN -s SELECTOR -o PREFIX
//
// It writes PREFIX.key (PKCS#8 PEM, mode 0600; an existing file is not
// overwritten) and prints the key record as one zone-file line (RFC 6376
// §3.6.1, RFC 8463 §4). -d and -s are checked by the dkim package before a
// key is made. It reads nothing from standard input.
//
// It follows the conventions of examples/README.md: -h prints every flag;
// the exit status is 0 when the key is written and its record printed, 1
// when that fails, and 2 on a usage error (a bad or missing flag, a key
// file that cannot be created); an error is one line naming the flag or
// file.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// kinds are the key kinds dkim.GenerateKey makes.
var kinds = []string{"ed25519", "rsa2048", "rsa3072", "rsa4096"}

func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := cli.New("dkim-keygen", "dkim-keygen [-a "+strings.Join(kinds, "|")+"] -d DOMAIN -s SELECTOR -o PREFIX", stdout, stderr)
	c.Doc = `Makes a DKIM signing key, writes it to PREFIX.key (PKCS#8 PEM, mode 0600,
never over an existing file) and prints its key record as one zone-file line:
SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; ..." (RFC 6376 §3.6.1, RFC 8463 §4).`
	c.Stdin = "nothing"
	c.Exit0 = "when the key is written and its record printed"
	c.Exit1 = "when the key cannot be made or written"
	alg := c.Flags.String("a", "ed25519", "key `KIND`: "+strings.Join(kinds[:len(kinds)-1], ", ")+" or "+kinds[len(kinds)-1])
	domain := c.Flags.String("d", "", "signing `DOMAIN` (d=) the record is published under (required)")
	selector := c.Flags.String("s", "", "`SELECTOR` (s=) the record is published under (required)")
	prefix := c.Flags.String("o", "", "output `PREFIX`: the key goes to PREFIX.key (required)")
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}
	switch {
	case *domain == "":
		return c.Usagef("-d is required")
	case *selector == "":
		return c.Usagef("-s is required")
	case *prefix == "":
		return c.Usagef("-o is required")
	case !slices.Contains(kinds, *alg):
		return c.Usagef("-a %q: want one of %s", *alg, strings.Join(kinds, ", "))
	}
	if err := cli.CheckDKIM(*domain, *selector, nil); err != nil {
		return c.Usagef("%v", err)
	}

	// The key file is made before the key, so that a bad -o costs nothing.
	name := *prefix + ".key"
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return c.Usagef("-o: %v", err)
	}
	fail := func(err error) int {
		f.Close()
		os.Remove(name)
		return c.Failf("%s", cli.Msg(err))
	}
	key, err := dkim.GenerateKey(*alg, nil)
	if err != nil {
		return fail(err)
	}
	pemBytes, err := dkim.MarshalPrivateKey(key)
	if err != nil {
		return fail(err)
	}
	txt, err := dkim.KeyRecordText(key.Public(), nil)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return c.Failf("%v", err)
	}
	fmt.Fprintf(stdout, "%s. IN TXT %s\n", dkim.RecordName(*selector, *domain), dnsauth.QuoteTXT(txt))
	return cli.OK
}
