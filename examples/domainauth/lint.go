package main

import (
	"context"
	"io"
	"strings"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

func lintCommand(stdout, stderr io.Writer) *command {
	c := cli.New("domainauth", "domainauth lint DOMAIN [-dns HOST:PORT] [-ip IP] [-selectors S1,S2]", stdout, stderr)
	c.Doc = `Checks the mail-authentication records of DOMAIN and prints what is wrong
with each and how to fix it, as a table: SPF (RFC 7208: one record that
parses, at most 10 DNS-querying terms over the whole evaluation, with the
cost of each and a flattened record proposed above 10, void lookups, ptr,
+all), DMARC (RFC 9989, RFC 7489), the DKIM keys of -selectors (RFC 6376,
RFC 8301, RFC 8463) and the reverse DNS of -ip (RFC 8601 iprev). Each
finding is an error, a warning or info; a check the DNS did not let it make
is a warning.`
	c.Stdin = "nothing"
	c.Exit0 = "when no finding is an error (warnings and info, a DNS failure included)"
	c.Exit1 = "when a finding is an error: receivers fail or ignore a record, or a check\n     mail depends on cannot pass"
	var dns dnsFlag
	dns.register(c.Flags)
	ip := c.Flags.String("ip", "", "an `IP` address the domain's mail is sent from, whose reverse DNS is\nchecked")
	selectors := c.Flags.String("selectors", "", "the DKIM `SELECTORS` whose keys are checked, comma-separated")
	return &command{c, func(ctx context.Context, args []string) int {
		if len(args) != 1 {
			return c.Usagef("lint takes one DOMAIN, not %d arguments", len(args))
		}
		if err := dns.check(); err != nil {
			return c.Usagef("%v", err)
		}
		var opts dnsauth.LintOptions
		var err error
		if opts.IP, err = ipFlag(*ip); err != nil {
			return c.Usagef("%v", err)
		}
		if *selectors != "" {
			if opts.Selectors, err = splitList("selectors", *selectors); err != nil {
				return c.Usagef("%v", err)
			}
		}
		r, err := dns.resolver()
		if err != nil {
			if dns != "" {
				return c.Usagef("%v", err)
			}
			return c.Failf("%s", cli.Msg(err))
		}
		rep, err := r.Lint(ctx, args[0], &opts)
		if err != nil {
			// Lint fails, before any query, for a domain or a selector
			// that is not a name; otherwise only when ctx ends.
			msg := strings.TrimPrefix(cli.Msg(err), "lint: ")
			if strings.HasPrefix(msg, "selector ") {
				return c.Usagef("-selectors: %s", msg)
			}
			return c.Usagef("DOMAIN: %s", msg)
		}
		if err := rep.WriteTable(stdout); err != nil {
			return c.Failf("%v", err)
		}
		if rep.Worst() == dnsauth.SeverityError {
			return cli.Fail
		}
		return cli.OK
	}}
}
