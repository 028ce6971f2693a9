// Command srs rewrites envelope senders with the Sender Rewriting Scheme, or
// reverses SRS addresses, as postsrsd does:
//
//	go run ./examples/srs forward|reverse -domain DOMAIN -secret-file FILE \
//		[-sep =] [-hash-len 4] [-hash-min N] [-max-age 21] [-alphabet base64url|base64] \
//		[-allow-long] [-always-rewrite] [-local-domains D,.D] [-now UNIX] ADDR...
//
// It prints one result per line, in the order given; an address that fails
// prints "error: <reason>" on its line. The secret file holds one secret per
// line; the first one signs, all of them verify. The exit status is 0 when
// every address succeeded, 1 otherwise, and 2 on usage errors.
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
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/srs"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = "usage: srs forward|reverse -domain DOMAIN -secret-file FILE [-sep =] [-hash-len 4] [-hash-min N] [-max-age 21] " +
	"[-alphabet base64url|base64] [-allow-long] [-always-rewrite] [-local-domains D,.D] [-now UNIX] ADDR..."

// alphabets are the values of -alphabet, by the names srs.Alphabet gives them.
var alphabets = []srs.Alphabet{srs.Base64URL, srs.Base64Std}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "forward" && args[0] != "reverse") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	mode := args[0]
	fs := flag.NewFlagSet("srs "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	domain := fs.String("domain", "", "SRS domain (required)")
	secretFile := fs.String("secret-file", "", "file with one secret per line, the first signs (required)")
	sep := fs.String("sep", "=", "separator after SRS0/SRS1: = + or -")
	hashLen := fs.Int("hash-len", 4, "hash length")
	hashMin := fs.Int("hash-min", 0, "shortest hash reverse accepts (default: -hash-len)")
	maxAge := fs.Int("max-age", 21, "maximum age of an SRS0 address, in days")
	alphabet := fs.String("alphabet", srs.Base64URL.String(), "alphabet of the hash forward writes: base64url (postsrsd 2.x) or base64 (postsrsd 1.x)")
	allowLong := fs.Bool("allow-long", false, "forward senders whose SRS local part exceeds 64 octets, as postsrsd 1.x does")
	always := fs.Bool("always-rewrite", false, "rewrite senders in -domain and -local-domains too")
	locals := fs.String("local-domains", "", "comma-separated domains whose senders are not rewritten; \".D\" matches D's subdomains")
	now := fs.String("now", "", "current time as Unix seconds (default: the system clock)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	addrs := fs.Args()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "srs: "+format+"\n", a...)
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch {
	case *domain == "":
		return fail("-domain is required")
	case *secretFile == "":
		return fail("-secret-file is required")
	case len(*sep) != 1:
		return fail("-sep must be one character: = + or -")
	case len(addrs) == 0:
		return fail("no address given")
	}
	secrets, err := readSecrets(*secretFile)
	if err != nil {
		return fail("%v", err)
	}
	opts := &srs.Options{
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
		return fail("-alphabet %q: want base64url or base64", *alphabet)
	}
	if *locals != "" {
		opts.LocalDomains = strings.Split(*locals, ",")
	}
	if *hashLen <= 0 {
		return fail("-hash-len must be positive")
	}
	if *maxAge <= 0 {
		return fail("-max-age must be positive")
	}
	if *now != "" {
		sec, err := strconv.ParseInt(*now, 10, 64)
		if err != nil {
			return fail("-now: %v", err)
		}
		t := time.Unix(sec, 0)
		opts.Now = func() time.Time { return t }
	}
	r, err := srs.NewRewriter(*domain, secrets, opts)
	if err != nil {
		return fail("%v", err)
	}

	status := 0
	for _, a := range addrs {
		var out string
		if mode == "forward" {
			out, err = r.Forward(ctx, a)
		} else {
			out, err = r.Reverse(ctx, a)
		}
		if err != nil {
			status = 1
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
