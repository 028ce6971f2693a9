package bounce

import (
	"net/netip"
	"time"
)

// Kind says what a received message is.
type Kind string

// The kinds of message Parse recognises.
const (
	// KindUnknown is a message Parse found no report in.
	KindUnknown Kind = "unknown"
	// KindDSN is a delivery status notification: a multipart/report of
	// report-type delivery-status (RFC 3464 §2), its per-message and
	// per-recipient fields where they are found in a text part, or an
	// Amazon SES delivery notification. A DSN may report a success
	// (Action delivered) or a delay as well as a failure.
	KindDSN Kind = "dsn"
	// KindBounce is a non-standard bounce: a text that names the failed
	// recipients after a known marker line (Report.Format names which),
	// or an Amazon SES notification.
	KindBounce Kind = "bounce"
	// KindFeedback is a feedback report: RFC 5965 ARF
	// (multipart/report; report-type=feedback-report), or a one-line
	// unsubscribe request of a mail client. It is not a bounce.
	KindFeedback Kind = "feedback"
	// KindAutoReply is an automatic reply (RFC 3834: a vacation notice,
	// an out-of-office answer). It is not a bounce: the recipient exists.
	KindAutoReply Kind = "autoreply"
)

// IsBounce reports whether k says a delivery failed or was delayed: a
// DSN or a non-standard bounce. Feedback reports and auto-replies are not.
func (k Kind) IsBounce() bool { return k == KindDSN || k == KindBounce }

// Limit names the limit of Options that stopped a parse early.
type Limit string

// The limits of Parse.
const (
	LimitSize       Limit = "size"       // Options.MaxBytes
	LimitParts      Limit = "parts"      // Options.MaxParts
	LimitDepth      Limit = "depth"      // Options.MaxDepth
	LimitRecipients Limit = "recipients" // Options.MaxRecipients
)

// Action is the Action field of a DSN recipient (RFC 3464 §2.3.3), in
// lower case: failed, delayed, delivered, relayed or expanded. Non-standard
// bounces say failed or delayed; other values found in DSNs are kept.
type Action string

// The actions of RFC 3464 §2.3.3.
const (
	ActionFailed    Action = "failed"
	ActionDelayed   Action = "delayed"
	ActionDelivered Action = "delivered"
	ActionRelayed   Action = "relayed"
	ActionExpanded  Action = "expanded"
)

// Report is what Parse read in one received message.
type Report struct {
	// Kind says what the message is.
	Kind Kind
	// Format names the form the report was read from: "rfc3464" (a
	// delivery-status part, or its fields in a text part), "rfc5965",
	// "rfc3834", "amazonses", "unsubscribe", or the name of a
	// non-standard bounce format ("postfix", "sendmail", "exim", "qmail",
	// "exchange", "gmail" ..., "other" for a text in no format this
	// package names). Empty for KindUnknown.
	Format string
	// Truncated names the limit that stopped the parse before the end of
	// the message, empty when the whole message was read. What was read
	// before the limit is reported; with LimitRecipients the recipients
	// beyond Options.MaxRecipients are left out.
	Truncated Limit

	// The per-message fields of a DSN (RFC 3464 §2.2): the MTA that wrote
	// it (the name after "dns;"), the ENVID the original message was sent
	// with (RFC 3461 §4.4), and when that MTA received it.
	ReportingMTA       string
	OriginalEnvelopeID string
	ArrivalDate        time.Time

	// Recipients are the recipients the report is about, in its order:
	// the per-recipient blocks of a DSN, the addresses a bounce names,
	// the Original-Rcpt-To fields of a feedback report, or the sender of
	// an auto-reply. An Address may be empty when the report names none
	// and the returned message has no To.
	Recipients []Recipient

	// Original is what the report holds of the original message, which
	// maps the report back to it.
	Original Original

	// BounceTo is the address the report was sent to: Options.EnvelopeTo
	// when given, else the first address of the To field. For a message
	// sent with a VERP return path it is bounces+<id>@... (the caller
	// reads the id from it).
	BounceTo string

	// Feedback holds the fields of a feedback report (RFC 5965 §3.1,
	// §3.2); nil for other kinds.
	Feedback *Feedback
}

// Original is what a report holds of the message it is about: the header
// fields of the returned message or headers part (message/rfc822,
// message/global, text/rfc822-headers; RFC 3462 §1, RFC 6522) or of the
// copy a plain-text bounce appends.
type Original struct {
	MessageID  string    // without angle brackets
	From       string    // the address of the From field
	To         []string  // the addresses of the To field
	Subject    string    // decoded (RFC 2047)
	Date       time.Time // zero when absent or unreadable
	ReturnPath string    // the Return-Path field, without angle brackets
}

// Recipient is the outcome a report gives for one recipient.
type Recipient struct {
	// Address is the recipient: the Final-Recipient of a DSN (RFC 3464
	// §2.3.2) without its address type, or the address a bounce names.
	Address string
	// OriginalAddress is the Original-Recipient of a DSN (RFC 3464
	// §2.3.1), the address the sender gave, when it differs.
	OriginalAddress string
	// Action is the Action of a DSN (RFC 3464 §2.3.3); for a bounce,
	// failed or delayed as the text says.
	Action Action
	// Status is the enhanced status code (RFC 3463) "class.subject.detail":
	// the code in the remote server's reply when the Diagnostic-Code is
	// an SMTP reply that has one, else the DSN's Status (RFC 3464
	// §2.3.4), else the code in a bounce's text. When none is given it is
	// "5.0.0" or "4.0.0" by the class of the reply code or of the notice
	// (a delay warning is 4), and empty for feedback and auto-replies.
	Status string
	// ReplyCode is the SMTP reply code (RFC 5321 §4.2) of the remote
	// server's answer, 0 when the report quotes none.
	ReplyCode int
	// Diagnostic is the remote server's answer or the reason the report
	// gives, in one line (RFC 3464 §2.3.6 Diagnostic-Code, without its
	// type). DiagnosticType is that type ("smtp", "x-unix" ...), empty for
	// bounces.
	Diagnostic     string
	DiagnosticType string
	// RemoteMTA is the server that gave the answer (RFC 3464 §2.3.5, the
	// name after "dns;"), when the report names it.
	RemoteMTA string
	// LastAttempt is the Last-Attempt-Date (RFC 3464 §2.3.7); zero when
	// absent.
	LastAttempt time.Time
	// Reason says why, as one keyword (see Reason).
	Reason Reason
	// Hard says the failure will not change on retry: the recipient's
	// address, mailbox or domain does not exist, has moved or is disabled,
	// and the failure is permanent. It is what a suppression list wants,
	// and is not the same as a 5.x.x status: a policy block (5.7.1) or a
	// full mailbox (5.2.2) is permanent for this message but not hard.
	Hard bool
}

// Feedback holds the fields of an RFC 5965 feedback report (§3.1, §3.2).
type Feedback struct {
	// Type is the Feedback-Type: abuse, fraud, virus, other, not-spam
	// (RFC 5965 §7.3, RFC 6650), auth-failure (RFC 6591), or the value
	// given; "opt-out" for a client's unsubscribe request.
	Type      string
	UserAgent string
	Version   string
	// OriginalMailFrom and OriginalRcptTo are the envelope of the reported
	// message, without angle brackets.
	OriginalMailFrom string
	OriginalRcptTo   []string
	ArrivalDate      time.Time
	SourceIP         netip.Addr
	ReportedDomain   []string
	ReportedURI      []string
	// Incidents is the number of incidents the report stands for, 1 when
	// the field is absent (RFC 5965 §3.2).
	Incidents int
	// AuthFailure is the Auth-Failure field of an authentication failure
	// report (RFC 6591 §3.1): dkim, spf, dmarc, adsp, bodyhash, revoked,
	// signature.
	AuthFailure string
}
