package bounce_test

import (
	"fmt"
	"strings"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

// A DSN comes back to the VERP return path of a message: the report says
// which recipient failed and why, and maps back to the message by the
// return path, the ENVID and the returned header.
func ExampleParse() {
	msg := strings.Join([]string{
		"From: MAILER-DAEMON@mx.example.org",
		"To: bounces+q42@em.example.com",
		"Subject: Undelivered Mail Returned to Sender",
		"MIME-Version: 1.0",
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b",
		"",
		"--b",
		"Content-Type: message/delivery-status",
		"",
		"Reporting-MTA: dns; mx.example.org",
		"Original-Envelope-Id: q42",
		"",
		"Final-Recipient: rfc822; gone@example.net",
		"Action: failed",
		"Status: 5.1.1",
		"Remote-MTA: dns; mx.example.net",
		"Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
		"",
		"--b",
		"Content-Type: text/rfc822-headers",
		"",
		"Message-ID: <q42@em.example.com>",
		"",
		"--b--",
	}, "\r\n")
	rep, err := bounce.Parse(strings.NewReader(msg), &bounce.Options{EnvelopeTo: "bounces+q42@em.example.com"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Kind, rep.BounceTo, rep.OriginalEnvelopeID, rep.Original.MessageID)
	for _, r := range rep.Recipients {
		fmt.Println(r.Address, r.Status, r.ReplyCode, r.Reason, "hard:", r.Hard, r.RemoteMTA)
	}
	// Output:
	// dsn bounces+q42@em.example.com q42 q42@em.example.com
	// gone@example.net 5.1.1 550 userunknown hard: true mx.example.net
}

// A bounce in no standard form: qmail's text. A full mailbox is a
// permanent failure for this message, but not a hard bounce.
func ExampleParse_bounceText() {
	msg := strings.Join([]string{
		"From: MAILER-DAEMON@mx.example.org",
		"To: bounces+q43@em.example.com",
		"Subject: failure notice",
		"",
		"Hi. This is the qmail-send program at mx.example.org.",
		"I'm afraid I wasn't able to deliver your message to the following addresses.",
		"This is a permanent error; I've given up. Sorry it didn't work out.",
		"",
		"<full@example.net>:",
		"192.0.2.25 does not like recipient.",
		"Remote host said: 552 5.2.2 <full@example.net>: Mailbox full",
		"Giving up on 192.0.2.25.",
		"",
		"--- Below this line is a copy of the message.",
		"",
		"Message-ID: <q43@em.example.com>",
		"To: full@example.net",
		"",
		"Hello.",
	}, "\r\n")
	rep, err := bounce.Parse(strings.NewReader(msg), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Kind, rep.Format, rep.Original.MessageID)
	for _, r := range rep.Recipients {
		fmt.Println(r.Address, r.Status, r.ReplyCode, r.Reason, "hard:", r.Hard)
	}
	// Output:
	// bounce qmail q43@em.example.com
	// full@example.net 5.2.2 552 mailboxfull hard: false
}
