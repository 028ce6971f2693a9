// Command dmarc looks up DMARC policies, evaluates messages and reads
// aggregate reports:
//
//	go run ./examples/dmarc lookup [-zone FILE | -dns HOST:PORT] [-rules 9989|7489] DOMAIN
//	go run ./examples/dmarc evaluate [-zone FILE | -dns HOST:PORT] [-rules 9989|7489] \
//		-from ADDR [-spf RESULT -spf-domain D] [-dkim D:RESULT[,D:RESULT]] [-ip IP]
//	go run ./examples/dmarc report FILE...
//
// lookup prints the record that applies to DOMAIN and where it was found.
// evaluate prints "dmarc=<status> policy=<disposition>" first, then the
// details. report reads aggregate reports (XML, gzip, zip or a whole report
// e-mail) and prints a table per source IP and result. -zone reads the DNS
// from a zone file; -dns asks the server at HOST:PORT; without either the
// system resolver is used. None reads standard input.
//
// It follows the conventions of examples/README.md: "dmarc -h" prints
// every command's flags and "dmarc COMMAND -h" one command's; the exit
// status is 0 when lookup finds a record, when evaluate's result is pass,
// and when report reads every file, 1 when it does not, and 2 on a usage
// error (a bad or missing command, flag or argument, a zone or report file
// that cannot be read); an error is one line naming the flag or file.
package main

import (
	"context"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/msgauth"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one command of the program: its flags and help, and what
// runs once they are parsed.
type command struct {
	*cli.Command
	run func(ctx context.Context) int
}

var commands = []struct {
	name string
	make func(stdout, stderr io.Writer) *command
}{
	{"lookup", lookup},
	{"evaluate", evaluate},
	{"report", report},
}

func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	top := cli.New("dmarc", "dmarc lookup|evaluate|report [FLAGS] [ARGS]", stdout, stderr)
	if len(args) == 0 {
		return top.Usagef("no command: want lookup, evaluate or report (dmarc -h for help)")
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
			if status, stop := cmd.Parse(args[1:]); stop {
				return status
			}
			return cmd.run(context.Background())
		}
	}
	return top.Usagef("unknown command %q: want lookup, evaluate or report", args[0])
}

// dnsFlags are the flags of the commands that ask the DNS.
type dnsFlags struct {
	dns   cli.DNS
	rules string
}

func (d *dnsFlags) register(c *cli.Command) {
	d.dns.Register(c.Flags)
	c.Flags.StringVar(&d.rules, "rules", "9989", "policy discovery `RULES`: 9989 (DNS Tree Walk) or 7489 (public suffix list, pct=)")
}

// options checks the flags' values.
func (d *dnsFlags) options() (*dmarc.Options, error) {
	var opts dmarc.Options
	switch d.rules {
	case "9989", "rfc9989":
		opts.Rules = dmarc.RFC9989
	case "7489", "rfc7489":
		opts.Rules = dmarc.RFC7489
	default:
		return nil, fmt.Errorf("-rules %q: want 9989 or 7489", d.rules)
	}
	return &opts, d.dns.Check()
}

// evaluator reads the zone file or makes the resolver; its errors are
// usage errors.
func (d *dnsFlags) evaluator(opts *dmarc.Options) (*dmarc.Evaluator, error) {
	res, err := d.dns.Resolver()
	if err != nil {
		return nil, err
	}
	return dmarc.NewEvaluator(res, opts)
}

func lookup(stdout, stderr io.Writer) *command {
	c := cli.New("dmarc", "dmarc lookup [-zone FILE | -dns HOST:PORT] [-rules 9989|7489] DOMAIN", stdout, stderr)
	c.Doc = `Finds the DMARC record that applies to DOMAIN (RFC 7489 §6.6.3, or the DNS
Tree Walk of RFC 9989) and prints it, where it was found, the organizational
domain and the number of DNS queries, then the record's errors, if any.`
	c.Stdin = "nothing"
	c.Exit0 = "when a record applies"
	c.Exit1 = "when none is found, or the DNS fails"
	var df dnsFlags
	df.register(c)
	return &command{c, func(ctx context.Context) int {
		if c.Flags.NArg() != 1 {
			return c.Usagef("lookup takes one DOMAIN, not %d arguments", c.Flags.NArg())
		}
		opts, err := df.options()
		if err != nil {
			return c.Usagef("%v", err)
		}
		e, err := df.evaluator(opts)
		if err != nil {
			return c.Usagef("%s", cli.Msg(err))
		}
		d, err := e.Lookup(ctx, c.Flags.Arg(0))
		if err != nil {
			fmt.Fprintf(stdout, "domain: %s\nrecord: none (%v)\norganizational domain: %s\nqueries: %d\n", d.AuthorDomain, err, d.OrgDomain, d.Queries)
			return cli.Fail
		}
		fmt.Fprintf(stdout, "domain: %s\nrecord: %s\nfound at: _dmarc.%s\norganizational domain: %s\nqueries: %d\n",
			d.AuthorDomain, d.Record, d.Domain, d.OrgDomain, d.Queries)
		for _, p := range dmarc.Check(d.Record.String()) {
			if p.Severity == dmarc.Error {
				fmt.Fprintf(stdout, "problem: %s\n", p)
			}
		}
		if len(d.Record.Invalid) > 0 {
			fmt.Fprintf(stdout, "ignored invalid tags: %s\n", strings.Join(d.Record.Invalid, ", "))
		}
		return cli.OK
	}}
}

func evaluate(stdout, stderr io.Writer) *command {
	c := cli.New("dmarc", "dmarc evaluate [-zone FILE | -dns HOST:PORT] [-rules 9989|7489] -from ADDR "+
		"[-spf RESULT -spf-domain D] [-dkim D:RESULT[,D:RESULT]] [-ip IP]", stdout, stderr)
	c.Doc = `Evaluates DMARC (RFC 7489, RFC 9989) for a message with the From field -from
and the given SPF and DKIM results, and prints "dmarc=<status>
policy=<disposition>", then the record, the alignment of SPF and DKIM, the
reason of a result other than pass, an Authentication-Results field and the
number of DNS queries.`
	c.Stdin = "nothing"
	c.Exit0 = "when the result is pass"
	c.Exit1 = "for any other result: fail, none, temperror, permerror"
	var df dnsFlags
	df.register(c)
	from := c.Flags.String("from", "", "the From field's value: an `ADDR`, or \"Name <ADDR>\" (required)")
	spfResult := c.Flags.String("spf", "none", "SPF `RESULT`: pass, fail, softfail, neutral, none, temperror, permerror")
	spfDomain := c.Flags.String("spf-domain", "", "the `DOMAIN` SPF checked (MAIL FROM or HELO domain)")
	dkim := c.Flags.String("dkim", "", "DKIM results as `D:RESULT`, comma-separated")
	ip := c.Flags.String("ip", "", "client `IP` address (informational)")
	return &command{c, func(ctx context.Context) int {
		if status, stop := c.NoArgs(); stop {
			return status
		}
		if *from == "" {
			return c.Usagef("-from is required")
		}
		if !validResult(*spfResult) {
			return c.Usagef("-spf %q: not an RFC 8601 result", *spfResult)
		}
		// The results as the entries of an Authentication-Results field:
		// the SPF domain is the domain of smtp.mailfrom.
		results := msgauth.Entries{&authres.SPFResult{Value: authres.ResultValue(strings.ToLower(*spfResult)), From: *spfDomain}}
		if *dkim != "" {
			for _, item := range strings.Split(*dkim, ",") {
				d, res, ok := strings.Cut(strings.TrimSpace(item), ":")
				if !ok || d == "" || !validResult(res) {
					return c.Usagef("-dkim %q: want DOMAIN:RESULT", item)
				}
				results = append(results, &authres.DKIMResult{Value: authres.ResultValue(strings.ToLower(res)), Domain: d})
			}
		}
		if *ip != "" {
			if _, err := netip.ParseAddr(*ip); err != nil {
				return c.Usagef("-ip %q: not an IP address", *ip)
			}
		}
		opts, err := df.options()
		if err != nil {
			return c.Usagef("%v", err)
		}
		e, err := df.evaluator(opts)
		if err != nil {
			return c.Usagef("%s", cli.Msg(err))
		}
		r := e.Evaluate(ctx, mail.Header{"From": {*from}}, results)
		fmt.Fprintf(stdout, "dmarc=%s policy=%s\n", r.Status, r.Disposition)
		fmt.Fprintf(stdout, "author domain: %s\n", orDash(r.AuthorDomain))
		if r.Record != nil {
			fmt.Fprintf(stdout, "record: %s\nfound at: _dmarc.%s\n", r.Record, r.PolicyDomain)
			fmt.Fprintf(stdout, "organizational domain: %s\n", r.OrgDomain)
			fmt.Fprintf(stdout, "applicable policy: %s=%s\n", r.PolicyTag, r.Policy)
		}
		fmt.Fprintf(stdout, "spf alignment: %s%s\n", r.SPF, paren(r.SPFDomain))
		fmt.Fprintf(stdout, "dkim alignment: %s%s\n", r.DKIM, paren(strings.Join(r.DKIMDomains, " ")))
		if r.SampledOut {
			fmt.Fprintln(stdout, "sampled out by pct=: policy applied one level weaker")
		}
		if r.TestMode {
			fmt.Fprintln(stdout, "test mode t=y: policy applied one level weaker")
		}
		if r.Err != nil {
			fmt.Fprintf(stdout, "reason: %v\n", r.Err)
		}
		fmt.Fprintf(stdout, "Authentication-Results: %s\n", msgauth.Format("localhost", r))
		fmt.Fprintf(stdout, "dns queries: %d\n", r.Queries)
		if r.Status != dmarc.Pass {
			return cli.Fail
		}
		return cli.OK
	}}
}

func validResult(s string) bool {
	switch strings.ToLower(s) {
	case "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy":
		return true
	}
	return false
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func report(stdout, stderr io.Writer) *command {
	c := cli.New("dmarc", "dmarc report FILE...", stdout, stderr)
	c.Doc = `Reads DMARC aggregate reports (RFC 7489 appendix C; XML, gzip, zip
or a whole report e-mail) and prints a summary: the reporters, the messages
and how many passed DMARC, and a table per source IP and result.`
	c.Stdin = "nothing"
	c.Exit0 = "when every FILE is a report"
	c.Exit1 = "when a FILE is not (the others are still summarized)"
	return &command{c, func(ctx context.Context) int {
		if c.Flags.NArg() == 0 {
			return c.Usagef("report takes one or more FILEs")
		}
		// Every file is opened before any is read.
		var files []*os.File
		defer func() {
			for _, f := range files {
				f.Close()
			}
		}()
		for _, name := range c.Flags.Args() {
			f, err := os.Open(name)
			if err != nil {
				return c.Usagef("%v", err)
			}
			files = append(files, f)
		}
		var fbs []*dmarc.Feedback
		var bad []string
		for _, f := range files {
			fb, err := dmarc.ParseReport(f, nil)
			if err != nil {
				bad = append(bad, f.Name()+": "+cli.Msg(err))
				continue
			}
			fbs = append(fbs, fb)
		}
		if len(fbs) > 0 {
			if err := dmarc.Summarize(fbs...).WriteText(stdout); err != nil {
				return c.Failf("%v", err)
			}
		}
		if len(bad) > 0 {
			return c.Failf("%s", strings.Join(bad, "; "))
		}
		return cli.OK
	}}
}
