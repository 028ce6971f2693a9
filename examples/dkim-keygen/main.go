// Command dkim-keygen makes a DKIM signing key and prints its key record.
//
//	dkim-keygen -a ed25519|rsa2048|rsa3072|rsa4096 -d DOMAIN -s SELECTOR -o PREFIX
//
// It writes PREFIX.key (PKCS#8 PEM, mode 0600) and prints the key record as
// one zone-file line (RFC 6376 §3.6.1, RFC 8463 §4). Exit status: 0 on
// success, 1 on failure, 2 on a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dkim-keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alg := fs.String("a", "ed25519", "key kind: ed25519, rsa2048, rsa3072 or rsa4096")
	domain := fs.String("d", "", "signing domain (d=)")
	selector := fs.String("s", "", "selector (s=)")
	prefix := fs.String("o", "", "output prefix: the key goes to PREFIX.key")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *domain == "" || *selector == "" || *prefix == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: dkim-keygen -a ed25519|rsa2048|rsa3072|rsa4096 -d DOMAIN -s SELECTOR -o PREFIX")
		return 2
	}
	key, err := dkim.GenerateKey(*alg, nil)
	if errors.Is(err, dkim.ErrKey) {
		fmt.Fprintln(stderr, "dkim-keygen:", err)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "dkim-keygen:", err)
		return 1
	}
	pemBytes, err := dkim.MarshalPrivateKey(key)
	if err != nil {
		fmt.Fprintln(stderr, "dkim-keygen:", err)
		return 1
	}
	f, err := os.OpenFile(*prefix+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintln(stderr, "dkim-keygen:", err)
		return 1
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		fmt.Fprintln(stderr, "dkim-keygen:", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "dkim-keygen:", err)
		return 1
	}
	txt, err := dkim.KeyRecordText(key.Public(), nil)
	if err != nil {
		fmt.Fprintln(stderr, "dkim-keygen:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s. IN TXT %s\n", dkim.RecordName(*selector, *domain), dnsauth.QuoteTXT(txt))
	return 0
}
