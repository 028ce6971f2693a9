package bounce

import (
	"regexp"
	"strconv"
	"strings"
)

// Reason says in one keyword why a recipient bounced, from the remote
// server's answer, the report's text and the status code.
type Reason string

// The reasons. Those marked hard make Recipient.Hard true when the
// failure is permanent (class 5): they describe the recipient's address,
// which a retry will not change.
const (
	ReasonUserUnknown   Reason = "userunknown"   // hard: no such mailbox (X.1.1, X.1.3, X.1.0 "address rejected")
	ReasonHostUnknown   Reason = "hostunknown"   // hard: no such domain or host (X.1.2, X.4.4)
	ReasonHasMoved      Reason = "hasmoved"      // hard: the mailbox has moved (X.1.6)
	ReasonNotAccept     Reason = "notaccept"     // hard: the domain accepts no mail: null MX (RFC 7505, X.1.10), X.3.2
	ReasonDisabled      Reason = "disabled"      // hard: the mailbox or account is disabled or closed (X.2.1, X.7.13)
	ReasonSuspended     Reason = "suspended"     // the mailbox is suspended or frozen for now
	ReasonMailboxFull   Reason = "mailboxfull"   // over quota (X.2.2)
	ReasonTooBig        Reason = "toobig"        // the message is larger than accepted (X.2.3, X.3.4)
	ReasonFiltered      Reason = "filtered"      // a filter of the recipient refused it
	ReasonBlocked       Reason = "blocked"       // the sending host or IP is refused (block list, no PTR, reputation)
	ReasonSpamDetected  Reason = "spamdetected"  // the content was judged spam
	ReasonVirusDetected Reason = "virusdetected" // the content was judged malware
	ReasonAuthFailure   Reason = "authfailure"   // SPF, DKIM or DMARC failed (X.7.20-X.7.26)
	ReasonPolicy        Reason = "policy"        // refused by a policy of the receiver (X.7.x)
	ReasonNoRelaying    Reason = "norelaying"    // the server refuses to relay
	ReasonRejected      Reason = "rejected"      // the sender address was refused (X.1.7, X.1.8, X.7.27)
	ReasonRateLimited   Reason = "ratelimited"   // too much, too fast: try later
	ReasonExpired       Reason = "expired"       // delivery was given up after retries (X.4.7)
	ReasonNetworkError  Reason = "networkerror"  // no connection, no route, a loop (X.4.1, X.4.2, X.4.6)
	ReasonSystemError   Reason = "systemerror"   // a fault of a server on the way (X.3.x, X.4.3, X.4.5)
	ReasonSyntaxError   Reason = "syntaxerror"   // a protocol error (X.5.x)
	ReasonContentError  Reason = "contenterror"  // the message is malformed for the receiver (X.6.x)
	ReasonDelivered     Reason = "delivered"     // a DSN of success (class 2)
	ReasonFeedback      Reason = "feedback"      // a feedback report (RFC 5965)
	ReasonVacation      Reason = "vacation"      // an auto-reply (RFC 3834)
	ReasonUndefined     Reason = "undefined"     // no reason could be told
)

// Hard reports whether r describes the recipient's address itself, so
// that a permanent failure for it will not change on retry.
func (r Reason) Hard() bool {
	switch r {
	case ReasonUserUnknown, ReasonHostUnknown, ReasonHasMoved, ReasonNotAccept, ReasonDisabled:
		return true
	}
	return false
}

// pattern maps a phrase of a diagnostic, lower-cased, to a reason.
type pattern struct {
	reason Reason
	re     *regexp.Regexp
}

func p(reason Reason, expr string) pattern {
	return pattern{reason, regexp.MustCompile(expr)}
}

// patterns are tried in order on the diagnostic text, in lower case and
// without URLs: the phrases of soft refusals that mention the recipient
// ("recipient address rejected: access denied") come before the phrases
// of unknown users, and those before the generic ones. Each phrase is
// taken from real answers of servers.
var patterns = []pattern{
	p(ReasonRateLimited, `receiving mail at a rate|rate limit|too many (messages|connections|recipients|concurrent)|unexpected volume|daily (relay )?quota|sending (too fast|rate)|exceeded .*sending limit`),
	p(ReasonAuthFailure, `\bdmarc\b|\bspf\b|\bdkim\b|unauthenticated (e-?mail|mail|senders)|authentication checks? failed|not pass .*authentication|sender authentication`),
	p(ReasonVirusDetected, `virus|malware|infected|malicious`),
	p(ReasonSpamDetected, `blacklisted url|\buribl\b|\bsurbl\b`),
	p(ReasonBlocked, `spamhaus|spamcop|dnsbl|\brbl\b|black ?list|block ?list`),
	p(ReasonSpamDetected, `spam|\bube\b|unsolicited|junk mail|bulk mail|message content rejected|content presents a potential`),
	p(ReasonNoRelaying, `relay(ing)? (access )?(denied|not permitted|not allowed|prohibited)|insecure mail relay|not permitted to relay|unable to relay|we do not relay|email address is not verified|no relaying`),
	p(ReasonFiltered, `recipient preferences|domain filter|content filter|message filtered|filtered by`),
	p(ReasonBlocked, `black ?list|block ?list|dnsbl|spamhaus|spamcop|\brbl\b|banned sending ip|reverse dns|\bptr\b|\brdns\b|client host rejected|blocked|bloquee|reputation|unverifyable sending ip|service refuse|not allowed to send|not authorized to send from|your ip|ip address .*(listed|rejected)|messages from [0-9.]+ |messages from .* weren't sent|access denied\.\.\.|please use the smtp server|host network not allowed`),
	p(ReasonRejected, `sender address rejected|sender was rejected|sender .*(rejected|refused|denied|not allowed)|unroutable sender|sender domain|domain of sender|from: .*domain is invalid|provide a valid from|rejected for policy .* mail from|mail from .* rejected|not a member of|my name was rejected`),
	p(ReasonHasMoved, `has moved|no longer (on|at|with) (this )?(server|us)|not our (user|customer)|no forwarding address|moved permanently`),
	p(ReasonDisabled, `account (is |has been )?(disabled|deactivated|closed|terminated)|(mailbox|user|account|address) (is )?(inactive|disabled|deactivated)|inactive (e-?mail|account|mailbox|user)|disabled or discontinued|account .*disabled`),
	p(ReasonSuspended, `suspend|frozen|on hold|\blocked\b`),
	p(ReasonNetworkError, `host not found, try again|malformed or unexpected name server reply|temporary failure in name resolution`),
	p(ReasonNotAccept, `does not accept (e-?)?mail|not accepting (network )?messages|null mx|no smtp service|couldn't find a mail exchanger|no mx (record )?found|no mx record|accepts no mail`),
	p(ReasonHostUnknown, `host unknown|unknown host|host not found|host or domain name not found|domain (name )?not found|no such domain|domain does not exist|domain doesn't exist|unrouteable address|couldn't find any host|invalid domain|(^|\s)[^@\s]+\.[a-z]{2,}\.? does not exist|dns lookup failure: host|name or service not known|no such host|domain is not reachable|host name lookup fail`),
	p(ReasonUserUnknown, `user unknown|unknown user|no such (user|mailbox|recipient|address|account|person)|user not found|user (does not|doesn't) exist|recipient not found|recip(ient)?notfound|mailbox not found|mailbox (does not|doesn't) exist|mailbox unavailable|no mailbox|invalid (recipient|mailbox|user|address)|unknown (recipient|address|mailbox|local part|alias)|not listed in|recipient name is not recognized|illegal (user|alias)|(does not|doesn't) have an? .* account|account .*(does not|doesn't) exist|not a valid (mailbox|user|recipient)|addressee unknown|adresse .*invalide|undeliverable address|account that you tried to reach does not exist|no valid recipients|user .* not found|recipient address rejected: (user unknown|unknown user|access denied)|recipient (is )?unknown|mailbox is unavailable|delivery userid|not a registered|address (couldn't|could not) be found|address not found`),
	p(ReasonMailboxFull, `mailbox (is )?full|over ?quota|quota exceeded|exceeded (storage|quota|its quota)|storage (quota|space)|out of storage|mailbox size limit|mailfolder is full|exceeds allowed size|recipient's mailbox exceeded|inbox is full|disk quota|insufficient (disk|storage)|full mailbox|mailbox .* full`),
	p(ReasonTooBig, `message (is )?too (large|big)|size limit|message size exceeds|exceeds (the )?(fixed )?maximum (message )?size|message length exceeds|too large`),
	p(ReasonExpired, `retry timeout exceeded|message expired|queue\.expired|envelope expired|could not deliver for the last|did not accept our requests to connect|delivery time expired|timeout exceeded|has been in the queue too long|giving up|not delivered within|aborted after`),
	p(ReasonNetworkError, `connection (timed out|refused|reset)|no route to host|network (error|unreachable)|timed out|unable to connect|could not connect|socket error|too many hops|mail loop|loop detected|routing loop|name service error|host not reachable|not reachable|could not find a gateway|nxdomain|lookup of .* responded|dns error|unable to establish|establish an smtp connection`),
	p(ReasonContentError, `8-bit data|header error|headers too large|duplicate header|multiple addresses in from|not rfc ?5322 compliant|rfc 5322|malformed (message|header)|message header`),
	p(ReasonSyntaxError, `syntax error|command (not|unrecognized)|improper sequence|bad sequence|malformed address|parameter not implemented|command parameter`),
	p(ReasonPolicy, `policy|not allowed|denied|not permitted|not authorized|not accepted|rejected`),
	p(ReasonFiltered, `filter`),
	p(ReasonSystemError, `system error|internal (server )?error|service (currently )?unavailable|temporary (failure|problem|error)|try again later|write error|mailer error|local delivery failed|server error|transaction failed|child status|could not load`),
}

// senderStage finds the SMTP stage the text says failed before any
// recipient was named (the greeting, EHLO, MAIL FROM), in the words of
// Exim, Sendmail, DragonFly and Postfix: such a failure is about the
// sender or its host, never a recipient's address.
var senderStage = regexp.MustCompile(`(?i)after (initial connection|mail from|helo|ehlo)|>>> mail from|did not like our (mail from|greeting|helo|ehlo)|in reply to (mail from|helo|ehlo)|refused to talk to me`)

// classify sets rc.Reason and rc.Hard from its diagnostic, status, reply
// code and action. stage is the text that tells in which SMTP stage the
// failure came; it may be empty.
func classify(rc *Recipient, stage string) {
	if rc.Action == ActionDelivered || rc.Action == ActionRelayed || rc.Action == ActionExpanded || strings.HasPrefix(rc.Status, "2.") {
		rc.Reason = ReasonDelivered
		rc.Hard = false
		return
	}
	text := strings.ToLower(withoutURLs(rc.Diagnostic))
	senderFailed := senderStage.MatchString(stage) || senderStage.MatchString(rc.Diagnostic)
	rc.Reason = ""
	for _, pt := range patterns {
		if senderFailed && pt.reason.Hard() {
			continue
		}
		if pt.re.MatchString(text) {
			rc.Reason = pt.reason
			break
		}
	}
	switch r := statusReason(rc.Status); {
	case r == "" || senderFailed && r.Hard():
	case rc.Reason == "" || rc.Reason == ReasonPolicy:
		// The code says more than a generic refusal.
		rc.Reason = r
	case r == ReasonMailboxFull && rc.Reason.Hard():
		// "550 5.2.2 ... Invalid address": the remote server's own code
		// tells which of its words to believe.
		rc.Reason = r
	}
	if senderFailed && rc.Reason == "" {
		rc.Reason = ReasonRejected
	}
	if rc.Reason == "" {
		rc.Reason = ReasonUndefined
	}
	rc.Hard = rc.Reason.Hard() && permanent(rc)
}

// ClassifyReply returns the reason and hardness of a remote server's
// reply to a recipient, as Parse decides them for a recipient of a
// report: code is the reply code (RFC 5321 §4.2), status its enhanced
// status code (RFC 3463) or "", text the reply's text. A relay that gets
// the reply itself, during its own delivery, uses it to decide whether
// the recipient goes on a suppression list: hard is true only for a
// permanent failure (class 5) that is about the address itself (5.1.1,
// 5.1.2, 5.1.6, 5.1.10 ...), never for a policy block (5.7.1) or a full
// mailbox (5.2.2).
func ClassifyReply(code int, status, text string) (reason Reason, hard bool) {
	rc := &Recipient{Action: ActionFailed, Status: status, ReplyCode: code, Diagnostic: text}
	if code/100 == 4 {
		rc.Action = ActionDelayed
	}
	classify(rc, "")
	return rc.Reason, rc.Hard
}

// permanent reports whether rc failed for good: its status is of class 5
// (RFC 3463 §3.1), or, without a status, its reply code is 5yz (RFC 5321
// §4.2.1) or its action failed.
func permanent(rc *Recipient) bool {
	switch {
	case rc.Status != "":
		return rc.Status[0] == '5'
	case rc.ReplyCode != 0:
		return rc.ReplyCode/100 == 5
	}
	return rc.Action == ActionFailed
}

// statusReason maps an enhanced status code (RFC 3463 §3, the registry of
// RFC 5248, RFC 7372 and RFC 7505 codes) to a reason; "" when the code
// says nothing more than its class.
func statusReason(status string) Reason {
	_, subject, detail, ok := splitStatus(status)
	if !ok {
		return ""
	}
	switch subject {
	case 1:
		switch detail {
		case 0, 1, 3:
			return ReasonUserUnknown
		case 2:
			return ReasonHostUnknown
		case 6:
			return ReasonHasMoved
		case 7, 8:
			return ReasonRejected
		case 10:
			return ReasonNotAccept
		}
	case 2:
		switch detail {
		case 1:
			return ReasonDisabled
		case 2:
			return ReasonMailboxFull
		case 3:
			return ReasonTooBig
		case 4:
			return ReasonSystemError
		}
	case 3:
		switch detail {
		case 2:
			return ReasonNotAccept
		case 4:
			return ReasonTooBig
		}
		return ReasonSystemError
	case 4:
		switch detail {
		case 1, 2, 6:
			return ReasonNetworkError
		case 4:
			return ReasonHostUnknown
		case 7:
			return ReasonExpired
		}
		return ReasonSystemError
	case 5:
		return ReasonSyntaxError
	case 6:
		return ReasonContentError
	case 7:
		switch {
		case detail == 13:
			return ReasonDisabled
		case detail == 25:
			return ReasonBlocked
		case detail == 27:
			return ReasonRejected
		case detail >= 20 && detail <= 26:
			return ReasonAuthFailure
		case detail == 1 || detail == 0:
			return ReasonPolicy
		}
		return ReasonPolicy
	}
	return ""
}

// splitStatus splits "class.subject.detail".
func splitStatus(s string) (class, subject, detail int, ok bool) {
	a, rest, ok1 := strings.Cut(s, ".")
	b, c, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	class, err1 = strconv.Atoi(a)
	subject, err2 = strconv.Atoi(b)
	detail, err3 = strconv.Atoi(c)
	return class, subject, detail, err1 == nil && err2 == nil && err3 == nil
}
