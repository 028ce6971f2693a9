package bounce_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

// crlf turns the LF line endings of a test message into CRLF, as on the
// wire.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func parse(t *testing.T, msg string, opts *bounce.Options) *bounce.Report {
	t.Helper()
	rep, err := bounce.Parse(strings.NewReader(crlf(msg)), opts)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rep
}

func date(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkRecipients compares the recipients field by field, times by
// Equal.
func checkRecipients(t *testing.T, got, want []bounce.Recipient) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d recipients, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.LastAttempt.Equal(w.LastAttempt) {
			t.Errorf("recipient %d: LastAttempt %v, want %v", i, g.LastAttempt, w.LastAttempt)
		}
		g.LastAttempt, w.LastAttempt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("recipient %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}

// The simple DSN of RFC 3464 §10.1 (Appendix: sample DSNs): Sendmail gave
// up on a recipient after five days of "426 connection timed out". The
// returned message is given a header so that it maps back.
const rfc3464Simple = `Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Message-Id: <199407072116.RAA14128@CS.UTK.EDU>
Subject: Returned mail: Cannot send message for 5 days
To: <owner-info-mime@cs.utk.edu>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="RAA14128.773615765/CS.UTK.EDU"

--RAA14128.773615765/CS.UTK.EDU

   The original message was received at Sat, 2 Jul 1994 17:10:28 -0400
   from root@localhost

      ----- The following addresses had delivery problems -----
<louisl@larry.slip.umd.edu>  (unrecoverable error)

      ----- Transcript of session follows -----
<louisl@larry.slip.umd.edu>... Deferred: Connection timed out
            with larry.slip.umd.edu.
Message could not be delivered for 5 days
Message will be deleted from queue

--RAA14128.773615765/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;louisl@larry.slip.umd.edu
Final-Recipient: rfc822;louisl@larry.slip.umd.edu
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; 426 connection timed out
Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400

--RAA14128.773615765/CS.UTK.EDU
content-type: message/rfc822

Return-Path: <owner-info-mime@cs.utk.edu>
From: owner-info-mime@cs.utk.edu
To: louisl@larry.slip.umd.edu
Subject: =?utf-8?q?MIME_list_digest?=
Date: Sat, 2 Jul 1994 17:10:28 -0400
Message-ID: <199407022110.RAA00001@cs.utk.edu>

The digest.
--RAA14128.773615765/CS.UTK.EDU--
`

func TestRFC3464Simple(t *testing.T) {
	t.Parallel()
	rep := parse(t, rfc3464Simple, nil)
	if rep.Kind != bounce.KindDSN || rep.Format != "rfc3464" || !rep.Kind.IsBounce() {
		t.Errorf("Kind %q Format %q", rep.Kind, rep.Format)
	}
	if rep.ReportingMTA != "cs.utk.edu" || rep.OriginalEnvelopeID != "" || !rep.ArrivalDate.IsZero() || rep.Truncated != "" {
		t.Errorf("per-message fields: %q %q %v %q", rep.ReportingMTA, rep.OriginalEnvelopeID, rep.ArrivalDate, rep.Truncated)
	}
	checkRecipients(t, rep.Recipients, []bounce.Recipient{{
		Address:        "louisl@larry.slip.umd.edu",
		Action:         bounce.ActionFailed,
		Status:         "4.0.0",
		ReplyCode:      426,
		Diagnostic:     "426 connection timed out",
		DiagnosticType: "smtp",
		LastAttempt:    date(t, "Thu, 7 Jul 1994 17:15:49 -0400"),
		Reason:         bounce.ReasonNetworkError,
		Hard:           false, // failed, but of a temporary condition
	}})
	want := bounce.Original{
		MessageID:  "199407022110.RAA00001@cs.utk.edu",
		From:       "owner-info-mime@cs.utk.edu",
		To:         []string{"louisl@larry.slip.umd.edu"},
		Subject:    "MIME list digest",
		Date:       date(t, "Sat, 2 Jul 1994 17:10:28 -0400"),
		ReturnPath: "owner-info-mime@cs.utk.edu",
	}
	if !rep.Original.Date.Equal(want.Date) {
		t.Errorf("Original.Date %v", rep.Original.Date)
	}
	rep.Original.Date = want.Date
	if !reflect.DeepEqual(rep.Original, want) {
		t.Errorf("Original %+v\nwant %+v", rep.Original, want)
	}
	if rep.BounceTo != "owner-info-mime@cs.utk.edu" || rep.Feedback != nil {
		t.Errorf("BounceTo %q Feedback %v", rep.BounceTo, rep.Feedback)
	}
	// Options.EnvelopeTo is the RCPT TO of the session: it wins over To.
	rep = parse(t, rfc3464Simple, &bounce.Options{EnvelopeTo: "bounces+42@em.example.com"})
	if rep.BounceTo != "bounces+42@em.example.com" {
		t.Errorf("BounceTo %q with Options.EnvelopeTo", rep.BounceTo)
	}
}

// The multi-recipient DSN of RFC 3464 §10.2: one recipient failed at a
// gateway, one is delayed by a name lookup failure, one is unknown. The
// folded Diagnostic-Code and the Status comments are the RFC's.
const rfc3464Multi = `Date: Fri, 8 Jul 1994 09:21:47 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Subject: Returned mail: User unknown
To: <owner-ietf-mxcomp@cs.utk.edu>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="JAA13167.773673707/CS.UTK.EDU"

--JAA13167.773673707/CS.UTK.EDU
content-type: text/plain; charset=us-ascii

   ----- The following addresses had delivery problems -----
<arathib@vnet.ibm.com>  (unrecoverable error)
<wsnell@sdcc13.ucsd.edu>  (unrecoverable error)

--JAA13167.773673707/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;arathib@vnet.ibm.com
Final-Recipient: rfc822;arathib@vnet.ibm.com
Action: failed
Status: 5.0.0 (permanent failure)
Diagnostic-Code: smtp;  550 'arathib@vnet.IBM.COM' is not a
    registered gateway user
Remote-MTA: dns; vnet.ibm.com

Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Action: delayed
Status: 4.0.0 (hpnjld.njd.jp.com: host name lookup failure)

Original-Recipient: rfc822;wsnell@sdcc13.ucsd.edu
Final-Recipient: rfc822;wsnell@sdcc13.ucsd.edu
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 550 user unknown
Remote-MTA: dns; sdcc13.ucsd.edu

--JAA13167.773673707/CS.UTK.EDU
content-type: message/rfc822

[original message goes here]

--JAA13167.773673707/CS.UTK.EDU--
`

func TestRFC3464MultiRecipient(t *testing.T) {
	t.Parallel()
	rep := parse(t, rfc3464Multi, nil)
	if rep.Kind != bounce.KindDSN || rep.ReportingMTA != "cs.utk.edu" {
		t.Errorf("Kind %q ReportingMTA %q", rep.Kind, rep.ReportingMTA)
	}
	checkRecipients(t, rep.Recipients, []bounce.Recipient{{
		Address: "arathib@vnet.ibm.com", Action: bounce.ActionFailed, Status: "5.0.0", ReplyCode: 550,
		Diagnostic: "550 'arathib@vnet.IBM.COM' is not a registered gateway user", DiagnosticType: "smtp",
		RemoteMTA: "vnet.ibm.com", Reason: bounce.ReasonUserUnknown, Hard: true,
	}, {
		// No Diagnostic-Code: the Status comment is the reason given.
		Address: "johnh@hpnjld.njd.hp.com", Action: bounce.ActionDelayed, Status: "4.0.0",
		Diagnostic: "hpnjld.njd.jp.com: host name lookup failure", Reason: bounce.ReasonHostUnknown, Hard: false,
	}, {
		Address: "wsnell@sdcc13.ucsd.edu", Action: bounce.ActionFailed, Status: "5.0.0", ReplyCode: 550,
		Diagnostic: "550 user unknown", DiagnosticType: "smtp", RemoteMTA: "sdcc13.ucsd.edu",
		Reason: bounce.ReasonUserUnknown, Hard: true,
	}})
	// "[original message goes here]" is no header: nothing maps back.
	if rep.Original.MessageID != "" || len(rep.Original.To) != 0 {
		t.Errorf("Original %+v", rep.Original)
	}
}

// A delay notice in the manner of RFC 3464 §10.4 (Action: delayed, with
// Will-Retry-Until), from an MTA that also sends Original-Envelope-Id and
// Arrival-Date (§2.2.1, §2.2.5) and quotes the remote server's enhanced code.
const rfc3464Delayed = `From: MAILER-DAEMON@mx.example.org
To: bounces+7f3a@em.example.com
Subject: Delivery delayed
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=b1

--b1
Content-Type: text/plain

Your message has not been delivered yet. Delivery will be tried again.

--b1
Content-Type: message/delivery-status

Original-Envelope-Id: QQ314159
Reporting-MTA: dns; mx.example.org
Arrival-Date: Wed, 29 Apr 2026 10:00:00 +0000

Final-Recipient: rfc822; ada@example.net
Action: delayed
Status: 4.2.2
Remote-MTA: dns; mx1.example.net
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full, try again later
Last-Attempt-Date: Wed, 29 Apr 2026 14:00:00 +0000
Will-Retry-Until: Sat, 2 May 2026 10:00:00 +0000

--b1
Content-Type: text/rfc822-headers

Message-ID: <q314159@em.example.com>
From: News <news@example.com>
To: Ada <ada@example.net>
Subject: Weekly

--b1--
`

func TestRFC3464Delayed(t *testing.T) {
	t.Parallel()
	rep := parse(t, rfc3464Delayed, nil)
	if rep.Kind != bounce.KindDSN || rep.OriginalEnvelopeID != "QQ314159" || rep.ReportingMTA != "mx.example.org" ||
		!rep.ArrivalDate.Equal(date(t, "Wed, 29 Apr 2026 10:00:00 +0000")) {
		t.Errorf("per-message fields: %q %q %q %v", rep.Kind, rep.OriginalEnvelopeID, rep.ReportingMTA, rep.ArrivalDate)
	}
	checkRecipients(t, rep.Recipients, []bounce.Recipient{{
		Address: "ada@example.net", Action: bounce.ActionDelayed, Status: "4.2.2", ReplyCode: 452,
		Diagnostic: "452 4.2.2 Mailbox full, try again later", DiagnosticType: "smtp", RemoteMTA: "mx1.example.net",
		LastAttempt: date(t, "Wed, 29 Apr 2026 14:00:00 +0000"), Reason: bounce.ReasonMailboxFull,
	}})
	if rep.Original.MessageID != "q314159@em.example.com" || rep.BounceTo != "bounces+7f3a@em.example.com" ||
		rep.Original.From != "news@example.com" || !reflect.DeepEqual(rep.Original.To, []string{"ada@example.net"}) {
		t.Errorf("Original %+v BounceTo %q", rep.Original, rep.BounceTo)
	}
}

// An internationalised DSN (RFC 6533 §6): a message/global-delivery-status
// part whose addresses are of type utf-8, in UTF-8 or with the escapes of
// §3 (embedded-unicode-char), and a message/global-headers part.
const rfc6533Global = `From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: sender@example.com
Subject: Undeliverable
MIME-Version: 1.0
Content-Type: multipart/report; report-type=global-delivery-status;
 boundary="g6533"

--g6533
Content-Type: text/plain; charset=utf-8

Delivery to pelé@example.net failed.

--g6533
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.net

Original-Recipient: utf-8; jos\x{E9}@example.net
Final-Recipient: utf-8; pelé@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <pelé@example.net>: Recipient address rejected: User unknown

--g6533
Content-Type: message/global-headers

Message-ID: <u8@example.com>
From: sender@example.com
To: josé@example.net
Subject: Olá

--g6533--
`

func TestRFC6533GlobalDSN(t *testing.T) {
	t.Parallel()
	rep := parse(t, rfc6533Global, nil)
	if rep.Kind != bounce.KindDSN || rep.ReportingMTA != "mx.example.net" {
		t.Errorf("Kind %q ReportingMTA %q", rep.Kind, rep.ReportingMTA)
	}
	checkRecipients(t, rep.Recipients, []bounce.Recipient{{
		Address: "pelé@example.net", OriginalAddress: "josé@example.net", Action: bounce.ActionFailed,
		Status: "5.1.1", ReplyCode: 550, DiagnosticType: "smtp",
		Diagnostic: "550 5.1.1 <pelé@example.net>: Recipient address rejected: User unknown",
		Reason:     bounce.ReasonUserUnknown, Hard: true,
	}})
	if rep.Original.MessageID != "u8@example.com" || rep.Original.Subject != "Olá" {
		t.Errorf("Original %+v", rep.Original)
	}
}

// The example of RFC 5965 §3.5: an abuse report with the optional fields,
// about a message whose returned header ends early (the blank line after
// Received: is the RFC's).
const rfc5965Example = `From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <somespammer@example.net>
Original-Rcpt-To: <user@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com;
               spf=fail smtp.mail=somespammer@example.com
Reported-Domain: example.net
Reported-Uri: http://example.net/earn_money.html
Reported-Uri: mailto:user@example.com
Removal-Recipient: user@example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <somespammer@example.net>
Received: from mailserver.example.net
     (mailserver.example.net [192.0.2.1])
     by example.com with ESMTP id M63d4137594e46;
     Thu, 08 Mar 2005 14:00:00 -0400

To: <Undisclosed Recipients>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
`

func TestRFC5965Example(t *testing.T) {
	t.Parallel()
	rep := parse(t, rfc5965Example, nil)
	if rep.Kind != bounce.KindFeedback || rep.Format != "rfc5965" || rep.Kind.IsBounce() {
		t.Errorf("Kind %q Format %q", rep.Kind, rep.Format)
	}
	// EDT is -0400 (RFC 5322 §4.3).
	arrival := date(t, "Thu, 8 Mar 2005 14:00:00 -0400")
	want := &bounce.Feedback{
		Type:             "abuse",
		UserAgent:        "SomeGenerator/1.0",
		Version:          "1",
		OriginalMailFrom: "somespammer@example.net",
		OriginalRcptTo:   []string{"user@example.com"},
		ArrivalDate:      arrival,
		SourceIP:         netip.MustParseAddr("192.0.2.1"),
		ReportedDomain:   []string{"example.net"},
		ReportedURI:      []string{"http://example.net/earn_money.html", "user@example.com"},
		Incidents:        1,
	}
	if rep.Feedback == nil {
		t.Fatal("no Feedback")
	}
	if !rep.Feedback.ArrivalDate.Equal(arrival) {
		t.Errorf("ArrivalDate %v, want %v", rep.Feedback.ArrivalDate, arrival)
	}
	rep.Feedback.ArrivalDate = arrival
	if !reflect.DeepEqual(rep.Feedback, want) {
		t.Errorf("Feedback\n got  %+v\n want %+v", rep.Feedback, want)
	}
	if rep.ReportingMTA != "mail.example.com" || !rep.ArrivalDate.Equal(arrival) {
		t.Errorf("ReportingMTA %q ArrivalDate %v", rep.ReportingMTA, rep.ArrivalDate)
	}
	checkRecipients(t, rep.Recipients, []bounce.Recipient{{Address: "user@example.com", Reason: bounce.ReasonFeedback}})
	// The returned header ends at the blank line after Received.
	if rep.Original.From != "somespammer@example.net" || rep.Original.MessageID != "" || rep.BounceTo != "abuse@example.net" {
		t.Errorf("Original %+v BounceTo %q", rep.Original, rep.BounceTo)
	}
}

// An authentication failure report (RFC 6591 §3.1) without
// Original-Rcpt-To: the recipient is taken from the reported header.
func TestRFC6591AuthFailure(t *testing.T) {
	t.Parallel()
	rep := parse(t, `From: dmarc-reports@receiver.example
To: ruf@example.com
Subject: DMARC failure report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=x

--x
Content-Type: text/plain

An authentication failure report.
--x
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: Receiver/2.1
Version: 1
Original-Envelope-Id: env-77
Auth-Failure: dmarc
Source-IP: 2001:db8::25
Reported-Domain: Example.COM
Incidents: 3

--x
Content-Type: text/rfc822-headers

Message-ID: <m77@example.com>
From: ceo@example.com
To: Grace <grace@receiver.example>, lin@receiver.example

--x--
`, nil)
	fb := rep.Feedback
	if rep.Kind != bounce.KindFeedback || fb == nil || fb.Type != "auth-failure" || fb.AuthFailure != "dmarc" ||
		fb.SourceIP != netip.MustParseAddr("2001:db8::25") || fb.Incidents != 3 || !reflect.DeepEqual(fb.ReportedDomain, []string{"example.com"}) ||
		rep.OriginalEnvelopeID != "env-77" {
		t.Fatalf("report %+v feedback %+v", rep, fb)
	}
	checkRecipients(t, rep.Recipients, []bounce.Recipient{
		{Address: "grace@receiver.example", Reason: bounce.ReasonFeedback},
		{Address: "lin@receiver.example", Reason: bounce.ReasonFeedback},
	})
}

// An automatic reply (RFC 3834 §5: Auto-Submitted: auto-replied) is no
// bounce: its recipient is the person who is away.
func TestRFC3834AutoReply(t *testing.T) {
	t.Parallel()
	rep := parse(t, `From: Grace Hopper <grace@example.net>
To: bounces+9@em.example.com
Subject: Re: Weekly
Auto-Submitted: auto-replied (vacation)
Precedence: bulk
In-Reply-To: <q314159@em.example.com>

I am away until Monday, and will answer then.
`, nil)
	if rep.Kind != bounce.KindAutoReply || rep.Format != "rfc3834" || rep.Kind.IsBounce() {
		t.Errorf("Kind %q Format %q", rep.Kind, rep.Format)
	}
	checkRecipients(t, rep.Recipients, []bounce.Recipient{{Address: "grace@example.net", Reason: bounce.ReasonVacation, Diagnostic: "Re: Weekly"}})

	// Exchange marks its out-of-office replies by subject, not by field.
	rep = parse(t, "From: lin@example.net\nTo: a@example.com\nSubject: Automatic reply: Weekly\n\nOut of office.\n", nil)
	if rep.Kind != bounce.KindAutoReply {
		t.Errorf("Automatic reply: Kind %q", rep.Kind)
	}

	// A bounce carries Auto-Submitted too (RFC 3464 does not forbid it):
	// it stays a bounce.
	rep = parse(t, strings.Replace(rfc3464Simple, "MIME-Version: 1.0", "Auto-Submitted: auto-replied\nMIME-Version: 1.0", 1), nil)
	if rep.Kind != bounce.KindDSN {
		t.Errorf("DSN with Auto-Submitted: Kind %q", rep.Kind)
	}
}

// The deviations of real DSNs from RFC 3464 that Parse tolerates, each
// seen in the corpus, in messages written for the test.
func TestDSNDeviations(t *testing.T) {
	t.Parallel()
	type rcpt struct {
		addr, status string
		action       bounce.Action
		reply        int
		hard         bool
	}
	const head = "From: MAILER-DAEMON@mx.example.org\nTo: s@example.com\nSubject: Returned mail\nMIME-Version: 1.0\n"
	tests := []struct {
		name string
		msg  string
		want []rcpt
	}{{
		name: "no blank lines between the groups",
		msg: head + `Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Final-Recipient: rfc822; a@example.net
Action: failed
Status: 5.1.1
Final-Recipient: rfc822; b@example.net
Action: failed
Status: 5.2.2
--b--
`,
		want: []rcpt{{"a@example.net", "5.1.1", bounce.ActionFailed, 0, true}, {"b@example.net", "5.2.2", bounce.ActionFailed, 0, false}},
	}, {
		name: "address types missing or wrong, fields out of order",
		msg: head + `Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Action: failed
Status: 5.0.0
Final-Recipient: <a@example.net>

Original-Recipient: <b@example.net>
Action: failed
Diagnostic-Code: smtp; 550 5.1.1 no such user

Final-Recipient: RFC822;<c@example.net>
Action: failed
Status: 5.0.0 (permanent failure)
Diagnostic-Code: 554 5.7.1 rejected by policy
--b--
`,
		want: []rcpt{
			{"a@example.net", "5.0.0", bounce.ActionFailed, 0, false},
			{"b@example.net", "5.1.1", bounce.ActionFailed, 550, true},
			{"c@example.net", "5.7.1", bounce.ActionFailed, 554, false},
		},
	}, {
		name: "report part sent as text/plain",
		msg: head + `Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: text/plain

Delivery failed.
--b
Content-Type: text/plain

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; a@example.net
Action: failed
Status: 5.1.2
Diagnostic-Code: X-Postfix; Host or domain name not found
--b--
`,
		want: []rcpt{{"a@example.net", "5.1.2", bounce.ActionFailed, 0, true}},
	}, {
		name: "multipart without its boundary parameter",
		msg: head + `Content-Type: multipart/report; report-type=delivery-status;

This is a MIME-encapsulated message.

--0123456789.boundary/mx.example.org
Content-Type: text/plain

Delivery failed.

--0123456789.boundary/mx.example.org
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; a@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <a@example.net>... User Unknown

--0123456789.boundary/mx.example.org--
`,
		want: []rcpt{{"a@example.net", "5.1.1", bounce.ActionFailed, 550, true}},
	}, {
		name: "fields in a plain text message",
		msg: head + `Content-Type: text/plain

An error occurred while trying to deliver the mail to the following recipients:
a@example.net

Technical report:

Reporting-MTA: dns; mx.example.org
Action: failed
Final-Recipient: rfc822; a@example.net
Diagnostic-Code: smtp; 550 5.2.1 <a@example.net>... Mailbox disabled
Status: 5.2.1
`,
		want: []rcpt{{"a@example.net", "5.2.1", bounce.ActionFailed, 550, true}},
	}, {
		name: "the remote server's code beats a generic Status",
		msg: head + `Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: message/delivery-status

Final-Recipient: rfc822; a@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.7.1 IP address blacklisted by recipient
--b--
`,
		want: []rcpt{{"a@example.net", "5.7.1", bounce.ActionFailed, 550, false}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := parse(t, tc.msg, nil)
			if rep.Kind != bounce.KindDSN {
				t.Fatalf("Kind %q", rep.Kind)
			}
			var got []rcpt
			for _, r := range rep.Recipients {
				got = append(got, rcpt{r.Address, r.Status, r.Action, r.ReplyCode, r.Hard})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// A report part that cannot be read gives a report of kind Unknown, not
// an error and not a panic; input that is no message gives ErrSyntax.
func TestMalformed(t *testing.T) {
	t.Parallel()
	for name, msg := range map[string]string{
		"report part of garbage": "From: MAILER-DAEMON@mx.example.org\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n\x00\x01\xff\xfe not a field\n::::\n--b--\n",
		"report part cut short":  "From: MAILER-DAEMON@mx.example.org\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.exa",
		"feedback report empty":  "From: fbl@isp.example\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\n\n--b\nContent-Type: message/feedback-report\n\n--b--\n",
		"base64 that is not":     "From: MAILER-DAEMON@mx.example.org\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!!****\n--b--\n",
		"no parts at all":        "From: someone@example.org\nContent-Type: multipart/mixed; boundary=b\n\nnothing here\n",
		"plain letter":           "From: someone@example.org\nTo: a@example.com\nSubject: hello\n\nJust a letter.\n",
	} {
		rep, err := bounce.Parse(strings.NewReader(msg), nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if rep.Kind != bounce.KindUnknown || len(rep.Recipients) != 0 {
			t.Errorf("%s: Kind %q, recipients %+v", name, rep.Kind, rep.Recipients)
		}
	}
	for _, msg := range []string{"", "\n\nbody only", "no header here\n"} {
		if _, err := bounce.Parse(strings.NewReader(msg), nil); !errors.Is(err, bounce.ErrSyntax) {
			t.Errorf("Parse(%q): %v, want ErrSyntax", msg, err)
		}
	}
}
