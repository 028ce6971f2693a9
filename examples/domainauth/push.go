package main

import (
	"context"
	"io"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

func pushCommand(stdout, stderr io.Writer) *command {
	c := cli.New("domainauth", wrap("domainauth push "+requestUsage+" -server HOST:PORT -tsig NAME:ALG:SECRET [-revoke]"), stdout, stderr)
	c.Doc = `Applies the plan's changes (with -revoke, the changes that withdraw the
provider, as revoke prints them) to the zone of -domain, which holds every
record of the owner, the NS records of the subdomain mode included: it reads
the zone on -server, skips the records already there, and sends the rest as
one DNS UPDATE (RFC 2136) signed with the TSIG key (RFC 8945), which the
server applies whole or not at all. Data that differs from the plan (another
SPF record, another key at a selector, an SPF record changed since the
plan's -existing-spf) is a conflict, and then nothing is changed. It prints
one line per change: its outcome (applied, skipped, conflict, not-applied,
unknown), action, name, type and value, then why and what the zone holds,
if anything. The TSIG secret is never printed.`
	c.Stdin = "nothing"
	c.Exit0 = "when every change is applied or was already made"
	c.Exit1 = "on a conflict, when the server refuses the update (a wrong key), or when it\n     cannot be reached"
	var req request
	req.register(c.Flags)
	server := c.Flags.String("server", "", "the zone's primary name server at `HOST:PORT`, which accepts updates\n(required)")
	tsig := c.Flags.String("tsig", "", "the TSIG key that signs the update, `NAME:ALG:SECRET` as in named.conf\n(NAME:SECRET for hmac-sha256; required)")
	revoke := c.Flags.Bool("revoke", false, "apply the changes that withdraw the provider instead of the plan")
	return &command{c, func(ctx context.Context, args []string) int {
		if status, stop := noArgs(c, args); stop {
			return status
		}
		if err := req.check(); err != nil {
			return c.Usagef("%v", err)
		}
		switch {
		case *server == "":
			return c.Usagef("-server is required")
		case !hostPort(*server):
			return c.Usagef("-server %q: want HOST:PORT, such as 192.0.2.53:53", *server)
		case *tsig == "":
			return c.Usagef("-tsig is required")
		}
		// The errors of ParseTSIGKey never hold the secret; the value
		// of -tsig is not repeated here either.
		key, err := dnsauth.ParseTSIGKey(*tsig)
		if err != nil {
			return c.Usagef("-tsig: %s", cli.Msg(err))
		}
		p, err := req.plan()
		if err != nil {
			return c.Usagef("%v", err)
		}
		u, err := dnsauth.NewUpdater(*server, p.Request.Domain, key, nil)
		if err != nil {
			return c.Usagef("-server: %s", cli.Msg(err))
		}
		changes := p.Changes()
		if *revoke {
			changes = p.Revoke()
		}
		res, err := u.Apply(ctx, changes)
		if res != nil {
			if werr := res.WriteTable(stdout); werr != nil {
				return c.Failf("%v", werr)
			}
		}
		if err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		return cli.OK
	}}
}
