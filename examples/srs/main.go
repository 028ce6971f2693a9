// Command srs rewrites envelope senders with the Sender Rewriting Scheme, or
// reverses SRS addresses, as postsrsd does:
//
//	go run ./examples/srs forward|reverse -domain DOMAIN -secret-file FILE \
//		[-sep =] [-hash-len 4] [-hash-min N] [-max-age 21] [-alphabet base64url|base64] \
//		[-allow-long] [-always-rewrite] [-local-domains D,.D] [-now UNIX] ADDR...
//
// It prints one result per line, in the order given; an address that fails
// prints "error: <reason>" on its line. The secret file holds one secret per
// line; the first one signs, all of them verify.
//
// By default the hash is written in base64url ("Mm-W"), as postsrsd 2.x
// writes it, and a sender whose SRS local part would exceed the 64 octets
// of RFC 5321 section 4.5.3.1.1 is refused, where postsrsd forwards it.
// postsrsd 1.x (Debian's 1.10, like libsrs2) writes standard base64
// ("Mm+W"): with -alphabet base64 -allow-long the strings are postsrsd
// 1.10's. -sep, -hash-len, -hash-min, -always-rewrite and -local-domains
// are postsrsd's -a, -n, -N, -A and -X. reverse reads both alphabets. The
// database mode of postsrsd 2.x is not offered: a program that runs once
// has nowhere to keep the aliases.
//
// It follows the conventions of examples/README.md: -h prints every flag;
// the exit status is 0 when every address succeeded, 1 otherwise, and 2 on
// a usage error (a bad or missing mode, flag or address, a secret file
// that cannot be read); an error is one line naming the flag or file.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/srs"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// alphabets are the values of -alphabet, by the names srs.Alphabet gives them.
var alphabets = []srs.Alphabet{srs.Base64URL, srs.Base64Std}

func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := cli.New("srs", "srs forward|reverse -domain DOMAIN -secret-file FILE [-sep =] [-hash-len 4] [-hash-min N] [-max-age 21] "+
		"[-alphabet base64url|base64] [-allow-long] [-always-rewrite] [-local-domains D,.D] [-now UNIX] ADDR...", stdout, stderr)
	c.Doc = `forward rewrites each envelope sender ADDR with the Sender Rewriting Scheme
(SRS0=HHHH=TT=orig.example=user@DOMAIN, or SRS1 for an SRS address);
reverse gives back the address an SRS address was made from. One result is
printed per line, in the order given; an address that fails prints
"error: <reason>" on its line. The defaults make postsrsd 2.x's strings
(a base64url hash) but refuse a local part over 64 octets (RFC 5321
§4.5.3.1.1); -alphabet base64 -allow-long make postsrsd 1.x's. -sep,
-hash-len, -hash-min, -always-rewrite and -local-domains are postsrsd's -a,
-n, -N, -A and -X.`
	c.Stdin = "nothing"
	c.Exit0 = "when every address is rewritten"
	c.Exit1 = "when one is not (its line says why)"
	domain := c.Flags.String("domain", "", "the SRS `DOMAIN`: rewritten addresses end in @DOMAIN (required)")
	secretFile := c.Flags.String("secret-file", "", "`FILE` with one secret per line; the first signs, all verify (required)")
	sep := c.Flags.String("sep", "=", "separator `CHAR` after SRS0/SRS1: = + or -")
	hashLen := c.Flags.Int("hash-len", 4, "hash length `N`, 1 to 26")
	hashMin := c.Flags.Int("hash-min", 0, "shortest hash, `N` characters, that reverse accepts (default: -hash-len)")
	maxAge := c.Flags.Int("max-age", 21, "maximum age of an SRS0 address, in `DAYS`, 1 to 1023")
	alphabet := c.Flags.String("alphabet", srs.Base64URL.String(), "`NAME` of the alphabet of the hash forward writes: base64url (postsrsd 2.x) or base64 (postsrsd 1.x)")
	allowLong := c.Flags.Bool("allow-long", false, "forward senders whose SRS local part exceeds 64 octets, as postsrsd does")
	always := c.Flags.Bool("always-rewrite", false, "rewrite senders in -domain and -local-domains too")
	locals := c.Flags.String("local-domains", "", "comma-separated `LIST` of domains whose senders are not rewritten; \".D\" matches D's subdomains")
	now := c.Flags.String("now", "", "current time as `UNIX` seconds (default: the system clock)")

	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		c.Help()
		return cli.OK
	}
	if len(args) == 0 {
		return c.Usagef("no mode: want forward or reverse (srs -h for help)")
	}
	mode := args[0]
	if mode != "forward" && mode != "reverse" {
		return c.Usagef("unknown mode %q: want forward or reverse", mode)
	}
	if status, stop := c.Parse(args[1:]); stop {
		return status
	}
	addrs := c.Flags.Args()

	// The flags, each checked by srs.NewRewriter alone so that an error
	// names the flag; then the secret file; then the addresses.
	switch {
	case *domain == "":
		return c.Usagef("-domain is required")
	case *secretFile == "":
		return c.Usagef("-secret-file is required")
	case len(*sep) != 1:
		return c.Usagef("-sep %q: want one character: = + or -", *sep)
	case *hashLen <= 0:
		return c.Usagef("-hash-len %d: want 1 to 26", *hashLen)
	case *hashMin < 0:
		return c.Usagef("-hash-min %d: want 1 to -hash-len", *hashMin)
	case *maxAge <= 0:
		return c.Usagef("-max-age %d: want 1 to 1023 days", *maxAge)
	}
	opts := srs.Options{
		Separator:          (*sep)[0],
		HashLength:         *hashLen,
		HashMin:            *hashMin,
		MaxAge:             time.Duration(*maxAge) * 24 * time.Hour,
		AllowLongLocalPart: *allowLong,
		AlwaysRewrite:      *always,
	}
	if i := slices.IndexFunc(alphabets, func(a srs.Alphabet) bool { return a.String() == *alphabet }); i >= 0 {
		opts.Alphabet = alphabets[i]
	} else {
		return c.Usagef("-alphabet %q: want base64url or base64", *alphabet)
	}
	if *locals != "" {
		opts.LocalDomains = strings.Split(*locals, ",")
	}
	if *now != "" {
		sec, err := strconv.ParseInt(*now, 10, 64)
		if err != nil {
			return c.Usagef("-now %q: want Unix seconds", *now)
		}
		t := time.Unix(sec, 0)
		opts.Now = func() time.Time { return t }
	}
	for _, f := range []struct {
		flag   string
		domain string
		opts   srs.Options
	}{
		{"-domain", *domain, srs.Options{}},
		{"-local-domains", "example.com", srs.Options{LocalDomains: opts.LocalDomains}},
		{"-sep", "example.com", srs.Options{Separator: opts.Separator}},
		{"-hash-len", "example.com", srs.Options{HashLength: opts.HashLength}},
		{"-hash-min", "example.com", srs.Options{HashLength: opts.HashLength, HashMin: opts.HashMin}},
		{"-max-age", "example.com", srs.Options{MaxAge: opts.MaxAge}},
	} {
		if _, err := srs.NewRewriter(f.domain, []string{"check"}, &f.opts); err != nil {
			return c.Usagef("%s: %s", f.flag, cli.Msg(err))
		}
	}
	if len(addrs) == 0 {
		return c.Usagef("no address given")
	}
	secrets, err := readSecrets(*secretFile)
	if err != nil {
		return c.Usagef("-secret-file: %v", err)
	}
	r, err := srs.NewRewriter(*domain, secrets, &opts)
	if err != nil {
		return c.Usagef("%s", cli.Msg(err))
	}

	ctx := context.Background()
	status := cli.OK
	for _, a := range addrs {
		var out string
		if mode == "forward" {
			out, err = r.Forward(ctx, a)
		} else {
			out, err = r.Reverse(ctx, a)
		}
		if err != nil {
			status = cli.Fail
			reason := err.Error()
			if ae := (*srs.AddressError)(nil); errors.As(err, &ae) {
				reason = ae.Reason
			}
			fmt.Fprintln(stdout, "error: "+reason)
			continue
		}
		fmt.Fprintln(stdout, out)
	}
	return status
}

// readSecrets reads one secret per line (CRLF or LF), skipping empty lines
// as postsrsd does.
func readSecrets(name string) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var secrets []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := bytes.TrimRight(sc.Bytes(), "\r"); len(line) > 0 {
			secrets = append(secrets, string(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%s: no secret in file", name)
	}
	return secrets, nil
}
