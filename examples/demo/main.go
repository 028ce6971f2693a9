// Command demo plays, in one process and on 127.0.0.1 only, the whole story
// of mail sent through a smart host:
//
//		go run ./examples/demo [-v] [-o DIR]
//
//	 1. DNS: a loopback DNS server holds the provider's zone and the
//	    customer's; the customer's domain-authentication records (delegated
//	    mode: return-path and DKIM CNAMEs into the provider's zone, the SPF
//	    include, DMARC) are planned by dnsauth, pushed by DNS UPDATE and
//	    verified.
//	 2. The receiving MX checks every message as a large mailbox provider
//	    does (SPF, every DKIM signature, DMARC) and adds
//	    Authentication-Results.
//	 3. The relay (relay.Server, its spool and Deliverer, delivering by MX)
//	    takes submissions with an API key made at start, signs twice with
//	    DKIM and gives each message a bounces+ID@ return path.
//	 4. The application tries port 25 of the MX itself and is refused, as on
//	    a cloud network; it submits through the relay instead.
//	 5. A recipient the MX accepted bounces later: the DSN comes back to the
//	    return path, becomes a bounced event and a suppression, and the next
//	    message to that recipient is refused.
//
// -v prints the SMTP conversations and the DNS queries of each step; -o
// writes what the MX received (message.eml) and the demo's DNS (demo.zone)
// into DIR.
//
// It follows the conventions of examples/README.md: the exit status is 0
// when every check passed, 1 when one did not (with one line saying which),
// and 2 on a usage error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/relay"
)

// timeout bounds the whole demo; it takes a second or two.
const timeout = time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(command(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := cli.New("demo", "demo [-v] [-o DIR]", stdout, stderr)
	c.Doc = `Plays the story of mail sent through a smart host, in one process on
127.0.0.1: the DNS records of domain authentication, planned and verified;
an application refused on port 25 that submits to the relay with an API key
over STARTTLS; two DKIM signatures and the bounces+ID@ return path; a
receiving MX that reports spf=pass dkim=pass dmarc=pass; and a bounce that
comes back to the return path and suppresses its recipient. Each step is
printed as it is checked.`
	c.Stdin = "nothing"
	c.Exit0 = "when every check passed"
	c.Exit1 = "when one did not"
	verbose := c.Flags.Bool("v", false, "also print the SMTP conversations and the DNS queries")
	dir := c.Flags.String("o", "", "write what the MX received (message.eml) and the DNS zone (demo.zone)\ninto the existing directory `DIR`")
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}
	if *dir != "" {
		if fi, err := os.Stat(*dir); err != nil {
			return c.Usagef("-o: %v", err)
		} else if !fi.IsDir() {
			return c.Usagef("-o %s: not a directory", *dir)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if *dir == "" {
		if err := run(ctx, stdout, *verbose); err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		return cli.OK
	}
	s, err := play(ctx, stdout, *verbose)
	if err != nil {
		return c.Failf("%s", cli.Msg(err))
	}
	if err := s.save(*dir); err != nil {
		return c.Failf("-o: %v", err)
	}
	return cli.OK
}

// run plays the demo, printing each step to w (with verbose, the SMTP
// conversations and DNS queries too), and returns an error saying which
// check failed, if one did.
func run(ctx context.Context, w io.Writer, verbose bool) error {
	_, err := play(ctx, w, verbose)
	return err
}

// play plays the demo and returns what each step produced, for the
// checks of a test.
func play(ctx context.Context, w io.Writer, verbose bool) (*story, error) {
	o := newOutput(w, verbose)
	dir, err := os.MkdirTemp("", "smarthost-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s := &story{}

	o.step("1. DNS: the customer's domain-authentication records")
	if s.dns, err = startDNS(ctx, o); err != nil {
		return s, err
	}
	defer s.dns.close()

	o.step("2. The receiving MX, mx.example.net")
	if s.mx, err = startMX(ctx, o, s.dns); err != nil {
		return s, err
	}
	defer s.mx.close()

	o.step("3. The relay, smtp.provider.example")
	if s.relay, err = startRelay(ctx, o, dir, s.dns, s.mx); err != nil {
		return s, err
	}
	defer s.relay.close()

	o.step("4. The application sends an order confirmation")
	if err := s.app(ctx, o); err != nil {
		return s, err
	}

	o.step("5. A bounce comes back")
	if err := s.bounce(ctx, o); err != nil {
		return s, err
	}
	o.end("every check passed")
	return s, nil
}

// story is what the steps of the demo made and saw.
type story struct {
	dns   *dnsWorld
	mx    *mx
	relay *relayWorld

	direct    error     // the application's attempt on port 25
	first     *received // the order confirmation, as the MX received it
	bounced   *bounceOutcome
	refusal   error        // the error of the third submission
	third     *relay.Reply // and the relay's reply to it
	firstID   string
	secondIDs ids
}

// ids are the identifiers of a message at the relay.
type ids struct{ queueID, messageID string }

// save writes the first message as the MX's mailbox keeps it and the zone
// of the demo's DNS into dir.
func (s *story) save(dir string) error {
	if s.first == nil {
		return fmt.Errorf("no message received")
	}
	if err := os.WriteFile(filepath.Join(dir, "message.eml"), s.first.stored(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "demo.zone"), []byte(s.dns.zoneText()), 0o644)
}
