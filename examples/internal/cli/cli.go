// Package cli is the command-line convention of the example programs,
// written out in examples/README.md:
//
//   - -h (or -help) prints the usage line, what the program does and reads
//     from standard input, every flag with its meaning and the exit
//     statuses, on standard output, and exits 0;
//   - the exit status is 0 when the check passes or the job is done, 1 when
//     the check does not pass or the job fails, 2 on a usage error: a bad
//     or missing flag or argument, or a file named on the command line
//     that cannot be read or used;
//   - an error is one line on standard error, "program: message", where
//     the message names the flag, argument or file at fault, and a library
//     error is printed without its own "pkg: " prefix;
//   - flags are checked first, then the files they name, then standard
//     input; no work is done before all of them are.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses.
const (
	OK    = 0 // the check passes, or the job is done
	Fail  = 1 // the check does not pass, or the job fails
	Usage = 2 // a bad or missing flag or argument, or a file that cannot be used
)

// Command is one program, or one command of a program, with its flags.
type Command struct {
	Name  string // the program name, the prefix of every error line
	Usage string // the usage line, without "usage: "
	Doc   string // what it does and prints, in a few lines
	Stdin string // what it reads from standard input, or "nothing"
	Exit0 string // when it exits 0: "when every signature passes"
	Exit1 string // when it exits 1: "otherwise"
	Flags *flag.FlagSet

	stdout, stderr io.Writer
}

// New returns a Command with an empty flag set that prints nothing of its
// own: Parse reports for it.
func New(name, usage string, stdout, stderr io.Writer) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &Command{Name: name, Usage: usage, Flags: fs, stdout: stdout, stderr: stderr}
}

// Parse parses the flags in args. On -h or -help it prints the help and
// returns OK and true; on a flag error it prints the error line and
// returns Usage and true; otherwise it returns false, and the caller goes
// on.
func (c *Command) Parse(args []string) (status int, stop bool) {
	err := c.Flags.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		c.Help()
		return OK, true
	}
	return c.Usagef("%v", err), true
}

// ParseInterleaved is Parse for flags that may also follow the arguments
// ("lint example.com -dns 127.0.0.1:53"): it returns the arguments, in
// order. After "--" everything is an argument.
func (c *Command) ParseInterleaved(args []string) (rest []string, status int, stop bool) {
	for {
		if status, stop := c.Parse(args); stop {
			return nil, status, true
		}
		left := c.Flags.Args()
		if len(left) == 0 {
			return rest, 0, false
		}
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return append(rest, left...), 0, false
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

// Help prints the help text on standard output.
func (c *Command) Help() {
	w := c.stdout
	fmt.Fprintf(w, "usage: %s\n\n%s\n\nStandard input: %s\n\n", c.Usage, strings.TrimSpace(c.Doc), c.Stdin)
	n := 0
	c.Flags.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		fmt.Fprint(w, "Flags: none\n")
	} else {
		fmt.Fprint(w, "Flags:\n")
		c.Flags.SetOutput(w)
		c.Flags.PrintDefaults()
		c.Flags.SetOutput(io.Discard)
	}
	fmt.Fprintf(w, "\nExit status:\n  0  %s\n  1  %s\n  2  on a usage error: a bad or missing flag or argument, or a file named\n     on the command line that cannot be read or used\n", c.Exit0, c.Exit1)
}

// Usagef prints "name: message" on standard error and returns Usage.
func (c *Command) Usagef(format string, a ...any) int {
	c.errorf(format, a...)
	return Usage
}

// Failf prints "name: message" on standard error and returns Fail.
func (c *Command) Failf(format string, a ...any) int {
	c.errorf(format, a...)
	return Fail
}

func (c *Command) errorf(format string, a ...any) {
	msg := strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", " ")
	fmt.Fprintf(c.stderr, "%s: %s\n", c.Name, msg)
}

// NoArgs returns a usage error naming the first argument left after the
// flags, or false when there is none.
func (c *Command) NoArgs() (status int, stop bool) {
	if c.Flags.NArg() > 0 {
		return c.Usagef("unexpected argument %q", c.Flags.Arg(0)), true
	}
	return 0, false
}

// libraries are the packages whose errors begin with their name.
var libraries = []string{"dkim", "dmarc", "dnsauth", "dnstest", "msgauth", "natsqueue", "relay", "sasl", "spf", "srs"}

// Msg returns the text of err without the "pkg: " prefixes that the errors
// of this module's packages begin with (one package's error may wrap
// another's, "relay: sasl: ..."), so that the program name is the one
// prefix of an error line.
func Msg(err error) string {
	s := err.Error()
	for stripped := true; stripped; {
		stripped = false
		for _, p := range libraries {
			if rest, ok := strings.CutPrefix(s, p+": "); ok {
				s, stripped = rest, true
			}
		}
	}
	return s
}
