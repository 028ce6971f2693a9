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
// system resolver is used.
//
// The exit status is 0 on success, 1 when a lookup finds no record or a
// report cannot be read, and 2 on usage errors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  dmarc lookup [-zone FILE | -dns HOST:PORT] [-rules 9989|7489] DOMAIN
  dmarc evaluate [-zone FILE | -dns HOST:PORT] [-rules 9989|7489] -from ADDR [-spf RESULT -spf-domain D] [-dkim D:RESULT[,D:RESULT]] [-ip IP]
  dmarc report FILE...`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	ctx := context.Background()
	switch args[0] {
	case "lookup":
		return lookup(ctx, args[1:], stdout, stderr)
	case "evaluate":
		return evaluate(ctx, args[1:], stdout, stderr)
	case "report":
		return report(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "dmarc: unknown command %q\n%s\n", args[0], usage)
	return 2
}

// dnsFlags are the flags of the commands that ask the DNS.
type dnsFlags struct {
	zone, server, rules string
}

func (d *dnsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.zone, "zone", "", "answer DNS queries from this zone file")
	fs.StringVar(&d.server, "dns", "", "ask the DNS server at HOST:PORT")
	fs.StringVar(&d.rules, "rules", "9989", "9989 (DNS Tree Walk) or 7489 (public suffix list, pct=)")
}

// usageError is reported with exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func (d *dnsFlags) evaluator() (*dmarc.Evaluator, error) {
	var opts dmarc.Options
	switch d.rules {
	case "9989", "rfc9989":
		opts.Rules = dmarc.RFC9989
	case "7489", "rfc7489":
		opts.Rules = dmarc.RFC7489
	default:
		return nil, usageError{fmt.Sprintf("-rules %q: want 9989 or 7489", d.rules)}
	}
	var res dmarc.Resolver
	switch {
	case d.zone != "" && d.server != "":
		return nil, usageError{"-zone and -dns are exclusive"}
	case d.zone != "":
		z, err := dnstest.ReadZoneFile(d.zone)
		if err != nil {
			return nil, err
		}
		res = z
	case d.server != "":
		if _, _, err := net.SplitHostPort(d.server); err != nil {
			return nil, usageError{fmt.Sprintf("-dns %q: want HOST:PORT", d.server)}
		}
		r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{d.server}})
		if err != nil {
			return nil, err
		}
		res = r
	default:
		res = net.DefaultResolver
	}
	return dmarc.NewEvaluator(res, &opts)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("dmarc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "dmarc:", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	return 1
}

func lookup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lookup", stderr)
	var df dnsFlags
	df.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		return fail(stderr, usageError{"lookup takes one DOMAIN"})
	}
	e, err := df.evaluator()
	if err != nil {
		return fail(stderr, err)
	}
	d, err := e.Lookup(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stdout, "domain: %s\nrecord: none (%v)\norganizational domain: %s\nqueries: %d\n", d.AuthorDomain, err, d.OrgDomain, d.Queries)
		if errors.Is(err, dmarc.ErrDNS) {
			return 1
		}
		return 1
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
	return 0
}

func evaluate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("evaluate", stderr)
	var df dnsFlags
	df.register(fs)
	from := fs.String("from", "", "the From header field value (required)")
	spfResult := fs.String("spf", "none", "SPF result: pass, fail, softfail, neutral, none, temperror, permerror")
	spfDomain := fs.String("spf-domain", "", "the domain SPF checked (MAIL FROM or HELO domain)")
	dkim := fs.String("dkim", "", "DKIM results as D:RESULT, comma-separated")
	ip := fs.String("ip", "", "client IP address (informational)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		return fail(stderr, usageError{"evaluate takes no arguments, only flags"})
	}
	if *from == "" {
		return fail(stderr, usageError{"-from is required"})
	}
	if !validResult(*spfResult) {
		return fail(stderr, usageError{fmt.Sprintf("-spf %q is not an RFC 8601 result", *spfResult)})
	}
	// The results as the entries of an Authentication-Results field: the
	// SPF domain is the domain of smtp.mailfrom.
	results := msgauth.Entries{&authres.SPFResult{Value: authres.ResultValue(strings.ToLower(*spfResult)), From: *spfDomain}}
	if *dkim != "" {
		for _, item := range strings.Split(*dkim, ",") {
			d, res, ok := strings.Cut(strings.TrimSpace(item), ":")
			if !ok || d == "" || !validResult(res) {
				return fail(stderr, usageError{fmt.Sprintf("-dkim %q: want DOMAIN:RESULT", item)})
			}
			results = append(results, &authres.DKIMResult{Value: authres.ResultValue(strings.ToLower(res)), Domain: d})
		}
	}
	if *ip != "" {
		if _, err := netip.ParseAddr(*ip); err != nil {
			return fail(stderr, usageError{fmt.Sprintf("-ip %q: %v", *ip, err)})
		}
	}
	e, err := df.evaluator()
	if err != nil {
		return fail(stderr, err)
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
	return 0
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

func report(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		return fail(stderr, usageError{"report takes one or more FILEs"})
	}
	var fbs []*dmarc.Feedback
	status := 0
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "dmarc:", err)
			status = 1
			continue
		}
		fb, err := dmarc.ParseReport(f, nil)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "dmarc: %s: %v\n", name, err)
			status = 1
			continue
		}
		fbs = append(fbs, fb)
	}
	if len(fbs) > 0 {
		if err := dmarc.Summarize(fbs...).WriteText(stdout); err != nil {
			fmt.Fprintln(stderr, "dmarc:", err)
			return 1
		}
	}
	return status
}
