package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/relay"
)

// apikeyCommands are the commands of "smarthost apikey", which manage the
// relay's key file; a running relay sees each change at its next AUTH.
var apikeyCommands = []subcommand{
	{"create", apikeyCreate},
	{"list", apikeyList},
	{"revoke", apikeyRevoke},
}

// command is one command with its flags, and what runs once they are
// parsed; args are the arguments left after the flags.
type command struct {
	*cli.Command
	run func(ctx context.Context, args []string) int
}

// subcommand is one command of a group such as "smarthost apikey".
type subcommand struct {
	name string
	make func(stdout, stderr io.Writer) *command
}

func apikey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "apikey", apikeyCommands, args, stdout, stderr)
}

// dispatch runs the command of group named by args[0], its flags and
// arguments from the rest; -h prints the help of every command.
func dispatch(ctx context.Context, group string, cmds []subcommand, args []string, stdout, stderr io.Writer) int {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	top := cli.New("smarthost", "smarthost "+group+" "+strings.Join(names, "|")+" [FLAGS]", stdout, stderr)
	if len(args) == 0 {
		return top.Usagef("%s: no command: want %s", group, want)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		for i, c := range cmds {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			c.make(stdout, stderr).Help()
		}
		return cli.OK
	}
	for _, c := range cmds {
		if c.name == args[0] {
			cmd := c.make(stdout, stderr)
			rest, status, stop := cmd.ParseInterleaved(args[1:])
			if stop {
				return status
			}
			return cmd.run(ctx, rest)
		}
	}
	return top.Usagef("%s: unknown command %q: want %s", group, args[0], want)
}

// keyFileFlags are the flags that name the key file: -keys, or the file
// of -config (its keys, or data), else the default under smarthost-data;
// or the fleet's bucket in NATS, with -queue or the queue of -config.
type keyFileFlags struct {
	keys, config string
	nats         fleetFlags
}

func (k *keyFileFlags) register(c *cli.Command) {
	c.Flags.StringVar(&k.keys, "keys", "", "the API key `FILE` (default: that of -config, else smarthost-data/"+keysName+")")
	c.Flags.StringVar(&k.config, "config", "", "take the key file, or -queue, from the relay's configuration `FILE` (YAML)")
	k.nats.register(c)
}

// path returns the key file's path, and the flag that named it.
func (k *keyFileFlags) path() (path, flagName string, err error) {
	if k.keys != "" {
		return k.keys, "-keys", nil
	}
	if k.config == "" {
		return defaultConfig().withDefaults().Keys, "-keys", nil
	}
	cfg, err := loadConfig(k.config)
	if err != nil {
		return "", "", fmt.Errorf("-config: %v", err)
	}
	return cfg.withDefaults().Keys, "-config " + k.config + ": keys", nil
}

// open opens the key file, or the fleet's bucket; only create makes a
// key file that does not exist.
func (k *keyFileFlags) open(ctx context.Context, c *cli.Command, create bool) (keyStore, int, bool) {
	ns, status, stop := k.nats.settings(c, k.config, "-keys", k.keys != "")
	switch {
	case stop:
		return nil, status, true
	case ns != nil:
		st, err := ns.open(ctx, nil, true, false)
		if err != nil {
			return nil, c.Failf("%s", cli.Msg(err)), true
		}
		return natsKeys{st.keys, st}, 0, false
	}
	path, flagName, err := k.path()
	if err != nil {
		return nil, c.Usagef("%v", err), true
	}
	if !create && !fileExists(path) {
		return nil, c.Usagef("%s: %s: no such file (apikey create makes it)", flagName, path), true
	}
	if create {
		// The data directory of a relay not yet started, as the relay
		// itself would make it.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, c.Usagef("%s: %v", flagName, err), true
		}
	}
	kf, err := relay.OpenKeyFile(ctx, path, nil)
	if err != nil {
		return nil, c.Usagef("%s: %s", flagName, cli.Msg(err)), true
	}
	return kf, 0, false
}

func apikeyCreate(stdout, stderr io.Writer) *command {
	c := cli.New("smarthost", "smarthost apikey create [-keys FILE | -config FILE | -queue URL] -name NAME [-scopes mail.send] -domains DOMAIN[,DOMAIN...]", stdout, stderr)
	c.Doc = `Creates an API key in the key file (made when it does not exist), and prints
what it may do, then the key alone on the last line: the only time it is
shown, since the file keeps only its hash. Clients authenticate with the
user "apikey" and the key as the password.`
	c.Stdin = "nothing"
	c.Exit0 = "when the key is created"
	c.Exit1 = "when it cannot be: a key of that name exists, or the file cannot be written"
	var kf keyFileFlags
	kf.register(c)
	name := c.Flags.String("name", "", "the key's `NAME`, unique in the file (required)")
	scopes := c.Flags.String("scopes", relay.ScopeSend, "what the key may do, `SCOPE[,SCOPE...]`")
	domains := c.Flags.String("domains", "", "the sender domains the key may use in MAIL FROM and From, `DOMAIN[,DOMAIN...]`; *.DOMAIN for its subdomains (required)")
	return &command{c, func(ctx context.Context, args []string) int {
		if status, stop := noArgs(c, args); stop {
			return status
		}
		switch {
		case *name == "":
			return c.Usagef("-name is required")
		case *domains == "":
			return c.Usagef("-domains is required")
		case len(*name) > relay.MaxKeyName || !utf8.ValidString(*name) || strings.TrimSpace(*name) != *name ||
			strings.ContainsFunc(*name, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) }):
			return c.Usagef("-name %q: want at most %d octets of UTF-8, no control character, no space at either end", *name, relay.MaxKeyName)
		}
		sc, ds := splitList(*scopes), splitList(*domains)
		for _, s := range sc {
			if s != relay.ScopeSend {
				return c.Usagef("-scopes %q: unknown scope %q: want %s", *scopes, s, relay.ScopeSend)
			}
		}
		for _, d := range ds {
			if err := checkDomain(strings.TrimPrefix(d, "*.")); err != nil {
				return c.Usagef("-domains %q: %q is not a domain name", *domains, d)
			}
		}
		keys, status, stop := kf.open(ctx, c, true)
		if stop {
			return status
		}
		defer keys.Close()
		key, err := keys.Create(ctx, *name, sc, ds)
		if err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		printKey(stdout, *name, sc, ds, key)
		return cli.OK
	}}
}

// printKey prints a new key: what it may do, then the key alone on the
// last line.
func printKey(w io.Writer, name string, scopes, domains []string, key string) {
	fmt.Fprintf(w, "API key %q, scopes %s, sender domains %s; user %q, and the key as the password.\n",
		name, strings.Join(scopes, ","), strings.Join(domains, ","), relay.KeyUser)
	fmt.Fprintf(w, "It is shown only now, keep it:\n%s\n", key)
}

func apikeyList(stdout, stderr io.Writer) *command {
	c := cli.New("smarthost", "smarthost apikey list [-keys FILE | -config FILE | -queue URL]", stdout, stderr)
	c.Doc = `Lists the API keys of the key file, one line each, sorted by name:
"<name> <id> <created> <scopes> <domains>", separated by tabs, the
scopes and domains comma-separated, the time in RFC 3339. The keys
themselves are not in the file.`
	c.Stdin = "nothing"
	c.Exit0 = "when the keys are listed"
	c.Exit1 = "when the key file cannot be read"
	var kf keyFileFlags
	kf.register(c)
	return &command{c, func(ctx context.Context, args []string) int {
		if status, stop := noArgs(c, args); stop {
			return status
		}
		keys, status, stop := kf.open(ctx, c, false)
		if stop {
			return status
		}
		defer keys.Close()
		list, err := keys.List(ctx)
		if err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		for _, k := range list {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", k.Name, k.ID, k.Created.UTC().Format(time.RFC3339),
				strings.Join(k.Scopes, ","), strings.Join(k.Domains, ","))
		}
		return cli.OK
	}}
}

func apikeyRevoke(stdout, stderr io.Writer) *command {
	c := cli.New("smarthost", "smarthost apikey revoke [-keys FILE | -config FILE | -queue URL] NAME", stdout, stderr)
	c.Doc = `Revokes the API key NAME: it is removed from the key file, and a running
relay refuses it from its next AUTH on. Prints "revoked NAME".`
	c.Stdin = "nothing"
	c.Exit0 = "when the key is revoked"
	c.Exit1 = "when the file has no key of that name, or cannot be written"
	var kf keyFileFlags
	kf.register(c)
	return &command{c, func(ctx context.Context, args []string) int {
		if len(args) != 1 {
			return c.Usagef("revoke takes one NAME")
		}
		keys, status, stop := kf.open(ctx, c, false)
		if stop {
			return status
		}
		defer keys.Close()
		if err := keys.Revoke(ctx, args[0]); err != nil {
			if errors.Is(err, relay.ErrKeyNotFound) {
				return c.Failf("no key named %q", args[0])
			}
			return c.Failf("%s", cli.Msg(err))
		}
		fmt.Fprintf(stdout, "revoked %s\n", args[0])
		return cli.OK
	}}
}

// noArgs refuses arguments for the commands that take none.
func noArgs(c *cli.Command, args []string) (status int, stop bool) {
	if len(args) > 0 {
		return c.Usagef("unexpected argument %q", args[0]), true
	}
	return 0, false
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
