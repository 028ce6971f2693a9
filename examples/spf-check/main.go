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
// "explanation=<text>", and -trace prints every lookup and term tried. The
// exit status is 0 when an evaluation completed (whatever its result), 1
// when the zone file or DNS server could not be used, 2 on usage errors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/spf"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = "usage: spf-check -ip IP -mail-from ADDR -helo NAME [-zone FILE | -dns HOST:PORT] [-receiver NAME] [-trace]"

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("spf-check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ipFlag := fs.String("ip", "", "the SMTP client's IP address")
	mailFrom := fs.String("mail-from", "", "the MAIL FROM address (empty: the null sender)")
	helo := fs.String("helo", "", "the HELO/EHLO name")
	zoneFile := fs.String("zone", "", "answer from this zone file")
	server := fs.String("dns", "", "ask this DNS server (host:port)")
	receiver := fs.String("receiver", "", "the checking host's name for Received-SPF (default: this host's name)")
	trace := fs.Bool("trace", false, "print each lookup and term")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "spf-check: %v\n%s\n", err, usage)
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "spf-check: "+format+"\n%s\n", append(a, usage)...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	ip, err := netip.ParseAddr(*ipFlag)
	if err != nil {
		return fail("-ip: %q is not an IP address", *ipFlag)
	}
	if *helo == "" && *mailFrom == "" {
		return fail("-helo is needed when -mail-from is empty")
	}
	if *zoneFile != "" && *server != "" {
		return fail("-zone and -dns exclude each other")
	}
	var r spf.Resolver = net.DefaultResolver
	switch {
	case *zoneFile != "":
		z, err := dnstest.ReadZoneFile(*zoneFile)
		if err != nil {
			fmt.Fprintf(stderr, "spf-check: %v\n", err)
			return 1
		}
		r = z
	case *server != "":
		dr, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{*server}})
		if err != nil {
			fmt.Fprintf(stderr, "spf-check: -dns: %v\n", err)
			return 1
		}
		r = dr
	}
	name := *receiver
	if name == "" {
		name, _ = os.Hostname()
	}
	c, err := spf.NewChecker(r, &spf.Options{Hostname: name})
	if err != nil {
		fmt.Fprintf(stderr, "spf-check: %v\n", err)
		return 1
	}
	res := c.CheckMailFrom(context.Background(), ip, *mailFrom, *helo)
	fmt.Fprintf(stdout, "result=%s\n", res.Status)
	// The field unfolded (RFC 5322 §2.2.3): one line of output.
	fmt.Fprintln(stdout, strings.ReplaceAll(res.ReceivedSPF(name), "\r\n", ""))
	if res.Explanation != "" {
		fmt.Fprintf(stdout, "explanation=%s\n", res.Explanation)
	}
	if *trace {
		fmt.Fprint(stdout, res.Trace)
	}
	return 0
}
