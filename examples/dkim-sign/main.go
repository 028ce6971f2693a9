// Command dkim-sign signs the message on standard input and writes the
// signed message to standard output.
//
//	dkim-sign -d DOMAIN -s SELECTOR -k KEYFILE [-d ... -s ... -k ...]
//	          [-c relaxed/relaxed] [-h From:To:Subject]
//
// -k, -d and -s may repeat, in matching order, for several signatures made
// in one pass. KEYFILE is PEM (PKCS#1 or PKCS#8) or a base64 Ed25519 seed.
// -h sets the h= list; without it the package default list is oversigned.
// Exit status: 0 on success, 1 on failure, 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/smarthost-go/smarthost/dkim"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dkim-sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var domains, selectors, keys list
	fs.Var(&domains, "d", "signing domain (d=); repeat for more signatures")
	fs.Var(&selectors, "s", "selector (s=); one per -d")
	fs.Var(&keys, "k", "private key file; one per -d")
	canon := fs.String("c", "relaxed/relaxed", "canonicalization header/body")
	headers := fs.String("h", "", "colon-separated h= list (default: the package list, oversigned)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "dkim-sign:", msg)
		fmt.Fprintln(stderr, "usage: dkim-sign -d DOMAIN -s SELECTOR -k KEYFILE [-d -s -k ...] [-c relaxed/relaxed] [-h From:To:Subject] < message")
		return 2
	}
	if len(domains) == 0 || len(domains) != len(selectors) || len(domains) != len(keys) || fs.NArg() > 0 {
		return usage("give -d, -s and -k the same number of times, at least once")
	}
	hc, bc, err := dkim.ParseCanonicalization(*canon)
	if err != nil || *canon == "" {
		return usage("bad -c: want simple or relaxed, header/body")
	}
	var hlist []string
	if *headers != "" {
		hlist = strings.Split(*headers, ":")
	}
	var signers []*dkim.Signer
	for i := range domains {
		pemBytes, err := os.ReadFile(keys[i])
		if err != nil {
			fmt.Fprintln(stderr, "dkim-sign:", err)
			return 1
		}
		key, err := dkim.ParsePrivateKey(pemBytes)
		if err != nil {
			fmt.Fprintf(stderr, "dkim-sign: %s: %v\n", keys[i], err)
			return 1
		}
		s, err := dkim.NewSigner(domains[i], selectors[i], key, &dkim.SignOptions{HeaderCanonicalization: hc, BodyCanonicalization: bc, Headers: hlist})
		if err != nil {
			return usage(err.Error())
		}
		signers = append(signers, s)
	}
	if err := dkim.Sign(context.Background(), stdout, stdin, signers...); err != nil {
		fmt.Fprintln(stderr, "dkim-sign:", err)
		return 1
	}
	return 0
}
