package dkim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/msgauth"
)

const exampleMessage = "From: Joe SixPack <joe@football.example.com>\r\n" +
	"To: Suzie Q <suzie@shopping.example.net>\r\n" +
	"Subject: Is dinner ready?\r\n" +
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
	"\r\n" +
	"Hi.\r\n"

// The Ed25519 key of RFC 8463 Appendix A.1, as a base64 seed.
const exampleSeed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="

func ExampleSign() {
	key, err := dkim.ParsePrivateKey([]byte(exampleSeed))
	if err != nil {
		log.Fatal(err)
	}
	s, err := dkim.NewSigner("football.example.com", "brisbane", key, &dkim.SignOptions{Headers: []string{"From", "To", "Subject", "Date"}, Now: func() time.Time { return time.Unix(1528637909, 0) }})
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	if err := dkim.Sign(context.Background(), &out, strings.NewReader(exampleMessage), s); err != nil {
		log.Fatal(err)
	}
	field, _, _ := strings.Cut(out.String(), "\r\nFrom:")
	fmt.Println(strings.ReplaceAll(field, "\r\n", "\n"))
	// Output:
	// DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
	// 	d=football.example.com; s=brisbane; t=1528637909; h=From:To:Subject:Date;
	// 	bh=UrA8rmgY3eNBotmDWtzAmHyn5RyZv8Gea45sNGsP0zw=; b=M9kS9DlnBWVl4HcetXUcUCnmUx
	// 	ZXdqLtKLIMBqD0E6yoGe0INni8SL88KxyYnm/RKuU1SgtMjjekMq5sCvZNDA==
}

func ExampleVerifier_Verify() {
	zone := dnstest.NewZone()
	zone.AddTXT("brisbane._domainkey.football.example.com.",
		"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	msg, err := os.ReadFile("testdata/rfc8463/a3-signed.eml")
	if err != nil {
		log.Fatal(err)
	}
	v, err := dkim.NewVerifier(zone, nil)
	if err != nil {
		log.Fatal(err)
	}
	results, err := v.Verify(context.Background(), bytes.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("d=%s s=%s %s", r.Domain, r.Selector, r.Status)
		if r.Err != nil {
			fmt.Printf(" (%v)", r.Err)
		}
		fmt.Println()
	}
	fmt.Println(msgauth.Format("mx.example.net", results))
	// Output:
	// d=football.example.com s=brisbane pass
	// d=football.example.com s=test permerror (dkim: no key record for test._domainkey.football.example.com)
	// mx.example.net; dkim=pass header.d=football.example.com header.i=@football.example.com header.s=brisbane header.a=ed25519-sha256 header.b=/gCrinpc; dkim=permerror reason="no key record for test._domainkey.football.example.com" header.d=football.example.com header.i=@football.example.com header.s=test header.a=rsa-sha256 header.b=F45dVWDf
}

func ExampleNewSigningWriter() {
	key, _ := dkim.ParsePrivateKey([]byte(exampleSeed))
	customer, _ := dkim.NewSigner("football.example.com", "brisbane", key, &dkim.SignOptions{NoTimestamp: true})
	provider, _ := dkim.NewSigner("relay.example.net", "smtpapi", key, &dkim.SignOptions{NoTimestamp: true})

	// A relay writes the message to its spool and to the signer at once.
	var spool bytes.Buffer
	w := dkim.NewSigningWriter(customer, provider)
	if _, err := strings.NewReader(exampleMessage).WriteTo(io.MultiWriter(&spool, w)); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	for _, f := range w.Signatures() {
		fmt.Println(domainTag.FindStringSubmatch(f)[1])
	}
	// Output:
	// football.example.com
	// relay.example.net
}

var domainTag = regexp.MustCompile(`[\s;]d=([^;]+);`)

func ExampleKeyRecordText() {
	key, _ := dkim.ParsePrivateKey([]byte(exampleSeed))
	txt, err := dkim.KeyRecordText(key.Public(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dkim.RecordName("brisbane", "football.example.com"))
	fmt.Println(txt)
	// Output:
	// brisbane._domainkey.football.example.com
	// v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
}

func ExampleVerifier_NewWriter() {
	zone := dnstest.NewZone()
	zone.AddTXT("brisbane._domainkey.football.example.com.",
		"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	msg, err := os.Open("testdata/rfc8463/a3-signed.eml")
	if err != nil {
		log.Fatal(err)
	}
	defer msg.Close()
	v, err := dkim.NewVerifier(zone, nil)
	if err != nil {
		log.Fatal(err)
	}

	// A relay writes the message to its spool and to the verifier at once;
	// the key lookups start as soon as the header block has passed.
	var spool bytes.Buffer
	w := v.NewWriter(context.Background())
	if _, err := io.Copy(io.MultiWriter(&spool, w), msg); err != nil {
		log.Fatal(err)
	}
	results, err := w.Results()
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("s=%s %s\n", r.Selector, r.Status)
	}
	// The header it parsed is there for DMARC.
	fmt.Println(w.Header().Get("From"))
	// Output:
	// s=brisbane pass
	// s=test permerror
	// Joe SixPack <joe@football.example.com>
}
