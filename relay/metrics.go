package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-smtp"
)

// Metrics receives the counts of a relay, for monitoring: the Server
// calls it for each message accepted or refused and each failed
// authentication, the Deliverer for each outcome of a recipient. The
// methods must be safe for concurrent use and must not block. Package
// relay uses no metrics library; a program adapts Metrics to the one it
// uses (Prometheus, expvar, OpenTelemetry). Queue depth and the age of
// the oldest message are read from the queue (Spool.Stats), not counted.
type Metrics interface {
	// MessageAccepted counts a message queued (250 after DATA) for the
	// account ("" for a trusted network), with its number of recipients.
	MessageAccepted(account string, rcpts int)
	// MessageRefused counts a command of a mail transaction (MAIL, RCPT,
	// DATA) refused; reason is the enhanced status code of the reply
	// (RFC 3463), such as "5.7.1", or its basic code when it has none.
	MessageRefused(reason string)
	// AuthFailed counts a failed AUTH (RFC 4954): wrong credentials.
	AuthFailed()
	// Recipient counts the outcome of one recipient: EventDelivered,
	// EventDeferred, EventBounced or EventDropped. reason is the enhanced
	// status code of the remote reply (RFC 3463), "expired" for a message
	// past its MaxAge, "no reply" when no server answered (a connection
	// or DNS failure), "suppressed" for a recipient a Server dropped,
	// and "" for a delivery. latency is the time from
	// the message's acceptance to this outcome.
	Recipient(outcome EventType, reason string, latency time.Duration)
}

// NopMetrics counts nothing. Embed it in a Metrics implementation to
// leave some methods out.
type NopMetrics struct{}

func (NopMetrics) MessageAccepted(string, int)                {}
func (NopMetrics) MessageRefused(string)                      {}
func (NopMetrics) AuthFailed()                                {}
func (NopMetrics) Recipient(EventType, string, time.Duration) {}

// replyReason is the reason label of a reply: its enhanced status code,
// or its basic code.
func replyReason(r *Reply) string {
	switch {
	case r == nil:
		return "no reply"
	case r.Enhanced != (EnhancedCode{}):
		return r.Enhanced.String()
	default:
		return fmt.Sprint(r.Code)
	}
}

// smtpReason is the reason label of an error a session returns.
func smtpReason(err error) string {
	var se *smtp.SMTPError
	switch {
	case !errors.As(err, &se):
		return "other"
	case se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode:
		return fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	default:
		return fmt.Sprint(se.Code)
	}
}
