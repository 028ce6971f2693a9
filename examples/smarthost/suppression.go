package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/relay"
)

// suppressionCommands are the commands of "smarthost suppression", which
// manage the relay's suppression list; a running relay sees each change
// at its next RCPT.
var suppressionCommands = []subcommand{
	{"list", suppressionList},
	{"add", suppressionAdd},
	{"remove", suppressionRemove},
}

func suppression(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "suppression", suppressionCommands, args, stdout, stderr)
}

// suppressionFileFlags are the flags that name the suppression file:
// -suppressions, or the file of -config (its suppressions, or data), else
// the default under smarthost-data.
type suppressionFileFlags struct {
	file, config string
	nats         fleetFlags
}

func (f *suppressionFileFlags) register(c *cli.Command) {
	c.Flags.StringVar(&f.file, "suppressions", "", "the suppression list `FILE` (default: that of -config, else smarthost-data/"+suppressName+")")
	c.Flags.StringVar(&f.config, "config", "", "take the suppression file, or -queue, from the relay's configuration `FILE` (YAML)")
	f.nats.register(c)
}

// open opens the suppression file, or the fleet's bucket; only add makes
// a file that does not exist.
func (f *suppressionFileFlags) open(ctx context.Context, c *cli.Command, create bool) (suppressionStore, int, bool) {
	ns, status, stop := f.nats.settings(c, f.config, "-suppressions", f.file != "")
	switch {
	case stop:
		return nil, status, true
	case ns != nil:
		st, err := ns.open(ctx, nil, false, true)
		if err != nil {
			return nil, c.Failf("%s", cli.Msg(err)), true
		}
		return natsSuppressions{st.suppressions, st}, 0, false
	}
	path, flagName := f.file, "-suppressions"
	switch {
	case path != "":
	case f.config == "":
		path = defaultConfig().withDefaults().Suppressions
	default:
		cfg, err := loadConfig(f.config)
		if err != nil {
			return nil, c.Usagef("-config: %v", err), true
		}
		path, flagName = cfg.withDefaults().Suppressions, "-config "+f.config+": suppressions"
	}
	if !create && !fileExists(path) {
		return nil, c.Usagef("%s: %s: no such file (suppression add, or the relay, makes it)", flagName, path), true
	}
	sf, err := relay.OpenSuppressionFile(ctx, path, nil)
	if err != nil {
		return nil, c.Usagef("%s: %s", flagName, cli.Msg(err)), true
	}
	return sf, 0, false
}

// checkRecipient checks an address the commands take: local-part@domain,
// the domain a host name.
func checkRecipient(c *cli.Command, args []string, what string) (string, int, bool) {
	if len(args) != 1 {
		return "", c.Usagef("%s takes one RCPT", what), true
	}
	rcpt := args[0]
	at := strings.LastIndexByte(rcpt, '@')
	if at <= 0 || checkDomain(rcpt[at+1:]) != nil || strings.ContainsAny(rcpt, " <>\t\r\n") {
		return "", c.Usagef("%q is not an address, local-part@domain", rcpt), true
	}
	return rcpt, 0, false
}

func suppressionList(stdout, stderr io.Writer) *command {
	c := cli.New("smarthost", "smarthost suppression list [-suppressions FILE | -config FILE | -queue URL] [-account NAME]", stdout, stderr)
	c.Doc = `Lists the suppressions, oldest first, one line each:
"<account> <recipient> <created> <source> <reason>", separated by tabs, the
time in RFC 3339; the source is bounce, spamreport or manual.`
	c.Stdin = "nothing"
	c.Exit0 = "when the suppressions are listed"
	c.Exit1 = "when the suppression file cannot be read"
	var sf suppressionFileFlags
	sf.register(c)
	account := c.Flags.String("account", "", "only those of the account (API key) `NAME`")
	return &command{c, func(ctx context.Context, args []string) int {
		if status, stop := noArgs(c, args); stop {
			return status
		}
		list, status, stop := sf.open(ctx, c, false)
		if stop {
			return status
		}
		defer list.Close()
		l, err := list.List(ctx, *account)
		if err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		for _, s := range l {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", s.Account, s.Recipient, s.Created.UTC().Format(time.RFC3339),
				s.Source, strings.ReplaceAll(s.Reason, "\t", " "))
		}
		return cli.OK
	}}
}

func suppressionAdd(stdout, stderr io.Writer) *command {
	c := cli.New("smarthost", "smarthost suppression add [-suppressions FILE | -config FILE | -queue URL] -account NAME [-reason TEXT] RCPT", stdout, stderr)
	c.Doc = `Suppresses RCPT for the account NAME (made when the file does not exist): a
running relay refuses it, or drops it, at the next RCPT of the account.
The local part keeps its case; the domain does not. Prints "added NAME
RCPT".`
	c.Stdin = "nothing"
	c.Exit0 = "when the suppression is added (or replaced)"
	c.Exit1 = "when the suppression file cannot be written"
	var sf suppressionFileFlags
	sf.register(c)
	account := c.Flags.String("account", "", "the account (API key) `NAME` (required)")
	reason := c.Flags.String("reason", "", "why, in a `TEXT` shown in the relay's reply")
	return &command{c, func(ctx context.Context, args []string) int {
		rcpt, status, stop := checkRecipient(c, args, "add")
		if stop {
			return status
		}
		if *account == "" {
			return c.Usagef("-account is required")
		}
		list, status, stop := sf.open(ctx, c, true)
		if stop {
			return status
		}
		defer list.Close()
		err := list.Add(ctx, relay.Suppression{Account: *account, Recipient: rcpt, Source: relay.SuppressedByHand, Reason: *reason})
		if err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		fmt.Fprintf(stdout, "added %s %s\n", *account, rcpt)
		return cli.OK
	}}
}

func suppressionRemove(stdout, stderr io.Writer) *command {
	c := cli.New("smarthost", "smarthost suppression remove [-suppressions FILE | -config FILE | -queue URL] -account NAME RCPT", stdout, stderr)
	c.Doc = `Removes the suppression of RCPT for the account NAME: a running relay takes
the recipient again from its next RCPT. Prints "removed NAME RCPT".`
	c.Stdin = "nothing"
	c.Exit0 = "when the suppression is removed"
	c.Exit1 = "when there is no such suppression, or the file cannot be written"
	var sf suppressionFileFlags
	sf.register(c)
	account := c.Flags.String("account", "", "the account (API key) `NAME` (required)")
	return &command{c, func(ctx context.Context, args []string) int {
		rcpt, status, stop := checkRecipient(c, args, "remove")
		if stop {
			return status
		}
		if *account == "" {
			return c.Usagef("-account is required")
		}
		list, status, stop := sf.open(ctx, c, false)
		if stop {
			return status
		}
		defer list.Close()
		s, err := list.Suppressed(ctx, *account, rcpt)
		if err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		if s == nil {
			return c.Failf("no suppression of %s for %q", rcpt, *account)
		}
		if err := list.Remove(ctx, *account, rcpt); err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		fmt.Fprintf(stdout, "removed %s %s\n", *account, rcpt)
		return cli.OK
	}}
}
