package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

// formatFlag is the -format flag of plan and revoke.
type formatFlag string

func (f *formatFlag) register(c *cli.Command) {
	c.Flags.StringVar((*string)(f), "format", "zone", "output `FORMAT`: zone (zone-file text), json or table")
}

func (f formatFlag) check() error {
	switch f {
	case "zone", "json", "table":
		return nil
	}
	return fmt.Errorf("-format %q: want zone, json or table", string(f))
}

func planCommand(stdout, stderr io.Writer) *command {
	c := cli.New("domainauth", wrap("domainauth plan "+requestUsage+" [-format zone|json|table]"), stdout, stderr)
	c.Doc = `Plans the DNS records that authenticate -domain for a smart host and prints
them. In the zone format (the default), the owner's records come first as
zone-file text (RFC 1035 §5), a record that replaces one already published
after a comment with the old value; then, when the provider has records to
serve (the targets of the CNAMEs, the delegated subdomain's zone), the
provider's; then the plan's warnings as comments. The json format is the
whole plan (dnsauth.Plan, stable field names), the table one for a person.`
	c.Stdin = "nothing"
	c.Exit0 = "when the records are planned and printed"
	c.Exit1 = "when they cannot be printed"
	var req request
	req.register(c.Flags)
	var format formatFlag
	format.register(c)
	return &command{c, func(_ context.Context, args []string) int {
		if status, stop := noArgs(c, args); stop {
			return status
		}
		if err := req.check(); err != nil {
			return c.Usagef("%v", err)
		}
		if err := format.check(); err != nil {
			return c.Usagef("%v", err)
		}
		p, err := req.plan()
		if err != nil {
			return c.Usagef("%v", err)
		}
		if err := writePlan(stdout, p, format); err != nil {
			return c.Failf("%v", err)
		}
		return cli.OK
	}}
}

func writePlan(w io.Writer, p *dnsauth.Plan, format formatFlag) error {
	switch format {
	case "json":
		return writeJSON(w, p)
	case "table":
		return p.WriteTable(w)
	}
	var b strings.Builder
	b.WriteString(p.Zone())
	if len(p.ProviderRecords) > 0 {
		b.WriteString("\n" + p.ProviderZone())
	}
	if len(p.Warnings) > 0 {
		b.WriteString("\n")
		for _, x := range p.Warnings {
			b.WriteString("; warning: " + x + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func revokeCommand(stdout, stderr io.Writer) *command {
	c := cli.New("domainauth", wrap("domainauth revoke "+requestUsage+" [-format zone|json|table]"), stdout, stderr)
	c.Doc = `Prints the changes that withdraw the provider's right to sign and bounce for
-domain, most urgent first: delete the DKIM records (which stops new
signatures from verifying), then the return path or the delegation, then take
the provider's include out of the SPF record. In the zone format (the
default) each record to delete is a comment, "; delete RECORD", and each
record that replaces another follows a comment with the old value, so that
the text holds the records to publish. The json format is {"domain",
"changes"} with the dnsauth.Change field names; the table is for a person.
"push -revoke" applies these changes.`
	c.Stdin = "nothing"
	c.Exit0 = "when the changes are printed"
	c.Exit1 = "when they cannot be printed"
	var req request
	req.register(c.Flags)
	var format formatFlag
	format.register(c)
	return &command{c, func(_ context.Context, args []string) int {
		if status, stop := noArgs(c, args); stop {
			return status
		}
		if err := req.check(); err != nil {
			return c.Usagef("%v", err)
		}
		if err := format.check(); err != nil {
			return c.Usagef("%v", err)
		}
		p, err := req.plan()
		if err != nil {
			return c.Usagef("%v", err)
		}
		if err := writeChanges(stdout, p, p.Revoke(), format); err != nil {
			return c.Failf("%v", err)
		}
		return cli.OK
	}}
}

// writeChanges writes the changes that withdraw the provider from the
// plan's domain.
func writeChanges(w io.Writer, p *dnsauth.Plan, changes []dnsauth.Change, format formatFlag) error {
	switch format {
	case "json":
		return writeJSON(w, struct {
			Domain  string           `json:"domain"`
			Changes []dnsauth.Change `json:"changes"`
		}{p.Request.Domain, changes})
	case "table":
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "%s (%s): withdraw the provider, most urgent first\n", strings.TrimSuffix(p.Request.Domain, "."), p.Request.Mode)
		fmt.Fprintln(tw, "ACTION\tNAME\tTYPE\tVALUE\tPURPOSE")
		for _, ch := range changes {
			r := ch.Record
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.Action, r.Name, r.Type, value(r.Type, r.Value), r.Purpose)
			if r.Replaces != "" {
				fmt.Fprintf(tw, "\t\t\t  replaces %s\n", value(r.Type, r.Replaces))
			}
		}
		return tw.Flush()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; withdraw the provider from %s (%s), most urgent first\n", strings.TrimSuffix(p.Request.Domain, "."), p.Request.Mode)
	for _, ch := range changes {
		switch {
		case ch.Action == dnsauth.Delete:
			b.WriteString("; delete " + ch.Record.String() + "\n")
		case ch.Record.Replaces != "":
			b.WriteString("; replaces " + dnsauth.QuoteTXT(ch.Record.Replaces) + "\n" + ch.Record.String() + "\n")
		default:
			b.WriteString(ch.Record.String() + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// value is a record's value as the tables of dnsauth write it: TXT in
// double quotes.
func value(typ, v string) string {
	if typ == "TXT" {
		return `"` + v + `"`
	}
	return v
}
