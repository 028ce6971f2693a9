// Command authcheck explains the authentication of a received message, as
// the header analyzers of the mailbox providers do: SPF, every DKIM
// signature and DMARC, with the reasons and the DNS lookups behind each
// result, and the hops of its Received chain.
//
//	go run ./examples/authcheck [-ip IP -helo NAME -mail-from ADDR] \
//		[-zone FILE | -dns HOST:PORT] [-rules 9989|7489] [-time UNIX] [-json] < message
//
// Without -ip, the client's address and HELO name come from the topmost
// Received field that names an address (the one the receiving MX added).
// The MAIL FROM address comes from the Return-Path field (or, without -ip,
// an Exim "envelope-from" comment of that Received field); -helo and
// -mail-from, when given, override what the message says. -zone answers DNS queries from a zone file (RFC
// 1035 master format), -dns asks that server; without either the system
// resolver is used. -rules chooses how DMARC finds policies and
// organizational domains: the DNS Tree Walk of RFC 9989 (the default) or
// the public suffix list of RFC 7489. -time verifies as of that Unix time (DKIM t= and x=).
//
// It prints the Authentication-Results header field (RFC 8601) first, then
// a section per check (spf, dkim for each signature, dmarc) and the
// Received chain from the first hop to the last with the delay between
// hops. -json prints all of that as one JSON object instead.
//
// It follows the conventions of examples/README.md: -h prints every flag;
// the exit status is 0 when DMARC passes, 1 for any other DMARC result or
// a message whose header cannot be read, and 2 on a usage error (a bad or
// missing flag, a zone file that cannot be read, standard input that
// cannot be read or is empty, no -ip and no Received field naming the
// client); an error is one line naming the flag, the file or standard
// input.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// maxMessage is the largest message read: authcheck holds it in memory
// to read it twice (its DKIM signatures, and the body hashes it shows).
const maxMessage = 64 << 20

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := cli.New("authcheck", "authcheck [-ip IP -helo NAME -mail-from ADDR] [-zone FILE | -dns HOST:PORT] [-rules 9989|7489] [-time UNIX] [-json] [-authserv-id ID] < message", stdout, stderr)
	c.Doc = `Checks the message on standard input as a receiving MX does: SPF for the
client (RFC 7208), every DKIM signature (RFC 6376, RFC 8463) and DMARC (RFC
7489, RFC 9989). Without -ip, the client's address and HELO name come from
the topmost Received field that names an address, and the MAIL FROM address
from Return-Path. Prints the Authentication-Results field (RFC 8601), then
one section per check with its reasons and DNS lookups, then the Received
chain from the first hop to the last with the delays between hops; -json
prints all of it as one JSON object.`
	c.Stdin = "the message, as received (RFC 5322, CRLF or LF line ends)"
	c.Exit0 = "when DMARC passes"
	c.Exit1 = "for any other DMARC result (fail, none, temperror, permerror), or a header that cannot be read"
	ipFlag := c.Flags.String("ip", "", "the SMTP client's `IP` address (default: from the topmost Received field)")
	helo := c.Flags.String("helo", "", "the HELO/EHLO `NAME` (default: from that Received field)")
	mailFrom := c.Flags.String("mail-from", "", "the MAIL FROM `ADDR`ess, empty for the null sender (default: from Return-Path)")
	var dns cli.DNS
	dns.Register(c.Flags)
	rules := c.Flags.String("rules", "9989", "DMARC policy discovery `RULES`: 9989 (DNS Tree Walk) or 7489 (public suffix list, pct=)")
	at := c.Flags.String("time", "", "verify as of `UNIX` time in seconds, for DKIM t= and x= (default: now)")
	asJSON := c.Flags.Bool("json", false, "print one JSON object instead of text")
	authserv := c.Flags.String("authserv-id", "localhost", "authserv-id `ID` of the Authentication-Results field")
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}
	set := map[string]bool{}
	c.Flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var ip netip.Addr
	if set["ip"] {
		var err error
		if ip, err = netip.ParseAddr(*ipFlag); err != nil {
			return c.Usagef("-ip %q: not an IP address", *ipFlag)
		}
		if !set["helo"] && set["mail-from"] && *mailFrom == "" {
			return c.Usagef("-helo is required with -ip when -mail-from is empty")
		}
	}
	if err := dns.Check(); err != nil {
		return c.Usagef("%v", err)
	}
	k := &checker{authserv: *authserv}
	switch *rules {
	case "9989", "rfc9989":
		k.rules = dmarc.RFC9989
	case "7489", "rfc7489":
		k.rules = dmarc.RFC7489
	default:
		return c.Usagef("-rules %q: want 9989 or 7489", *rules)
	}
	if *at != "" {
		sec, err := strconv.ParseInt(*at, 10, 64)
		if err != nil {
			return c.Usagef("-time %q: want Unix seconds", *at)
		}
		k.now = func() time.Time { return time.Unix(sec, 0) }
	}
	if *authserv == "" {
		return c.Usagef("-authserv-id is empty")
	}
	resolver, err := dns.Resolver()
	if err != nil {
		return c.Usagef("%v", err)
	}
	k.resolver = resolver

	msg, err := io.ReadAll(io.LimitReader(stdin, maxMessage+1))
	switch {
	case err != nil:
		return c.Usagef("standard input: %v", err)
	case len(msg) == 0:
		return c.Usagef("standard input: empty message")
	case len(msg) > maxMessage:
		return c.Usagef("standard input: message over %d MiB", maxMessage>>20)
	}
	received, returnPath := readHeader(msg)
	rep := &report{Received: chain(received), ReceivedOmitted: max(0, len(received)-maxHops)}
	cl, err := session(set, ip, *helo, *mailFrom, rep.Received, returnPath)
	if err != nil {
		return c.Usagef("%v", err)
	}
	rep.Client = cl
	if err := k.check(context.Background(), msg, rep); err != nil {
		return c.Failf("standard input: %s", cli.Msg(err))
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return c.Failf("%v", err)
		}
	} else {
		writeText(stdout, rep)
	}
	if rep.Status != "pass" {
		return cli.Fail
	}
	return cli.OK
}

// session is the SMTP session to check the message against: the flags
// -ip, -helo and -mail-from that are set (in set), and what the message
// says for the others. Its errors are usage errors.
func session(set map[string]bool, ip netip.Addr, helo, mailFrom string, hops []chainHop, returnPath []string) (client, error) {
	if !set["ip"] {
		cl, err := clientFrom(hops, returnPath)
		if err != nil {
			return client{}, fmt.Errorf("-ip is required: %v", err)
		}
		if set["helo"] {
			cl.HELO = helo
			cl.Source += ", -helo"
		}
		if set["mail-from"] {
			cl.MailFrom = mailFrom
			cl.Source += ", -mail-from"
		}
		return cl, nil
	}
	cl := client{IP: ip, HELO: helo, Source: "-ip"}
	if set["helo"] {
		cl.Source += ", -helo"
	}
	switch {
	case set["mail-from"]:
		cl.MailFrom = mailFrom
		cl.Source += ", -mail-from"
	case len(returnPath) > 0:
		cl.MailFrom = pathAddr(returnPath[0])
		cl.Source += ", Return-Path"
	default:
		cl.Source += ", no Return-Path: the null sender"
	}
	if cl.MailFrom == "" && cl.HELO == "" {
		return client{}, errors.New("-helo is required with -ip when the MAIL FROM is the null sender (no -mail-from, no Return-Path)")
	}
	return cl, nil
}

// clientFrom takes the client from the topmost Received field that names
// an address (the receiving MX's; fields below it are hops the sender's
// side wrote), and the MAIL FROM address from Return-Path, else from that
// field's envelope-from comment, else the null sender.
func clientFrom(hops []chainHop, returnPath []string) (client, error) {
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		if !h.IP.IsValid() {
			continue
		}
		cl := client{IP: h.IP, HELO: h.HELO, Source: fmt.Sprintf("Received field %d", h.Field)}
		switch {
		case len(returnPath) > 0:
			cl.MailFrom = pathAddr(returnPath[0])
			cl.Source += ", Return-Path"
		case h.EnvelopeFrom != "":
			cl.MailFrom = h.EnvelopeFrom
			cl.Source += ", its envelope-from"
		default:
			cl.Source += ", no Return-Path: the null sender"
		}
		return cl, nil
	}
	if len(hops) == 0 {
		return client{}, errors.New("the message has no Received field")
	}
	return client{}, errors.New("no Received field of the message names the client's address")
}

// pathAddr is the address of a Return-Path value: "<a@b>" or "a@b", with
// "<>" the null sender (RFC 5321 §4.4).
func pathAddr(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			return strings.TrimSpace(v[i+1 : i+j])
		}
	}
	return v
}
