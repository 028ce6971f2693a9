package relay

import (
	"context"
	"time"
)

// EventType is what happened to a message or one of its recipients.
type EventType string

// The events of message tracking.
const (
	EventAccepted   EventType = "accepted"   // the relay answered 250 to the message
	EventDeferred   EventType = "deferred"   // a recipient failed for now; it will be tried again
	EventDelivered  EventType = "delivered"  // a server accepted a recipient
	EventBounced    EventType = "bounced"    // a recipient failed for good, or a bounce came back for it
	EventDropped    EventType = "dropped"    // a recipient was not sent to on purpose (suppressed)
	EventSpamReport EventType = "spamreport" // a feedback report (RFC 5965) came back for it
)

// Event is one step of a message's life, for tracking. Fields that do not
// apply are empty.
type Event struct {
	Type      EventType `json:"event"`
	Time      time.Time `json:"time"`
	QueueID   string    `json:"queue_id"`
	MessageID string    `json:"message_id,omitempty"`
	Account   string    `json:"account,omitempty"`
	// From is the sender the client gave; Rcpt the recipient concerned.
	From string `json:"from,omitempty"`
	Rcpt string `json:"rcpt,omitempty"`
	// Reply is the remote server's reply; Host that server (the remote
	// MTA); Attempt the delivery attempt, from 1.
	Reply   *Reply `json:"reply,omitempty"`
	Host    string `json:"host,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Hard says a bounce is permanent (a 5.x.x status) rather than soft.
	Hard bool `json:"hard,omitempty"`
	// Reason says why, in words: the reason of a drop, of an expiry.
	Reason string `json:"reason,omitempty"`
}

// Events receives the events of message tracking. Emit must not block for
// long; an implementation that sends them elsewhere buffers. Emit is
// called from many goroutines, and events of one message may come out of
// order (a message's accepted event is emitted after its commit, when a
// worker may already be delivering it): order them by Time.
type Events interface {
	Emit(ctx context.Context, e *Event)
}

// EventsFunc adapts a function to Events.
type EventsFunc func(ctx context.Context, e *Event)

// Emit calls f.
func (f EventsFunc) Emit(ctx context.Context, e *Event) { f(ctx, e) }
