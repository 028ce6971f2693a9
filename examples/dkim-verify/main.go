// Command dkim-verify verifies the DKIM signatures of the message on
// standard input.
//
//	dkim-verify [-zone FILE | -dns HOST:PORT] [-time UNIX] [-authserv-id ID]
//
// Keys come from a zone file (-zone, RFC 1035 master file syntax), from a
// DNS server (-dns), or from the system resolver. -time fixes the clock
// for x= expiry. It prints one line per signature,
//
//	d=<d> s=<s> result=<status> reason=<text>
//
// then an Authentication-Results header field (RFC 8601). Exit status: 0
// when there is at least one signature and every one passes, 1 otherwise,
// 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dkim-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	zoneFile := fs.String("zone", "", "zone file holding the key records")
	server := fs.String("dns", "", "DNS server HOST:PORT to ask for key records")
	at := fs.String("time", "", "verify as of this Unix time (default: now)")
	authserv := fs.String("authserv-id", "localhost", "authserv-id of the Authentication-Results field")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "dkim-verify:", msg)
		fmt.Fprintln(stderr, "usage: dkim-verify [-zone FILE | -dns HOST:PORT] [-time UNIX] < message")
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments")
	}
	if *zoneFile != "" && *server != "" {
		return usage("give -zone or -dns, not both")
	}
	opts := &dkim.VerifyOptions{}
	switch {
	case *zoneFile != "":
		z, err := dnstest.ReadZoneFile(*zoneFile)
		if err != nil {
			fmt.Fprintln(stderr, "dkim-verify:", err)
			return 1
		}
		opts.Resolver = z
	case *server != "":
		r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{*server}})
		if err != nil {
			return usage(err.Error())
		}
		opts.Resolver = r
	}
	if *at != "" {
		sec, err := strconv.ParseInt(*at, 10, 64)
		if err != nil {
			return usage("bad -time: want Unix seconds")
		}
		opts.Now = func() time.Time { return time.Unix(sec, 0) }
	}
	results, err := dkim.Verify(context.Background(), stdin, opts)
	if err != nil {
		fmt.Fprintln(stderr, "dkim-verify:", err)
		return 1
	}
	allPass := len(results) > 0
	for _, r := range results {
		fmt.Fprintf(stdout, "d=%s s=%s result=%s reason=%s\n", r.Domain, r.Selector, r.Status, r.Reason())
		allPass = allPass && r.Status == dkim.StatusPass
	}
	fmt.Fprintf(stdout, "Authentication-Results: %s\n", authres.Format(*authserv, dkim.AuthResults(results)))
	if !allPass {
		return 1
	}
	return 0
}
