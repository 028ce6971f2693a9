// Command smarthost is the relay: a submission server that takes mail from
// applications with an API key (or from trusted networks), signs it with
// the customer's DKIM key and the provider's, gives it a return path or an
// SRS envelope sender, keeps it in a durable spool, and delivers it, to a
// smart host or to the recipients' MX hosts, with retries and bounces:
//
//	go run ./examples/smarthost [-config FILE] [-listen HOST:PORT] [-data DIR] \
//		[-tls-cert FILE -tls-key FILE] [-keys FILE] [-spool DIR] \
//		[-upstream HOST:PORT [-upstream-tls starttls|implicit|none] [-upstream-ca FILE] [-upstream-user USER]] \
//		[-dkim DOMAIN:SELECTOR:KEYFILE ...] [-provider-domain DOMAIN] \
//		[-return-path DOMAIN:SUBDOMAIN ...] [-srs-domain DOMAIN [-srs-secrets FILE]] \
//		[-events FILE] [-suppressions FILE] [-suppressed refuse|drop] [-webhook URL -webhook-secret-file FILE] [-metrics HOST:PORT] \
//		[-trusted CIDR[,CIDR...]] [-queue nats://HOST:PORT[,...] [-nats-creds FILE] [-nats-tls-ca FILE] [-nats-tls-cert FILE -nats-tls-key FILE] [-nats-replicas N]] [-check]
//	go run ./examples/smarthost apikey create [-keys FILE | -queue URL] -name NAME [-scopes mail.send] -domains DOMAIN[,DOMAIN...]
//	go run ./examples/smarthost apikey list [-keys FILE | -queue URL]
//	go run ./examples/smarthost apikey revoke [-keys FILE | -queue URL] NAME
//	go run ./examples/smarthost suppression list [-suppressions FILE | -queue URL] [-account NAME]
//	go run ./examples/smarthost suppression add [-suppressions FILE | -queue URL] -account NAME [-reason TEXT] RCPT
//	go run ./examples/smarthost suppression remove [-suppressions FILE | -queue URL] -account NAME RCPT
//
// Without flags it listens on 127.0.0.1:2525 with STARTTLS, with a
// self-signed certificate made at the first start, and keeps its files
// under ./smarthost-data/: the key file (keys.json, made with a first API
// key, printed once, when it does not exist), the spool, the certificate.
// It delivers to the recipients' MX hosts. Clients authenticate with AUTH
// PLAIN or LOGIN after STARTTLS, with the user "apikey" and the key as the
// password; a key may send only from its sender domains.
//
// Message tracking: -events appends the events (accepted, delivered,
// deferred, bounced) to a file as JSON lines; -webhook posts them in
// batches, signed with the secret of -webhook-secret-file (the header
// X-Smarthost-Signature: v1= and the hex HMAC-SHA256 of the value of
// X-Smarthost-Timestamp, ".", and the body), keeping each batch under
// DATA/webhook until the receiver answers 2xx. -metrics serves
// Prometheus metrics at /metrics and a liveness check at /healthz.
//
// The same settings come from a YAML file (-config; smarthost.yaml beside
// this file is a commented sample), whose keys are the flags' names;
// flags override it, and relative paths in it are taken from its
// directory. The password of -upstream-user comes from the environment
// variable SMARTHOST_UPSTREAM_PASSWORD only. -check checks everything,
// prints the settings in effect as a configuration file and exits.
//
// SIGTERM or SIGINT stops it gracefully: it stops accepting connections,
// lets the sessions under way finish their message, and the deliveries
// under way finish, within -shutdown-timeout; what is cut short then is
// delivered at the next start, since a message is answered 250 only once
// it is in the spool, synced to disk. It logs to standard error; it prints
// on standard output only a first API key.
//
// "smarthost apikey" manages the key file, beside a running relay, which
// sees each change at its next AUTH: create prints the new key alone on
// its last line, list prints a line per key, revoke removes one.
//
// Each account (API key) has a suppression list (-suppressions, default
// suppressions.json under -data): the recipients it must not mail again.
// The relay adds a recipient when the upstream or MX refuses it for good
// with a status about the address itself (5.1.1 no such mailbox, 5.1.2,
// 5.1.6, 5.1.10), and refuses it from then on at RCPT with 550 5.1.1, or,
// with -suppressed drop, accepts it and leaves it out with a dropped
// event. A client of a -trusted network has no account: no list applies
// to it. "smarthost suppression" lists, adds and removes entries beside a
// running relay, which sees each change at its next RCPT.
//
// A fleet of relays: with -queue nats://HOST:PORT (a list for a
// cluster; -nats-creds and -nats-tls-* to authenticate and secure the
// connection), the API keys and the suppression list are in NATS
// JetStream key-value buckets that every relay pointing there shares
// (package relay/natsqueue), and so is the queue: a key created, a key
// revoked or a suppression added through any relay, or through "smarthost
// apikey" or "smarthost suppression" with the same -queue, takes effect
// on every relay at once. No first key is made: "smarthost apikey create
// -queue URL" makes the fleet's keys.
//
// It follows the conventions of examples/README.md: "smarthost -h" prints
// the flags of the relay and of every apikey and suppression command; the
// exit status is 0 when the relay stopped on a signal, or the apikey or
// suppression command did its job; 1 when the relay could not start (a
// listen address in use, a spool that cannot be written) or failed, or
// the command failed; 2 on a usage error (a bad or missing flag, setting
// or argument, a file named that cannot be read or used), found before
// the relay listens. An error
// is one line naming the flag, the setting of the file, or the file. No
// password, key or secret is ever printed but the new API key.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal ends the program at once.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 {
		switch args[0] {
		case "apikey":
			return apikey(ctx, args[1:], stdout, stderr)
		case "suppression":
			return suppression(ctx, args[1:], stdout, stderr)
		case "-h", "-help", "--help", "help":
			c, _, _, _ := serveCommand(defaultConfig(), stdout, stderr)
			c.Help()
			for _, a := range apikeyCommands {
				fmt.Fprintln(stdout)
				a.make(stdout, stderr).Help()
			}
			for _, a := range suppressionCommands {
				fmt.Fprintln(stdout)
				a.make(stdout, stderr).Help()
			}
			return cli.OK
		}
	}
	return serve(ctx, args, stdout, stderr, getenv)
}
