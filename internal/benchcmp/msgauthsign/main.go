// Command msgauthsign is examples/dkim-sign written with go-msgauth's
// dkim package, for comparing the two as whole processes (BENCHMARKS.md):
// it signs the message on standard input with one Ed25519 key, relaxed/
// relaxed, and writes the signed message to standard output.
//
//	msgauthsign -d DOMAIN -s SELECTOR -k SEEDFILE < message > signed
package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

func main() {
	domain := flag.String("d", "", "signing domain")
	selector := flag.String("s", "", "selector")
	keyFile := flag.String("k", "", "base64 Ed25519 seed file")
	flag.Parse()
	b, err := os.ReadFile(*keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		fmt.Fprintln(os.Stderr, "-k: not a base64 Ed25519 seed")
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	opts := &dkim.SignOptions{
		Domain:                 *domain,
		Selector:               *selector,
		Signer:                 ed25519.NewKeyFromSeed(seed),
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
	}
	if err := dkim.Sign(out, bufio.NewReader(os.Stdin), opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
