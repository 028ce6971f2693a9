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
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
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
	var resolver dkim.Resolver = net.DefaultResolver
	switch {
	case *zoneFile != "":
		z, err := dnstest.ReadZoneFile(*zoneFile)
		if err != nil {
			fmt.Fprintln(stderr, "dkim-verify:", err)
			return 1
		}
		resolver = z
	case *server != "":
		r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{*server}})
		if err != nil {
			return usage(err.Error())
		}
		resolver = r
	}
	if *at != "" {
		sec, err := strconv.ParseInt(*at, 10, 64)
		if err != nil {
			return usage("bad -time: want Unix seconds")
		}
		opts.Now = func() time.Time { return time.Unix(sec, 0) }
	}
	v, err := dkim.NewVerifier(resolver, opts)
	if err != nil {
		return usage(err.Error())
	}
	results, err := v.Verify(context.Background(), stdin)
	if err != nil {
		fmt.Fprintln(stderr, "dkim-verify:", err)
		return 1
	}
	allPass := len(results) > 0
	for _, r := range results {
		reason := ""
		if r.Err != nil {
			reason = strings.TrimPrefix(r.Err.Error(), "dkim: ")
		}
		fmt.Fprintf(stdout, "d=%s s=%s result=%s reason=%s\n", r.Domain, r.Selector, r.Status, reason)
		allPass = allPass && r.Status == dkim.Pass
	}
	fmt.Fprintf(stdout, "Authentication-Results: %s\n", msgauth.Format(*authserv, results))
	if !allPass {
		return 1
	}
	return 0
}
