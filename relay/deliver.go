package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

// The defaults of DelivererOptions.
const (
	DefaultWorkers       = 16
	DefaultRetryBackoff  = time.Minute
	DefaultRetryFactor   = 2
	DefaultMaxRetry      = time.Hour
	DefaultRetryJitter   = 0.2
	DefaultMaxAge        = 5 * 24 * time.Hour
	DefaultShutdownGrace = 30 * time.Second
	DefaultMaxReturn     = 10 << 20
)

// errShutdown is the cause of a delivery cancelled by a shutdown whose
// grace period ran out.
var errShutdown = errors.New("relay: shutting down")

// Deliverer delivers the messages of a Queue through a Sender (the
// smart-host client, a Failover, an MXSender) and holds the policy of
// delivery common to every queue: retries, expiry, and delivery status
// notifications.
//
// For each message it leases, it sends to the recipients still pending,
// in one Send, extending the lease at every third of its time while the
// Send lasts. It records each recipient's outcome: a 2xx reply is
// delivered, a 5xx bounced, a 4xx reply or a transaction that failed
// without one (no connection) leaves the recipient pending; a 5xx reply
// to the transaction bounces every recipient of the Send. It saves the
// entry as soon as the Send returns, so that a crash after a delivery
// does not repeat it, and then emits an event per recipient: delivered,
// bounced (Hard for a 5xx) or deferred.
//
// Recipients newly bounced get a DSN (see below). Then, when no recipient
// is pending the message is done; otherwise it is retried after a backoff
// that starts at RetryBackoff and grows by RetryFactor with each attempt,
// up to MaxRetry, less a random fraction (RetryJitter), and no later than
// MaxAge after the message was accepted. An attempt that ends with
// recipients pending past MaxAge bounces them, expired (status 4.4.7,
// RFC 3463 §3.5).
//
// A DSN of failure (RFC 3464, a multipart/report built with go-message)
// goes to the sender of the message (Entry.Sender) after each attempt that
// bounced a recipient, about those recipients, from the null reverse-path,
// through the same queue, so that it is delivered with retries too. It
// returns the message's header, or the whole message when the sender
// asked RET=FULL (RFC 3461 §4.3) and it is no larger than MaxReturn. No
// DSN goes to the null sender (RFC 5321 §4.5.5: a bounce is never
// bounced), nor about a recipient whose NOTIFY is NEVER or lacks FAILURE
// (RFC 3461 §4.1). Once the DSN is queued the recipients are marked
// RcptDSNSent, and the entry stored with the retry or the message done: a
// crash between the DSN's commit and that store sends the DSN twice, the
// one duplicate this order allows rather than a DSN lost.
//
// When the context of Run ends, the deliveries under way go on for up to
// ShutdownGrace; those still under way then are cancelled, and their
// messages released for a new attempt at once (Retry at now), with what
// their Sends reported kept.
type Deliverer struct {
	q Queue
	s Sender
	o DelivererOptions
}

// DelivererOptions are the optional settings of a Deliverer. nil means
// every default.
type DelivererOptions struct {
	// Workers is the number of messages delivered at once. Default
	// DefaultWorkers.
	Workers int
	// RetryBackoff is the delay after the first attempt of a message
	// that left recipients pending; each further attempt multiplies it by
	// RetryFactor, up to MaxRetry. RFC 5321 §4.5.4.1 asks for at least 30
	// minutes between attempts to a host; a smart host that is expected to
	// answer soon can take less. Defaults DefaultRetryBackoff (1 minute),
	// DefaultRetryFactor (2), DefaultMaxRetry (1 hour).
	RetryBackoff time.Duration
	RetryFactor  float64
	MaxRetry     time.Duration
	// RetryJitter is the largest fraction of each delay taken off at
	// random, between 0 and 1, so that messages deferred together are not
	// all tried again together. Default DefaultRetryJitter; negative for
	// none.
	RetryJitter float64
	// MaxAge is how long after it was accepted a message is tried: then
	// its pending recipients bounce, expired. RFC 5321 §4.5.4.1: "at least
	// 4-5 days". Default DefaultMaxAge (5 days).
	MaxAge time.Duration
	// ShutdownGrace is how long the deliveries under way may go on once
	// the context of Run has ended. Default DefaultShutdownGrace;
	// negative for none.
	ShutdownGrace time.Duration
	// Hostname names this relay in DSNs (Reporting-MTA, From). Default
	// the name of the machine (os.Hostname).
	Hostname string
	// MaxReturn is the size of the largest message a DSN returns whole
	// when its sender asked RET=FULL; a larger one is returned as its
	// header. Default DefaultMaxReturn (10 MiB); negative: always the
	// header.
	MaxReturn int64
	// Events receives an event per recipient and attempt (delivered,
	// deferred, bounced) and one accepted event per DSN queued. Default:
	// none.
	Events Events
	// Suppressions receives the recipients that bounce hard during
	// delivery: a 5xx reply, at RCPT or after DATA (the latter only in a
	// transaction of that one recipient, as the reply to the whole
	// transaction does not say which recipient it is about), whose status
	// says the address itself will fail again (bounce.ClassifyReply: 5.1.1 no such
	// mailbox, 5.1.2 no such domain, 5.1.6 moved, 5.1.10 null MX ...; not
	// 5.7.1, a policy refusal, nor 5.2.2, a full mailbox) is added for the
	// message's account, so that the Server refuses the recipient from
	// then on. A message without an account (from a trusted network) adds
	// nothing. A failure to add is logged at error level and does not
	// hold up the delivery. Default nil: none.
	Suppressions Suppressions
	// Metrics counts the outcome of each recipient (delivered, deferred,
	// bounced) with its reason and the time since the message was
	// accepted. Default: none.
	Metrics Metrics
	// Now is the clock of backoffs, expiry and events; give it the
	// queue's. Default time.Now.
	Now func() time.Time
	// Rand is the randomness of the jitter, eight octets per retry, read
	// as a big-endian integer. Default math/rand/v2.
	Rand io.Reader
	// Logger gets a debug record per attempt, and an error record when
	// the state of a message cannot be stored. Default: none.
	Logger *slog.Logger
}

// NewDeliverer returns a Deliverer of the messages of q through s. opts
// may be nil.
func NewDeliverer(q Queue, s Sender, opts *DelivererOptions) (*Deliverer, error) {
	if q == nil || s == nil {
		return nil, errors.New("relay: NewDeliverer: nil Queue or Sender")
	}
	var o DelivererOptions
	if opts != nil {
		o = *opts
	}
	if o.Workers < 0 || o.RetryBackoff < 0 || o.MaxRetry < 0 || o.MaxAge < 0 {
		return nil, errors.New("relay: NewDeliverer: negative Workers, RetryBackoff, MaxRetry or MaxAge")
	}
	if o.RetryFactor != 0 && o.RetryFactor < 1 || math.IsNaN(o.RetryFactor) {
		return nil, fmt.Errorf("relay: NewDeliverer: RetryFactor %v is less than 1", o.RetryFactor)
	}
	if o.RetryJitter > 1 {
		return nil, fmt.Errorf("relay: NewDeliverer: RetryJitter %v is more than 1", o.RetryJitter)
	}
	defaultTo(&o.Workers, DefaultWorkers)
	defaultTo(&o.RetryBackoff, DefaultRetryBackoff)
	defaultTo(&o.RetryFactor, DefaultRetryFactor)
	defaultTo(&o.MaxRetry, max(DefaultMaxRetry, o.RetryBackoff))
	defaultTo(&o.MaxAge, DefaultMaxAge)
	defaultTo(&o.ShutdownGrace, DefaultShutdownGrace)
	defaultTo(&o.MaxReturn, DefaultMaxReturn)
	if o.MaxRetry < o.RetryBackoff {
		return nil, fmt.Errorf("relay: NewDeliverer: MaxRetry %v is less than RetryBackoff %v", o.MaxRetry, o.RetryBackoff)
	}
	switch {
	case o.RetryJitter == 0:
		o.RetryJitter = DefaultRetryJitter
	case o.RetryJitter < 0:
		o.RetryJitter = 0
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
		defaultTo(&o.Hostname, "localhost")
	}
	if o.Events == nil {
		o.Events = EventsFunc(func(context.Context, *Event) {})
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NopMetrics{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{q: q, s: s, o: o}, nil
}

// defaultTo sets *v to def when it is the zero value.
func defaultTo[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Run delivers with Workers workers until ctx ends, then lets the
// deliveries under way finish (see Deliverer) and returns nil. It returns
// ErrQueueClosed when the queue is closed under it, once the deliveries
// under way have ended; their outcomes cannot be stored then, and their
// messages will be sent again from the queue's last saved state (at least
// once), so a shutdown ends Run first and closes the queue after. Other
// errors of Lease are logged, and leasing goes on after a second.
func (d *Deliverer) Run(ctx context.Context) error {
	// lease ends the leasing: when ctx ends, or when the queue is closed.
	lease, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	// send is the context of the deliveries: it ends ShutdownGrace after
	// lease, or when every worker has returned.
	send, cancelSend := context.WithCancelCause(context.WithoutCancel(ctx))
	var grace sync.WaitGroup
	grace.Go(func() {
		select {
		case <-lease.Done():
		case <-send.Done():
			return
		}
		if d.o.ShutdownGrace < 0 {
			cancelSend(errShutdown)
			return
		}
		t := time.NewTimer(d.o.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSend(errShutdown)
		case <-send.Done():
		}
	})
	var wg sync.WaitGroup
	for range d.o.Workers {
		wg.Go(func() {
			if err := d.work(lease, send); err != nil {
				stop(err)
			}
		})
	}
	wg.Wait()
	cancelSend(nil)
	grace.Wait()
	if err := context.Cause(lease); errors.Is(err, ErrQueueClosed) {
		return err
	}
	return nil
}

// work leases messages until lease ends or the queue is closed, and
// delivers them under send.
func (d *Deliverer) work(lease, send context.Context) error {
	for lease.Err() == nil {
		l, err := d.q.Lease(lease)
		switch {
		case err == nil:
			d.deliver(send, l)
			continue
		case lease.Err() != nil:
			return nil
		case errors.Is(err, ErrQueueClosed):
			return err
		}
		d.o.Logger.Error("relay: lease", "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-t.C:
		case <-lease.Done():
			t.Stop()
		}
	}
	return nil
}

// deliver makes one attempt at the message of l, and ends the lease. ctx
// ends when a shutdown's grace period is over: the Send is then cancelled.
func (d *Deliverer) deliver(ctx context.Context, l Lease) {
	e := l.Entry()
	// What follows the Send is done even after ctx has ended: a shutdown
	// leaves every message in order.
	keep := context.WithoutCancel(ctx)
	var interrupted bool
	if pending := pendingIndexes(e); len(pending) > 0 {
		var err error
		interrupted, err = d.attempt(ctx, l, pending)
		if err != nil {
			d.logStoreError(e, "save", err)
			return
		}
		if !interrupted {
			d.expire(keep, e)
		}
	}
	retry := interrupted || len(pendingIndexes(e)) > 0
	if err := d.notify(keep, l); err != nil {
		d.o.Logger.Error("relay: queue a DSN", "id", e.ID, "err", err)
		retry = true
	}
	var err error
	switch {
	case interrupted:
		err = l.Retry(keep, d.o.Now())
	case retry:
		err = l.Retry(keep, d.retryAt(e))
	default:
		err = l.Done(keep)
	}
	if err != nil {
		d.logStoreError(e, "end lease", err)
	}
}

func (d *Deliverer) logStoreError(e *Entry, op string, err error) {
	if errors.Is(err, ErrLeaseLost) {
		// Another worker has the message, or will: the attempt is theirs.
		d.o.Logger.Debug("relay: lease lost", "id", e.ID, "op", op)
		return
	}
	d.o.Logger.Error("relay: store the state of a message", "id", e.ID, "op", op, "err", err)
}

// allDelivered reports whether every recipient of e is delivered.
func allDelivered(e *Entry) bool {
	for _, r := range e.Rcpts {
		if r.Status != RcptDelivered {
			return false
		}
	}
	return true
}

// pendingIndexes returns the indexes of the recipients of e still pending.
func pendingIndexes(e *Entry) []int {
	var out []int
	for i, r := range e.Rcpts {
		if r.Status == RcptPending {
			out = append(out, i)
		}
	}
	return out
}

// attempt sends the message of l to the recipients pending, records and
// saves their outcomes, and emits their events. It reports whether a
// shutdown (the end of ctx) cancelled the Send; an error is that of Save.
func (d *Deliverer) attempt(ctx context.Context, l Lease, pending []int) (interrupted bool, err error) {
	e := l.Entry()
	env := e.Envelope
	env.To = make([]Recipient, len(pending))
	for k, i := range pending {
		env.To[k] = e.Envelope.To[i]
	}
	e.Attempts++

	sendCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		d.watch(ctx, l, cancel, done)
	}()
	rc, sendErr := d.s.Send(sendCtx, &env, l.Message())
	close(done)
	<-watched
	interrupted = sendErr != nil && errors.Is(context.Cause(sendCtx), errShutdown)

	outcomes := d.outcomes(rc, sendErr, len(pending))
	for k, i := range pending {
		o := outcomes[k]
		r := &e.Rcpts[i]
		if o.reply != nil {
			r.Reply = o.reply
			r.Host = o.host
		}
		r.Status = o.status
	}
	keep := context.WithoutCancel(ctx)
	// A message now delivered to every recipient is removed by Done at
	// once, with nothing to report: saving its state first would cost two
	// more syncs for the one case a crash in between makes a duplicate.
	if !allDelivered(e) {
		if err := l.Save(keep); err != nil {
			return interrupted, err
		}
	}

	now := d.o.Now()
	var delivered, deferred, bounced int
	for k, i := range pending {
		o := outcomes[k]
		r := e.Rcpts[i]
		ev := d.event(e, r, now)
		ev.Reply, ev.Host = o.reply, o.host
		switch o.status {
		case RcptDelivered:
			delivered++
			ev.Type = EventDelivered
		case RcptBounced:
			bounced++
			ev.Type, ev.Hard = EventBounced, true
			// A reply to the whole transaction of several recipients
			// does not say which one it is about.
			if !o.whole || len(pending) == 1 {
				d.suppress(keep, e, r.Addr, o.reply, now)
			}
		default:
			deferred++
			if interrupted {
				continue
			}
			ev.Type = EventDeferred
			if o.reply == nil && o.err != nil {
				ev.Reason = o.err.Error()
			}
		}
		reason := ""
		if ev.Type != EventDelivered {
			reason = replyReason(o.reply)
		}
		d.o.Metrics.Recipient(ev.Type, reason, now.Sub(e.Created))
		d.o.Events.Emit(keep, ev)
	}
	attrs := []any{"id", e.ID, "attempt", e.Attempts, "delivered", delivered, "deferred", deferred, "bounced", bounced}
	if sendErr != nil {
		attrs = append(attrs, "err", sendErr)
	}
	d.o.Logger.Debug("relay: delivery attempt", attrs...)
	return interrupted, nil
}

// suppress adds rcpt to the suppressions of e's account when reply, the
// permanent failure it got, is hard (see DelivererOptions.Suppressions).
func (d *Deliverer) suppress(ctx context.Context, e *Entry, rcpt string, reply *Reply, now time.Time) {
	if d.o.Suppressions == nil || e.Account == "" || reply == nil {
		return
	}
	reason, hard := bounce.ClassifyReply(reply.Code, reply.Enhanced.String(), reply.Message)
	if !hard {
		return
	}
	err := d.o.Suppressions.Add(ctx, Suppression{Account: e.Account, Recipient: rcpt, Source: SuppressedByBounce,
		Reason: reply.Error(), QueueID: e.ID, Created: now})
	if err != nil {
		d.o.Logger.Error("relay: add a suppression", "id", e.ID, "account", e.Account, "rcpt", rcpt, "err", err)
		return
	}
	d.o.Logger.Debug("relay: recipient suppressed", "id", e.ID, "account", e.Account, "rcpt", rcpt, "reason", reason)
}

// watch extends the lease of l at every third of its time, and cancels
// the Send when the lease is lost, until done is closed.
func (d *Deliverer) watch(ctx context.Context, l Lease, cancel context.CancelCauseFunc, done <-chan struct{}) {
	leaseTime := l.Deadline().Sub(d.o.Now())
	if leaseTime <= 0 {
		return
	}
	t := time.NewTicker(max(leaseTime/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := l.Extend(context.WithoutCancel(ctx), leaseTime); err != nil {
				cancel(fmt.Errorf("relay: extend lease: %w", err))
				return
			}
		}
	}
}

// outcome is what a Send says of one recipient.
type outcome struct {
	status RcptStatus
	reply  *Reply
	host   string
	err    error // the error of the transaction, if any
	// whole says reply is the transaction's (to MAIL, DATA or the end of
	// the content), not the recipient's own.
	whole bool
}

// outcomes reads what a Send returned as the outcome of each of its n
// recipients.
func (d *Deliverer) outcomes(rc *Receipt, err error, n int) []outcome {
	out := make([]outcome, n)
	if rc != nil && len(rc.Rcpts) != n {
		err = errors.Join(err, fmt.Errorf("relay: the Sender returned %d results for %d recipients", len(rc.Rcpts), n))
		rc = nil
	}
	var txReply *Reply
	if err != nil {
		errors.As(err, &txReply)
	}
	for k := range out {
		o := outcome{status: RcptPending, err: err, reply: txReply}
		if rc != nil {
			o.reply, o.host = rc.Rcpts[k].Reply, rc.Host
		}
		o.whole = txReply != nil && o.reply != nil && *o.reply == *txReply
		switch {
		case o.reply == nil:
		case o.reply.Code/100 == 2 && err == nil:
			o.status = RcptDelivered
		case o.reply.Permanent():
			o.status = RcptBounced
		}
		out[k] = o
	}
	return out
}

// expire bounces the recipients still pending when the message is older
// than MaxAge.
func (d *Deliverer) expire(ctx context.Context, e *Entry) {
	now := d.o.Now()
	if now.Before(e.Created.Add(d.o.MaxAge)) {
		return
	}
	for i := range e.Rcpts {
		r := &e.Rcpts[i]
		if r.Status != RcptPending {
			continue
		}
		r.Status, r.Expired = RcptBounced, true
		ev := d.event(e, *r, now)
		ev.Type, ev.Reply, ev.Host = EventBounced, r.Reply, r.Host
		ev.Reason = "delivery time expired"
		d.o.Metrics.Recipient(EventBounced, "expired", now.Sub(e.Created))
		d.o.Events.Emit(ctx, ev)
	}
}

func (d *Deliverer) event(e *Entry, r RcptState, now time.Time) *Event {
	return &Event{
		Time:      now,
		QueueID:   e.ID,
		MessageID: e.MessageID,
		Account:   e.Account,
		From:      e.Sender,
		Rcpt:      r.Addr,
		Attempt:   e.Attempts,
	}
}

// retryAt is when to try the message again: after the backoff of its
// attempts so far, and no later than its expiry.
func (d *Deliverer) retryAt(e *Entry) time.Time {
	now := d.o.Now()
	n := max(e.Attempts, 1)
	delay := float64(d.o.RetryBackoff) * math.Pow(d.o.RetryFactor, float64(n-1))
	delay = min(delay, float64(d.o.MaxRetry))
	delay -= delay * d.o.RetryJitter * randFloat64(d.o.Rand)
	at := now.Add(time.Duration(delay))
	if expiry := e.Created.Add(d.o.MaxAge); at.After(expiry) {
		at = expiry
		if at.Before(now) {
			at = now
		}
	}
	return at
}

// notify queues a DSN about the recipients bounced that want one, and
// marks every bounced recipient RcptDSNSent. When the DSN cannot be
// queued they stay bounced, for the next attempt.
func (d *Deliverer) notify(ctx context.Context, l Lease) error {
	e := l.Entry()
	var bounced, report []int
	for i, r := range e.Rcpts {
		if r.Status != RcptBounced {
			continue
		}
		bounced = append(bounced, i)
		if e.Sender != "" && wantsFailureDSN(e.Envelope.To[i]) {
			report = append(report, i)
		}
	}
	if len(report) > 0 {
		if err := d.queueDSN(ctx, l, report); err != nil {
			return err
		}
	}
	for _, i := range bounced {
		e.Rcpts[i].Status = RcptDSNSent
	}
	return nil
}

// queueDSN writes the DSN about the recipients report of l's message into
// the queue.
func (d *Deliverer) queueDSN(ctx context.Context, l Lease, report []int) error {
	e := l.Entry()
	n := &dsn{
		Hostname:  d.o.Hostname,
		MessageID: rand.Text() + "@" + d.o.Hostname,
		Date:      d.o.Now(),
		Entry:     e,
		Rcpts:     report,
		MaxFull:   d.o.MaxReturn,
	}
	w, err := d.q.Create(ctx)
	if err != nil {
		return err
	}
	if err := n.write(w, l.Message()); err != nil {
		w.Abort()
		return err
	}
	de := &Entry{
		Envelope:  n.envelope(l.Message()),
		Account:   e.Account,
		MessageID: "<" + n.MessageID + ">",
	}
	if err := w.Commit(ctx, de); err != nil {
		w.Abort()
		return err
	}
	d.o.Events.Emit(ctx, &Event{
		Type:      EventAccepted,
		Time:      de.Created,
		QueueID:   de.ID,
		MessageID: de.MessageID,
		Account:   de.Account,
		Rcpt:      e.Sender,
		Reason:    "delivery status notification for " + e.ID,
	})
	d.o.Logger.Debug("relay: DSN queued", "id", e.ID, "dsn", de.ID, "rcpts", len(report))
	return nil
}
