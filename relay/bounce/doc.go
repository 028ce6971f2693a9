// Package bounce reads the reports that come back to a return path: RFC
// 3464 delivery status notifications, the plain-text bounces of MTAs that
// write none, RFC 5965 feedback reports and RFC 3834 auto-replies.
//
// Parse reads one received message and returns a Report: what kind of
// report it is (Kind), and for each recipient it concerns the enhanced
// status (RFC 3463), the SMTP reply code, the diagnostic, the remote MTA,
// a Reason keyword, and whether the failure is hard: the address will fail
// again on retry, which is what a suppression list wants. A hard bounce is
// a permanent failure (class 5) whose reason is the address itself
// (unknown user or domain, a domain that accepts no mail, a mailbox moved
// or disabled); a policy block (5.7.1) or a full mailbox (5.2.2) is
// permanent for the message but not hard. The Report also carries what
// maps it back to the original message: the Original-Envelope-Id, the
// header of the returned message (Message-ID, From, To, Return-Path), and
// the address the report was sent to, a VERP return path bounces+<id>@...
//
// # What is recognised
//
// In order: an RFC 5965 feedback report (and RFC 6591 authentication
// failure reports); an RFC 3464 DSN, tolerant of what real ones do (no
// blank lines between groups, fields in any order, missing or wrong
// address types, RFC 6533 message/global-delivery-status with utf-8
// addresses, a report part sent as text/plain, a multipart without its
// boundary parameter, the fields written in a plain text); an Amazon SES
// notification (JSON); an RFC 3834 auto-reply; and the bounce texts of
// Postfix, Sendmail, Exim, qmail, Gmail, Exchange, Yahoo, OpenSMTPD,
// DragonFly, Domino, Lotus Notes, au/ezweb, KDDI, m-FILTER, IMail,
// MailFoundry, Amazon WorkMail, Biglobe and some others: each is known by
// the phrases of its introduction, and then the recipients are the
// addresses on lines of their own (or after a label) up to the line that
// introduces the returned message, each with the text after it. The
// table of formats is in plain.go; the phrases were written from the
// messages themselves.
//
// # Limits
//
// Parse reads through limits before it parses: Options.MaxBytes (10 MiB),
// MaxParts (100), MaxDepth (8) and MaxRecipients (1000). A message that
// exceeds one gives the report of what came before, with Report.Truncated
// naming the limit. Each header block is read up to 256 KiB and 1000
// fields, each report part up to 1 MiB, the text parts up to 256 KiB in
// all; memory does not grow with the message (a 50 MiB bounce allocates
// under 3 MiB, see TestLargeMessageMemory).
//
// # Agreement with Sisimai
//
// testdata holds 469 real bounces collected by the Sisimai project, with
// what Sisimai reports for each. TestCorpus measures, per family of
// messages (the file name without its number), the share whose recipient
// count agrees, whose status codes agree (an expected pseudo-code of
// Sisimai, x.0.9xx, accepts any status of its class) and whose hard/soft
// decisions agree:
//
//	go test ./relay/bounce -run TestCorpus -v
//
//	family                   msgs   rcpts  status    hard
//	arf                        12    100%    100%    100%
//	lhost-activehunter          1    100%    100%      0%
//	lhost-amavis                3    100%    100%    100%
//	lhost-amazonses            16    100%    100%     88%
//	lhost-amazonworkmail        5    100%     80%     80%
//	lhost-apachejames           1    100%    100%      0%
//	lhost-barracuda             2    100%    100%    100%
//	lhost-biglobe               1    100%    100%    100%
//	lhost-courier               3    100%    100%     67%
//	lhost-domino                3    100%    100%    100%
//	lhost-dragonfly            24    100%    100%     96%
//	lhost-einsundeins           1    100%    100%    100%
//	lhost-exchange2003          5    100%    100%     80%
//	lhost-exchange2007          6    100%     83%    100%
//	lhost-exim                 32    100%     97%     97%
//	lhost-ezweb                 5    100%    100%     80%
//	lhost-fml                   2      0%      0%      0%
//	lhost-gmail                12    100%     92%    100%
//	lhost-gmx                   3    100%    100%    100%
//	lhost-googlegroups         11    100%    100%    100%
//	lhost-googleworkspace       1    100%    100%    100%
//	lhost-imailserver           4    100%    100%    100%
//	lhost-kddi                  3    100%    100%    100%
//	lhost-mailfoundry           1    100%    100%    100%
//	lhost-mailru                8    100%     88%     88%
//	lhost-mcafee                4    100%    100%     75%
//	lhost-messagingserver      10    100%    100%     70%
//	lhost-mfilter               3    100%    100%     33%
//	lhost-mxlogic               2    100%    100%    100%
//	lhost-notes                 3    100%    100%    100%
//	lhost-opensmtpd            11    100%     64%     91%
//	lhost-outlook               6    100%    100%    100%
//	lhost-postfix              54    100%    100%     91%
//	lhost-powermta              2    100%    100%     50%
//	lhost-qmail                20    100%    100%    100%
//	lhost-receivingses          7    100%    100%    100%
//	lhost-sendgrid              2    100%    100%    100%
//	lhost-sendmail             47    100%     96%     91%
//	lhost-surfcontrol           3    100%    100%     67%
//	lhost-v5sendmail            5    100%    100%    100%
//	lhost-verizon               2    100%    100%    100%
//	lhost-x1                    2    100%    100%      0%
//	lhost-x2                    4    100%    100%     75%
//	lhost-x3                    4    100%    100%    100%
//	lhost-x4                    1    100%    100%    100%
//	lhost-x5                    1    100%    100%    100%
//	lhost-x6                    2    100%    100%    100%
//	lhost-yahoo                11    100%    100%    100%
//	lhost-yandex                2    100%    100%    100%
//	lhost-zoho                  4    100%    100%     50%
//	rfc3464                    25     92%     92%     80%
//	rfc3834                     4    100%    100%    100%
//	rhost-aol                   5    100%    100%     80%
//	rhost-apple                 3    100%    100%    100%
//	rhost-cox                   1      0%      0%      0%
//	rhost-facebook              1    100%    100%    100%
//	rhost-franceptt             9    100%    100%    100%
//	rhost-godaddy               2    100%    100%    100%
//	rhost-google                6    100%    100%     83%
//	rhost-gsuite               11    100%    100%     91%
//	rhost-iua                   1    100%    100%    100%
//	rhost-kddi                  2    100%    100%     50%
//	rhost-messagelabs           2    100%    100%     50%
//	rhost-microsoft             4    100%    100%    100%
//	rhost-mimecast              2    100%    100%    100%
//	rhost-nttdocomo             2    100%    100%      0%
//	rhost-outlook               7    100%    100%    100%
//	rhost-tencent               3    100%    100%    100%
//	rhost-yahooinc              2    100%    100%    100%
//	total                     469   98.9%   96.6%   89.6%
//
// Of the 49 recipients whose hard/soft decision differs, 34 have a
// diagnostic that says "user unknown", "no such user" or "invalid
// address", which Sisimai reads as a filter of some receivers (Japanese
// carriers answer "User unknown" to mail their users' filters refuse) and
// this package as hard; 6 are disabled accounts ("The email account that
// you tried to reach is disabled"), soft for Sisimai and hard here, as the
// suppression list wants. Two files hold two messages each in mbox form,
// of which Parse reads the first.
//
// The package does not import package relay, so that relay can import it.
package bounce
