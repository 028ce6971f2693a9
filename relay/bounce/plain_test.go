package bounce_test

import (
	"reflect"
	"testing"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

// The non-standard bounce formats, each in a message written for the test
// in the form the MTA uses (as the corpus shows it), with what Parse must
// read from it.
func TestBounceTexts(t *testing.T) {
	t.Parallel()
	type rcpt struct {
		Addr   string
		Action bounce.Action
		Status string
		Reply  int
		Reason bounce.Reason
		Hard   bool
	}
	tests := []struct {
		name, format string
		msg          string
		want         []rcpt
		messageID    string
	}{{
		name:   "Exim: address, then the SMTP error indented",
		format: "exim",
		msg: `From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: bounces+1@em.example.com
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: gone@example.net, full@example.net

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.net
    (generated from alias@example.com)
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    host mx.example.net [192.0.2.7]: 550 5.1.1 <gone@example.net>:
    Recipient address rejected: User unknown in local recipient table
  full@example.net
    SMTP error from remote mail server after RCPT TO:<full@example.net>:
    host mx.example.net [192.0.2.7]: 552 5.2.2 Mailbox full

------ This is a copy of the message, including all the headers. ------

Return-path: <bounces+1@em.example.com>
Message-ID: <m1@em.example.com>
To: gone@example.net, full@example.net
Subject: hello

hello
`,
		want: []rcpt{
			{"gone@example.net", bounce.ActionFailed, "5.1.1", 550, bounce.ReasonUserUnknown, true},
			{"full@example.net", bounce.ActionFailed, "5.2.2", 552, bounce.ReasonMailboxFull, false},
		},
		messageID: "m1@em.example.com",
	}, {
		name:   "Exim delay warning: delayed, never hard",
		format: "exim",
		msg: `From: Mail Delivery System <Mailer-Daemon@mx.example.org>
Subject: Warning: message 1abc-000 delayed 24 hours

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mx.example.org.

The address to which the message has not yet been delivered is:

  slow@example.net
    host mx.example.net [192.0.2.7]
    Delay reason: SMTP error from remote mail server after RCPT TO:<slow@example.net>:
    450 4.2.1 Mailbox temporarily disabled

No action is required on your part.
`,
		want: []rcpt{{"slow@example.net", bounce.ActionDelayed, "4.2.1", 450, bounce.ReasonDisabled, false}},
	}, {
		name:   "Exim: the sender was refused, not the recipient",
		format: "exim",
		msg: `From: Mail Delivery System <Mailer-Daemon@mx.example.org>
Subject: Mail delivery failed: returning message to sender

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  someone@example.net
    host mx.example.net [192.0.2.7]
    SMTP error from remote mail server after MAIL FROM:<x@em.example.com>:
    550 5.1.8 Domain of sender address x@em.example.com does not exist
`,
		want: []rcpt{{"someone@example.net", bounce.ActionFailed, "5.1.8", 550, bounce.ReasonRejected, false}},
	}, {
		name:   "Postfix without a DSN: <address>: host said",
		format: "postfix",
		msg: `From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender

This is the Postfix program at host mx.example.org.

I'm sorry to have to inform you that the message returned
below could not be delivered to one or more destinations.

<gone@example.net>: host mx.example.net[192.0.2.7] said: 550
    <gone@example.net>: User unknown (in reply to RCPT TO command)
<blocked@example.org>: host mx.example.org[192.0.2.8] said: 554 5.7.1
    Service unavailable; Client host [198.51.100.1] blocked using
    zen.spamhaus.org (in reply to RCPT TO command)
`,
		want: []rcpt{
			{"gone@example.net", bounce.ActionFailed, "5.0.0", 550, bounce.ReasonUserUnknown, true},
			{"blocked@example.org", bounce.ActionFailed, "5.7.1", 554, bounce.ReasonBlocked, false},
		},
	}, {
		name:   "qmail: no SMTP code, qmail's own status",
		format: "qmail",
		msg: `From: MAILER-DAEMON@mx.example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nohost@nxdomain.example>:
Sorry, I couldn't find any host named nxdomain.example. (#5.1.2)

--- Below this line is a copy of the message.
`,
		want: []rcpt{{"nohost@nxdomain.example", bounce.ActionFailed, "5.1.2", 0, bounce.ReasonHostUnknown, true}},
	}, {
		name:   "Sendmail transcript: the remote answer before each address",
		format: "sendmail",
		msg: `From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
Subject: Returned mail: User unknown

   ----- Transcript of session follows -----
While talking to mx.example.net:
>>> RCPT To:<gone@example.net>
<<< 550 Requested mailbox not found
550 <gone@example.net>... User unknown
554 <other@nxdomain.example>... 550 Host unknown (Authoritative answer from name server)

   ----- Unsent message follows -----
`,
		want: []rcpt{
			{"gone@example.net", bounce.ActionFailed, "5.0.0", 550, bounce.ReasonUserUnknown, true},
			{"other@nxdomain.example", bounce.ActionFailed, "5.0.0", 550, bounce.ReasonHostUnknown, true},
		},
	}, {
		name:   "Gmail groups: X-Failed-Recipients, not the address greeted",
		format: "other",
		msg: `From: Mail Delivery Subsystem <mailer-daemon@googlemail.example>
Subject: Delivery Status Notification (Failure)
X-Failed-Recipients: list@groups.example.org

Hello sender@em.example.com,
sender@em.example.com is not allowed to post to the group you tried to contact (list).
`,
		want: []rcpt{{"list@groups.example.org", bounce.ActionFailed, "5.0.0", 0, bounce.ReasonPolicy, false}},
	}, {
		name:   "Amazon SES notification in JSON",
		format: "amazonses",
		msg: `From: no-reply@sns.example.com
Subject: AWS Notification Message

{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"gone@example.net","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"reportingMTA":"dns; a1.smtp-out.example.com"},"mail":{"messageId":"0101abc","source":"bounces+2@em.example.com","commonHeaders":{"from":["em@example.com"],"to":["gone@example.net"],"messageId":"<m2@em.example.com>","subject":"hi"}}}
`,
		want:      []rcpt{{"gone@example.net", bounce.ActionFailed, "5.1.1", 550, bounce.ReasonUserUnknown, true}},
		messageID: "m2@em.example.com",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := parse(t, tc.msg, nil)
			if rep.Kind != bounce.KindBounce || rep.Format != tc.format {
				t.Errorf("Kind %q Format %q, want bounce %q", rep.Kind, rep.Format, tc.format)
			}
			var got []rcpt
			for _, r := range rep.Recipients {
				got = append(got, rcpt{r.Address, r.Action, r.Status, r.ReplyCode, r.Reason, r.Hard})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if rep.Original.MessageID != tc.messageID {
				t.Errorf("Original.MessageID %q, want %q", rep.Original.MessageID, tc.messageID)
			}
		})
	}
}

// An SES complaint is a feedback report, and its delivery notification a
// DSN of success: neither is a bounce.
func TestSESComplaintAndDelivery(t *testing.T) {
	t.Parallel()
	rep := parse(t, `From: no-reply@sns.example.com
Subject: AWS Notification Message

{"Type" : "Notification", "Message" : "{\"notificationType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":\"angry@example.net\"}],\"complaintFeedbackType\":\"abuse\",\"userAgent\":\"Feedback/1.0\"},\"mail\":{\"source\":\"em@example.com\"}}"}
`, nil)
	if rep.Kind != bounce.KindFeedback || rep.Feedback == nil || rep.Feedback.Type != "abuse" || rep.Feedback.UserAgent != "Feedback/1.0" ||
		len(rep.Recipients) != 1 || rep.Recipients[0].Address != "angry@example.net" || rep.Recipients[0].Reason != bounce.ReasonFeedback {
		t.Errorf("complaint: %+v %+v", rep, rep.Feedback)
	}
	rep = parse(t, `From: no-reply@sns.example.com
Subject: AWS Notification Message

{"notificationType":"Delivery","delivery":{"recipients":["ok@example.net"],"smtpResponse":"250 2.6.0 Message received","reportingMTA":"a1.smtp-out.example.com"},"mail":{"source":"em@example.com"}}
`, nil)
	if rep.Kind != bounce.KindDSN || len(rep.Recipients) != 1 || rep.Recipients[0].Action != bounce.ActionDelivered ||
		rep.Recipients[0].Status != "2.6.0" || rep.Recipients[0].ReplyCode != 250 || rep.Recipients[0].Reason != bounce.ReasonDelivered {
		t.Errorf("delivery: %+v", rep)
	}
}
