// Command domainauth plans, checks, pushes and withdraws the DNS records
// that let a smart host send, sign and bounce for a customer's domain, and
// lints a domain's mail-authentication records:
//
//	go run ./examples/domainauth plan   REQUEST [-format zone|json|table]
//	go run ./examples/domainauth verify REQUEST [-dns HOST:PORT] [-ip IP] [-provider] \
//		[-wait DURATION] [-ns-addr NSHOST=ADDR:PORT ...]
//	go run ./examples/domainauth revoke REQUEST [-format zone|json|table]
//	go run ./examples/domainauth push   REQUEST -server HOST:PORT -tsig NAME:ALG:SECRET [-revoke]
//	go run ./examples/domainauth lint   DOMAIN [-dns HOST:PORT] [-ip IP] [-selectors S1,S2]
//
// REQUEST is the flags of a dnsauth.Request, the same for plan, verify,
// revoke and push:
//
//	-domain DOMAIN -mode delegated|self-hosted|subdomain -return-path LABEL
//	-selectors S1,S2 -target HOST -spf-include HOST [-mx HOST]
//	[-subdomain LABEL] [-ns NS1,NS2] [-existing-spf TXT ...]
//	[-existing-dmarc TXT] [-dkim-key SELECTOR:FILE ...] [-report-uri URI]
//	[-ttl SECONDS]
//
// plan prints the records to publish (dnsauth.Request.Plan): by default
// the owner's records as zone-file text, then the provider's, then the
// plan's warnings as comments. revoke prints the changes that withdraw the
// provider (Plan.Revoke), most urgent first. verify checks that the records
// are published on the recursive resolver and every authoritative server,
// and that SPF, DKIM and DMARC pass end to end (Resolver.Verify); it prints
// "<status> <name> <type> <value>" per record, then one line per check.
// push applies the plan's changes (or, with -revoke, the revocation) to the
// domain's zone by DNS UPDATE signed with TSIG (Updater.Apply) and prints
// what it did per change. lint prints what is wrong with a domain's SPF,
// DMARC and DKIM records and its reverse DNS, and how to fix each
// (Resolver.Lint). None reads standard input.
//
// It follows the conventions of examples/README.md: "domainauth -h"
// prints every command's flags and "domainauth COMMAND -h" one command's;
// the exit status is 0 when the job is done or the check passes, 1 when
// verify finds a record or check that is not ok, push meets a conflict, a
// refusal or a failure, or lint finds an error (warnings exit 0), and 2 on
// a usage error (a bad or missing command, flag or argument, a key file
// that cannot be read or used); an error is one line naming the flag or
// file. The TSIG secret is never printed.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one command of the program: its flags and help, and what
// runs once they are parsed. args are the arguments left after the flags.
type command struct {
	*cli.Command
	run func(ctx context.Context, args []string) int
}

var commands = []struct {
	name string
	make func(stdout, stderr io.Writer) *command
}{
	{"plan", planCommand},
	{"verify", verifyCommand},
	{"revoke", revokeCommand},
	{"push", pushCommand},
	{"lint", lintCommand},
}

const names = "plan, verify, revoke, push or lint"

func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	top := cli.New("domainauth", "domainauth plan|verify|revoke|push|lint [FLAGS] [ARGS]", stdout, stderr)
	if len(args) == 0 {
		return top.Usagef("no command: want %s (domainauth -h for help)", names)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		for i, c := range commands {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			c.make(stdout, stderr).Help()
		}
		return cli.OK
	}
	for _, c := range commands {
		if c.name == args[0] {
			cmd := c.make(stdout, stderr)
			rest, status, stop := cmd.ParseInterleaved(args[1:])
			if stop {
				return status
			}
			return cmd.run(context.Background(), rest)
		}
	}
	return top.Usagef("unknown command %q: want %s", args[0], names)
}

// noArgs refuses arguments for the commands that take none.
func noArgs(c *cli.Command, args []string) (status int, stop bool) {
	if len(args) > 0 {
		return c.Usagef("unexpected argument %q", args[0]), true
	}
	return 0, false
}

// requestUsage is the usage line of the request flags.
const requestUsage = "-domain DOMAIN [-mode delegated|self-hosted|subdomain] [-return-path LABEL] -selectors S1,S2 " +
	"[-target HOST] -spf-include HOST [-mx HOST] [-subdomain LABEL] [-ns NS1,NS2] [-existing-spf TXT ...] " +
	"[-existing-dmarc TXT] [-dkim-key SELECTOR:FILE ...] [-report-uri URI] [-ttl SECONDS]"

// usageItem is what a usage line is not broken inside: an optional part
// in brackets, a flag with its value, or a word.
var usageItem = regexp.MustCompile(`\[[^]]*\]|-[\w-]+ [A-Z][^\s\[]*|\S+`)

// wrap breaks a usage line into lines of at most 78 columns, the ones
// after the first indented, between flags, never inside one.
func wrap(s string) string {
	var b strings.Builder
	col := len("usage: ")
	for i, w := range usageItem.FindAllString(s, -1) {
		if i > 0 && col+1+len(w) > 78 {
			b.WriteString("\n       ")
			col = 7
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}
