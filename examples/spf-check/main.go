// Command spf-check evaluates SPF (RFC 7208) for one connection and prints
// the result:
//
//	go run ./examples/spf-check -ip IP -mail-from ADDR -helo NAME \
//		[-zone FILE | -dns HOST:PORT] [-receiver NAME] [-trace]
//
// The MAIL FROM identity is checked (an empty -mail-from is the null
// sender, checked as postmaster@HELO, RFC 7208 §2.4). -zone answers from a
// zone file (RFC 1035 master format) instead of DNS; -dns asks that server;
// without either the system resolver is used.
//
// The first line printed is "result=<status>", the second the Received-SPF
// header (RFC 7208 §9.1); an explanation (exp=) follows as
// "explanation=<text>", and -trace prints every lookup and term tried.
//
// It follows the conventions of examples/README.md: -h prints every flag;
// the exit status is 0 when the result is pass, 1 for any other result
// (fail, softfail, neutral, none, temperror when the DNS could not be
// used, permerror), and 2 on a usage error (a bad or missing flag, a zone
// file that cannot be read); an error is one line naming the flag or file.
package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/spf"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := cli.New("spf-check", "spf-check -ip IP -mail-from ADDR -helo NAME [-zone FILE | -dns HOST:PORT] [-receiver NAME] [-trace]", stdout, stderr)
	c.Doc = `Evaluates SPF (RFC 7208) for the MAIL FROM identity of one connection (the
null sender, an empty -mail-from, is checked as postmaster@HELO) and prints
"result=<status>", the Received-SPF header field (RFC 7208 §9.1), the
explanation of a fail as "explanation=<text>", and with -trace every lookup
and term tried.`
	c.Stdin = "nothing"
	c.Exit0 = "when the result is pass"
	c.Exit1 = "for any other result: fail, softfail, neutral, none, temperror (the DNS could not be used), permerror"
	ipFlag := c.Flags.String("ip", "", "the SMTP client's `IP` address (required)")
	mailFrom := c.Flags.String("mail-from", "", "the MAIL FROM `ADDR`ess (empty: the null sender)")
	helo := c.Flags.String("helo", "", "the HELO/EHLO `NAME` (required when -mail-from is empty)")
	var dns cli.DNS
	dns.Register(c.Flags)
	receiver := c.Flags.String("receiver", "", "the checking host's `NAME` for Received-SPF (default: this host's name)")
	trace := c.Flags.Bool("trace", false, "print each lookup and term")
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}
	if *ipFlag == "" {
		return c.Usagef("-ip is required")
	}
	ip, err := netip.ParseAddr(*ipFlag)
	if err != nil {
		return c.Usagef("-ip %q: not an IP address", *ipFlag)
	}
	if *helo == "" && *mailFrom == "" {
		return c.Usagef("-helo is required when -mail-from is empty")
	}
	if err := dns.Check(); err != nil {
		return c.Usagef("%v", err)
	}
	r, err := dns.Resolver()
	if err != nil {
		return c.Usagef("%v", err)
	}
	name := *receiver
	if name == "" {
		name, _ = os.Hostname()
	}
	checker, err := spf.NewChecker(r, &spf.Options{Hostname: name})
	if err != nil {
		return c.Failf("%s", cli.Msg(err))
	}
	res := checker.CheckMailFrom(context.Background(), ip, *mailFrom, *helo)
	fmt.Fprintf(stdout, "result=%s\n", res.Status)
	// The field unfolded (RFC 5322 §2.2.3): one line of output.
	fmt.Fprintln(stdout, strings.ReplaceAll(res.ReceivedSPF(name), "\r\n", ""))
	if res.Explanation != "" {
		fmt.Fprintf(stdout, "explanation=%s\n", res.Explanation)
	}
	if *trace {
		fmt.Fprint(stdout, res.Trace)
	}
	if res.Status != spf.Pass {
		return cli.Fail
	}
	return cli.OK
}
