package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

// dnsFlag is the -dns flag of verify and lint, with the name and help it
// has in every example program.
type dnsFlag string

func (d *dnsFlag) register(fs *flag.FlagSet) {
	fs.StringVar((*string)(d), "dns", "", "ask the DNS server at `HOST:PORT` (default: the system resolver)")
}

func (d dnsFlag) check() error {
	if d != "" && !hostPort(string(d)) {
		return fmt.Errorf("-dns %q: want HOST:PORT, such as 127.0.0.1:53", string(d))
	}
	return nil
}

// resolver returns a resolver that asks the server of -dns, or those of
// /etc/resolv.conf. Call check first. An error with -dns is a usage error.
func (d dnsFlag) resolver() (*dnsauth.Resolver, error) {
	if d == "" {
		return dnsauth.NewResolver(nil)
	}
	r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{string(d)}})
	if err != nil {
		return nil, fmt.Errorf("-dns: %s", cli.Msg(err))
	}
	return r, nil
}

// hostPort reports whether v is a host and a port number.
func hostPort(v string) bool {
	host, port, err := net.SplitHostPort(v)
	n, perr := strconv.ParseUint(port, 10, 16)
	return err == nil && host != "" && perr == nil && n != 0
}

// ipFlag parses the value of -ip, "" being no address.
func ipFlag(v string) (netip.Addr, error) {
	if v == "" {
		return netip.Addr{}, nil
	}
	ip, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("-ip %q: not an IP address", v)
	}
	return ip, nil
}

// maxPoll is how often verify -wait checks again, at most.
const maxPoll = 5 * time.Second

func verifyCommand(stdout, stderr io.Writer) *command {
	c := cli.New("domainauth", wrap("domainauth verify "+requestUsage+
		" [-dns HOST:PORT] [-ip IP] [-provider] [-wait DURATION] [-ns-addr NSHOST=ADDR:PORT ...]"), stdout, stderr)
	c.Doc = `Checks that the planned records of -domain are published as planned on the
recursive resolver (-dns, or the system's) and on every authoritative server
of each record's zone, and that they work end to end: SPF for the return
path from -ip, each DKIM key through its CNAME, DMARC. It prints one line per
record, "<status> <name> <type> <value>", where status is ok, missing, wrong,
conflict, not-propagated or error, then one line per check in the same
shape: "<result> <return-path domain> spf <ip>", "<result> <key name> dkim
<selector>", "<result> <domain> dmarc <policy>" (result "skipped" for SPF
without -ip). With -wait it checks again every 5 seconds (a quarter of
-wait when that is shorter) until everything is ok or the time is up, with
one line of progress per round on standard error.`
	c.Stdin = "nothing"
	c.Exit0 = "when every record and every check is ok"
	c.Exit1 = "otherwise"
	var req request
	req.register(c.Flags)
	var dns dnsFlag
	dns.register(c.Flags)
	ip := c.Flags.String("ip", "", "an `IP` address the provider sends from, to check SPF (default: no SPF\ncheck)")
	provider := c.Flags.Bool("provider", false, "also check the provider's records, on its name servers")
	wait := c.Flags.Duration("wait", 0, "check again until everything is ok, for at most `DURATION` (such as 10m)")
	var nsAddrs list
	c.Flags.Var(&nsAddrs, "ns-addr", "ask the name server NSHOST at ADDR:PORT instead of its own addresses on\nport 53, given as `NSHOST=ADDR:PORT`; repeat for each")
	return &command{c, func(ctx context.Context, args []string) int {
		if status, stop := noArgs(c, args); stop {
			return status
		}
		if err := req.check(); err != nil {
			return c.Usagef("%v", err)
		}
		if err := dns.check(); err != nil {
			return c.Usagef("%v", err)
		}
		opts := &dnsauth.VerifyOptions{Provider: *provider, Nameservers: map[string]string{}}
		var err error
		if opts.SendingIP, err = ipFlag(*ip); err != nil {
			return c.Usagef("%v", err)
		}
		if *wait < 0 {
			return c.Usagef("-wait %v: want a positive duration", *wait)
		}
		for _, na := range nsAddrs {
			host, addr, ok := strings.Cut(na, "=")
			if !ok || host == "" || strings.ContainsAny(host, " \t") || !hostPort(addr) {
				return c.Usagef("-ns-addr %q: want NSHOST=ADDR:PORT, such as ns1.example.com=127.0.0.1:5353", na)
			}
			opts.Nameservers[host] = addr
		}
		p, err := req.plan()
		if err != nil {
			return c.Usagef("%v", err)
		}
		r, err := dns.resolver()
		if err != nil {
			if dns != "" {
				return c.Usagef("%v", err)
			}
			return c.Failf("%s", cli.Msg(err))
		}
		if *wait > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *wait)
			defer cancel()
			opts.Poll = min(maxPoll, *wait/4)
			opts.Progress = func(rep *dnsauth.Report) {
				fmt.Fprintf(stderr, "domainauth: %s\n", progress(rep))
			}
		}
		rep, err := r.Verify(ctx, p, opts)
		if rep == nil {
			// Verify refuses only options it cannot use: a name server
			// of -ns-addr that is not a name, as the plan is checked.
			return c.Usagef("-ns-addr: %s", strings.TrimPrefix(cli.Msg(err), "verify: Nameservers: "))
		}
		if werr := rep.WriteLines(stdout); werr != nil {
			return c.Failf("%v", werr)
		}
		switch {
		case rep.OK():
			return cli.OK
		case errors.Is(err, context.DeadlineExceeded):
			return c.Failf("-wait %v is up: not everything is ok after round %d", *wait, rep.Round)
		}
		return cli.Fail
	}}
}

// progress sums up one round of verify -wait: how many records are ok,
// which are not, and the end-to-end checks.
func progress(rep *dnsauth.Report) string {
	ok := 0
	var bad []string
	for _, r := range rep.Records {
		if r.Status == dnsauth.RecordOK {
			ok++
			continue
		}
		bad = append(bad, fmt.Sprintf("%s %s %s", r.Status, r.Record.Name, r.Record.Type))
	}
	s := fmt.Sprintf("round %d: %d of %d records ok", rep.Round, ok, len(rep.Records))
	if len(bad) > 0 {
		s += " (" + strings.Join(bad, ", ") + ")"
	}
	spf := string(rep.SPF.Status)
	if rep.SPF.Skipped {
		spf = "skipped"
	}
	var dkim []string
	for _, k := range rep.DKIM {
		dkim = append(dkim, k.Selector+" "+string(k.Status))
	}
	s += fmt.Sprintf("; spf %s, dkim %s, dmarc %s", spf, strings.Join(dkim, " "), rep.DMARC.Status)
	if rep.OK() {
		s += "; all ok"
	}
	return s
}
