// Command dkim-verify verifies the DKIM signatures of the message on
// standard input.
//
//	dkim-verify [-zone FILE | -dns HOST:PORT] [-time UNIX] [-authserv-id ID] < message
//
// Keys come from a zone file (-zone, RFC 1035 master file syntax), from a
// DNS server (-dns), or from the system resolver. -time fixes the clock
// for x= expiry. It prints one line per signature,
//
//	d=<d> s=<s> result=<status> reason=<text>
//
// then an Authentication-Results header field (RFC 8601).
//
// It follows the conventions of examples/README.md: -h prints every flag;
// the exit status is 0 when there is at least one signature and every one
// passes, 1 otherwise, and 2 on a usage error (a bad or missing flag, a
// zone file that cannot be read); an error is one line naming the flag,
// the file or standard input.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/msgauth"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := cli.New("dkim-verify", "dkim-verify [-zone FILE | -dns HOST:PORT] [-time UNIX] [-authserv-id ID] < message", stdout, stderr)
	c.Doc = `Verifies the DKIM signatures of the message on standard input (RFC 6376,
RFC 8463) and prints one line per signature,
  d=<d> s=<s> result=<status> reason=<text>
then an Authentication-Results header field (RFC 8601).`
	c.Stdin = "the message to verify (RFC 5322, CRLF or LF line ends)"
	c.Exit0 = "when there is at least one signature and every one passes"
	c.Exit1 = "when there is none, or one does not pass, or the message cannot be read"
	var dns cli.DNS
	dns.Register(c.Flags)
	at := c.Flags.String("time", "", "verify as of `UNIX` time in seconds, for x= expiry (default: now)")
	authserv := c.Flags.String("authserv-id", "localhost", "authserv-id `ID` of the Authentication-Results field")
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}
	if err := dns.Check(); err != nil {
		return c.Usagef("%v", err)
	}
	opts := &dkim.VerifyOptions{}
	if *at != "" {
		sec, err := strconv.ParseInt(*at, 10, 64)
		if err != nil {
			return c.Usagef("-time %q: want Unix seconds", *at)
		}
		opts.Now = func() time.Time { return time.Unix(sec, 0) }
	}
	if *authserv == "" {
		return c.Usagef("-authserv-id is empty")
	}
	resolver, err := dns.Resolver()
	if err != nil {
		return c.Usagef("%v", err)
	}
	v, err := dkim.NewVerifier(resolver, opts)
	if err != nil {
		return c.Failf("%s", cli.Msg(err))
	}
	results, err := v.Verify(context.Background(), stdin)
	if err != nil {
		return c.Failf("standard input: %s", cli.Msg(err))
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
		return cli.Fail
	}
	return cli.OK
}
