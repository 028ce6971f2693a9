package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrLeaseLost is returned by the methods of a Lease that has ended: it
// expired (another worker may hold the message now), Retry or Done ended
// it, or its queue was closed. The worker must leave the message alone: its
// outcome is for whoever leases it next.
var ErrLeaseLost = errors.New("relay: lease lost")

// ErrQueueClosed is returned by a Queue's Create and Lease once the queue
// is closed.
var ErrQueueClosed = errors.New("relay: queue closed")

// Queue keeps the messages the relay accepted until every recipient has
// been delivered or bounced. Writing is durable: once Commit returns, the
// message survives a crash. Delivery is at least once: a worker leases a
// message, records each recipient's outcome as it has it (Save), and then
// releases the message for a later attempt (Retry) or removes it (Done).
// A lease that is neither extended nor ended expires, and another worker
// takes the message over, with the recipient states last saved, so a
// recipient saved as delivered is not delivered again. Once its lease has
// expired, a worker's Save, Retry and Done fail with ErrLeaseLost.
//
// Every implementation has a clock (a Now func() time.Time in its
// options), which decides when a message is due and when a lease expires,
// and passes the tests of package relay/queuetest.
//
// The on-disk spool (NewSpool) is the default; relay/natsqueue puts the
// same contract on NATS JetStream for a fleet of relays. The Deliverer
// holds the policy (retries, backoff, expiry, DSNs) common to both.
type Queue interface {
	// Create starts a message: its content goes to the QueueWriter, and
	// Commit makes it durable.
	Create(ctx context.Context) (QueueWriter, error)
	// Lease waits until a message is due (its NextAttempt has come and
	// no worker holds it) and returns it leased to the caller; of the due
	// messages, the one with the earliest NextAttempt. It returns ctx's
	// error when ctx ends first. A message due when Lease is called is
	// returned even if ctx has already ended, so that a done ctx makes
	// Lease a poll.
	Lease(ctx context.Context) (Lease, error)
	// Close stops the queue: Create and Lease return ErrQueueClosed, and
	// the leases held end (ErrLeaseLost) with their messages as last
	// saved, to be leased again once their lease time has run out, or at
	// once by a queue opened anew on the same storage.
	Close() error
}

// QueueWriter takes the content of one message being queued.
type QueueWriter interface {
	io.Writer
	// Commit stores the message with its entry, whose ID, Created and
	// NextAttempt (both the queue's now: the message is due at once) it
	// sets, and whose Rcpts it fills from Envelope.To, all pending, when
	// it has none. An entry needs at least one recipient, and Rcpts, when
	// given, one per recipient of Envelope.To in order. When Commit
	// returns nil, the message and its entry are durable (written and
	// synced) and the ID names the message from then on. When it returns
	// an error the message is not accepted: this queue does not deliver
	// it, though a queue opened anew after a failed sync may (at least
	// once: the client, told to try again, sends it twice).
	Commit(ctx context.Context, e *Entry) error
	// Abort drops what was written. After Commit it does nothing.
	Abort() error
}

// Lease is a message leased to one worker.
type Lease interface {
	// Entry is the message's entry; the worker changes its recipients'
	// states and Attempts, then calls Save, Retry or Done.
	Entry() *Entry
	// Message is the content to deliver: Entry.Header, then what was
	// written to the QueueWriter.
	Message() Message
	// Deadline is when the lease expires unless it is extended. A worker
	// whose delivery may last longer calls Extend before then (the
	// Deliverer does at every third of the lease time).
	Deadline() time.Time
	// Extend keeps the lease until d from now, for a long delivery.
	Extend(ctx context.Context, d time.Duration) error
	// Save stores the entry durably, keeping the lease.
	Save(ctx context.Context) error
	// Retry stores the entry with NextAttempt set to at, and ends the
	// lease: the message is due again at at.
	Retry(ctx context.Context, at time.Time) error
	// Done removes the message, and ends the lease: every recipient has
	// a final state. The removal need not be durable when Done returns: a
	// crash just after it may bring the message back, to be delivered
	// again (at least once), but never loses one.
	Done(ctx context.Context) error
}

// Entry is what a queue keeps of a message besides its content.
type Entry struct {
	// ID names the message in the queue and in events; set by Commit.
	ID string `json:"id"`
	// Envelope is the envelope of delivery: its From is the rewritten
	// reverse-path (the return path or the SRS address).
	Envelope Envelope `json:"envelope"`
	// Sender is the reverse-path the client gave, to which DSNs go; ""
	// for the null sender, whose messages are never bounced (RFC 5321
	// §4.5.5).
	Sender string `json:"sender"`
	// Account is the name of the account (API key) that sent it, "" for a
	// trusted network.
	Account string `json:"account,omitempty"`
	// MessageID is the Message-ID field of the message, for events.
	MessageID string `json:"message_id,omitempty"`
	// Header holds header fields computed after the content was written
	// (the DKIM-Signature fields), delivered before it.
	Header []byte `json:"header,omitempty"`
	// Rcpts are the recipients' states, in the order of Envelope.To.
	Rcpts []RcptState `json:"rcpts"`
	// Created is when the message was accepted; NextAttempt when it is
	// due; Attempts how many deliveries were tried.
	Created     time.Time `json:"created"`
	NextAttempt time.Time `json:"next_attempt"`
	Attempts    int       `json:"attempts"`
}

// RcptStatus is the state of one recipient in the queue.
type RcptStatus string

// The states of a recipient.
const (
	RcptPending   RcptStatus = "pending"   // to be tried (again)
	RcptDelivered RcptStatus = "delivered" // a server accepted it
	RcptBounced   RcptStatus = "bounced"   // failed for good; a DSN may be due
	RcptDSNSent   RcptStatus = "dsn-sent"  // failed, and the DSN is queued (or none is due)
)

// RcptState is one recipient's state and its last reply.
type RcptState struct {
	Addr   string     `json:"addr"`
	Status RcptStatus `json:"status"`
	// Reply is the last reply for the recipient, nil before a try.
	Reply *Reply `json:"reply,omitempty"`
	// Host is the server that gave Reply.
	Host string `json:"host,omitempty"`
	// Expired says that the recipient bounced because the message
	// outlived the queue's maximum age while it was still pending (RFC
	// 3463 status 4.4.7); Reply is then the last reply before.
	Expired bool `json:"expired,omitempty"`
}

// Prepare makes e ready to commit, as a QueueWriter's Commit must: an
// entry needs at least one recipient; Rcpts, when given, needs one state
// per recipient of Envelope.To, in order; when nil, it is filled with
// every recipient pending.
func (e *Entry) Prepare() error {
	if len(e.Envelope.To) == 0 {
		return errors.New("relay: queue: entry without recipients")
	}
	if e.Rcpts == nil {
		e.Rcpts = make([]RcptState, len(e.Envelope.To))
		for i, to := range e.Envelope.To {
			e.Rcpts[i] = RcptState{Addr: to.Addr, Status: RcptPending}
		}
		return nil
	}
	return e.checkRcpts()
}

// Check checks an entry a queue reads back from its storage, so that the
// Deliverer can act on every field: at least one recipient, one state per
// recipient of Envelope.To in order, each with a known status and a reply
// code, when it has a reply, from 200 to 599; Created and NextAttempt
// set, and Attempts not negative. The queue checks the ID itself, against
// where it found the entry.
func (e *Entry) Check() error {
	if len(e.Envelope.To) == 0 {
		return errors.New("relay: queue: no recipients")
	}
	if err := e.checkRcpts(); err != nil {
		return err
	}
	for _, r := range e.Rcpts {
		switch r.Status {
		case RcptPending, RcptDelivered, RcptBounced, RcptDSNSent:
		default:
			return fmt.Errorf("relay: queue: recipient %q has status %q", r.Addr, r.Status)
		}
		if r.Reply != nil && (r.Reply.Code < 200 || r.Reply.Code > 599) {
			return fmt.Errorf("relay: queue: recipient %q has reply code %d", r.Addr, r.Reply.Code)
		}
	}
	if e.Created.IsZero() || e.NextAttempt.IsZero() || e.Attempts < 0 {
		return fmt.Errorf("relay: queue: created %v, next attempt %v, attempts %d", e.Created, e.NextAttempt, e.Attempts)
	}
	return nil
}

// checkRcpts checks that the entry has one state per recipient of its
// envelope, in order.
func (e *Entry) checkRcpts() error {
	if len(e.Rcpts) != len(e.Envelope.To) {
		return fmt.Errorf("relay: queue: %d recipient states for %d recipients", len(e.Rcpts), len(e.Envelope.To))
	}
	for i, r := range e.Rcpts {
		if r.Addr != e.Envelope.To[i].Addr {
			return fmt.Errorf("relay: queue: recipient state %d is for %q, not %q", i, r.Addr, e.Envelope.To[i].Addr)
		}
	}
	return nil
}

// Pending returns the recipients of the envelope still to deliver, with
// their DSN options.
func (e *Entry) Pending() []Recipient {
	var out []Recipient
	for i, r := range e.Rcpts {
		if r.Status == RcptPending && i < len(e.Envelope.To) {
			out = append(out, e.Envelope.To[i])
		}
	}
	return out
}
