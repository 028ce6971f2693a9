// Command send submits the message on standard input to a smart host, and
// prints each recipient's outcome:
//
//	go run ./examples/send -server HOST:PORT -tls starttls|implicit|none \
//		[-ca FILE] [-user USER] -from ADDR -to ADDR[,ADDR...] [-auth MECH] < message
//
// -tls is how the connection is secured: starttls (RFC 3207, required:
// a server that does not offer it gets nothing; port 587 or 2525),
// implicit (RFC 8314 §3, port 465) or none (plaintext, for a relay on a
// trusted network). The server's certificate is verified with the
// system's roots, or with the CA certificates of -ca (PEM).
//
// With -user the client authenticates (RFC 4954) as USER with the
// password, or the API key, in the environment variable
// SMARTHOST_PASSWORD: never a flag, which every user of the machine can
// read in the process list. A provider that authenticates with an API key
// takes the user "apikey" and the key as the password. -auth chooses the
// SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN);
// without it, the strongest both sides have. Credentials go only over
// TLS, or with -tls none to a relay on a loopback address.
//
// -from "<>" is the null sender of bounces. Addresses that are not ASCII
// go with SMTPUTF8 (RFC 6531), and a message with 8-bit octets with
// BODY=8BITMIME (RFC 6152). The message may have bare LF line ends: they
// are sent as CRLF.
//
// It prints one line per recipient, "<addr> <code> <enhanced> <text>":
// the server's reply to that recipient (to RCPT TO when it refused it,
// else to the end of the data), "-" for an enhanced status code the server
// did not give. When the whole transaction failed on a reply (to AUTH, to
// MAIL FROM, or one the client gives for the server, such as 552 for a
// message over its SIZE), every recipient has that reply; a recipient
// without one (the connection failed) has no line. The error line says
// why.
//
// It follows the conventions of examples/README.md: -h prints every flag;
// the exit status is 0 when every recipient was accepted, 1 when one was
// refused or the send failed, and 2 on a usage error (a bad or missing
// flag, a CA file that cannot be read or used, -user without
// SMARTHOST_PASSWORD); an error is one line naming the flag, the file or
// standard input. The password is never printed.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
)

// passwordVar is the environment variable of the password or API key.
const passwordVar = "SMARTHOST_PASSWORD"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	status := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(status)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := cli.New("send", "send -server HOST:PORT -tls starttls|implicit|none [-ca FILE] [-user USER] "+
		"-from ADDR -to ADDR[,ADDR...] [-auth MECH] < message", stdout, stderr)
	c.Doc = `Submits the message on standard input to the smart host -server, over the
TLS of -tls, authenticated as -user with the password or API key in the
environment variable ` + passwordVar + ` (never a flag; an API key goes with
the user "apikey"). Prints one line per recipient:
"<addr> <code> <enhanced> <text>", the server's reply for it ("-" for no
enhanced status code).`
	c.Stdin = "the message (RFC 5322); bare LF line ends are sent as CRLF."
	c.Exit0 = "when every recipient was accepted"
	c.Exit1 = "when a recipient was refused, or the send failed"
	server := c.Flags.String("server", "", "the smart host, `HOST:PORT` (required)")
	tlsMode := c.Flags.String("tls", "", "`MODE`: starttls (port 587), implicit (port 465) or none (required)")
	caFile := c.Flags.String("ca", "", "PEM `FILE` of the CA certificates to verify the server with (default: the system's)")
	user := c.Flags.String("user", "", "authenticate as `USER` (\"apikey\" for an API key), with the password in $"+passwordVar)
	from := c.Flags.String("from", "", "the envelope sender, `ADDR` (required; \"<>\" is the null sender)")
	to := c.Flags.String("to", "", "the recipients, `ADDR[,ADDR...]` (required)")
	mech := c.Flags.String("auth", "", "the SASL `MECH`anism (default: the strongest both sides have)")
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}

	// The flags.
	switch {
	case *server == "":
		return c.Usagef("-server is required")
	case *tlsMode == "":
		return c.Usagef("-tls is required: starttls, implicit or none")
	case *from == "":
		return c.Usagef("-from is required")
	case *to == "":
		return c.Usagef("-to is required")
	}
	opts := &relay.ClientOptions{}
	switch m := relay.TLSMode(*tlsMode); m {
	case relay.StartTLS, relay.ImplicitTLS, relay.NoTLS:
		opts.TLS = m
		// With -tls none, credentials go in plaintext to a loopback
		// address only: the client refuses any other.
		opts.AllowInsecureAuth = m == relay.NoTLS
	default:
		return c.Usagef("-tls %q: want starttls, implicit or none", *tlsMode)
	}
	env := &relay.Envelope{From: *from}
	if env.From == "<>" {
		env.From = ""
	}
	if err := checkAddr(env.From); env.From != "" && err != nil {
		return c.Usagef("-from %q: %v", *from, err)
	}
	for _, a := range strings.Split(*to, ",") {
		a = strings.TrimSpace(a)
		if err := checkAddr(a); err != nil {
			return c.Usagef("-to %q: %v", a, err)
		}
		env.To = append(env.To, relay.Recipient{Addr: a})
	}
	env.SMTPUTF8 = !isASCII(*from) || !isASCII(*to)
	if *mech != "" && *user == "" {
		return c.Usagef("-auth needs -user")
	}
	if *user != "" {
		password := getenv(passwordVar)
		if password == "" {
			return c.Usagef("-user needs the password or API key in the environment variable %s", passwordVar)
		}
		opts.Credentials = &sasl.Credentials{Username: *user, Password: password}
		opts.Mechanism = strings.ToUpper(*mech)
	}
	if _, err := relay.NewClient(*server, opts); err != nil {
		return c.Usagef("%s", flagError(err, *server))
	}

	// The file.
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return c.Usagef("-ca: %v", err)
		}
		opts.RootCAs = x509.NewCertPool()
		if !opts.RootCAs.AppendCertsFromPEM(pem) {
			return c.Usagef("-ca %s: no PEM certificate in it", *caFile)
		}
	}

	// Standard input.
	msg, err := io.ReadAll(stdin)
	if err != nil {
		return c.Failf("standard input: %v", err)
	}
	if len(msg) == 0 {
		return c.Failf("standard input: empty message")
	}
	if !isASCII(string(msg)) {
		env.Body = relay.BodyEightBit
	}

	client, err := relay.NewClient(*server, opts)
	if err != nil {
		return c.Usagef("%s", flagError(err, *server))
	}
	defer client.Close()
	rec, err := client.Send(ctx, env, relay.Bytes(msg))
	if errors.Is(err, relay.ErrSyntax) {
		return c.Usagef("%s", cli.Msg(err))
	}
	printed := printReceipt(stdout, env, rec, err)
	switch {
	case err != nil:
		return c.Failf("%s", cli.Msg(err))
	case printed < len(env.To) || len(rec.Accepted()) < len(env.To):
		return cli.Fail
	}
	return cli.OK
}

// flagError names the flag of an error of relay.NewClient.
func flagError(err error, server string) string {
	msg := cli.Msg(err)
	switch {
	case strings.Contains(msg, "server address"):
		return fmt.Sprintf("-server %q: want HOST:PORT", server)
	case strings.Contains(msg, "Mechanism") || strings.Contains(msg, "mechanism"):
		return "-auth: " + msg
	}
	return msg
}

// printReceipt prints a line per recipient with a reply, and returns how
// many it printed. Without a Receipt, the reply that failed the
// transaction, if the server gave one, is every recipient's.
func printReceipt(w io.Writer, env *relay.Envelope, rec *relay.Receipt, err error) int {
	var failed *relay.Reply
	errors.As(err, &failed)
	n := 0
	for i, r := range env.To {
		reply := failed
		if rec != nil {
			reply = rec.Rcpts[i].Reply
		}
		if reply == nil {
			continue
		}
		enh := reply.Enhanced.String()
		if enh == "" {
			enh = "-"
		}
		line := fmt.Sprintf("%s %d %s %s", r.Addr, reply.Code, enh, strings.ReplaceAll(reply.Message, "\n", " "))
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		n++
	}
	return n
}

// checkAddr refuses what cannot be a mailbox in a flag: no "@", or a
// space, an angle bracket, a comma or a control character. The client
// checks the rest before it sends anything.
func checkAddr(a string) error {
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 {
		return errors.New("want local-part@domain")
	}
	for _, r := range a {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("<>,", r) {
			return fmt.Errorf("%q cannot be in an address", r)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
