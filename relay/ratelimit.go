package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter is a Sender that keeps to a quota of messages and of
// recipients per interval, such as a smart-host provider sets on an account,
// before it hands each message on.
//
// Each quota is a token bucket (golang.org/x/time/rate): a message takes one
// token of the message bucket and one token of the recipient bucket per
// recipient of its envelope; the buckets refill steadily, Messages and
// Recipients tokens per Interval, and hold at most their bursts. A message
// with more recipients than the recipient burst is not refused: it waits
// until its recipients have been earned.
//
// When the buckets are short, Send waits for its turn rather than refuse:
// turns are given in the order of the calls to Send, and the message is
// handed on once its turn comes. When the turn would come after ctx's
// deadline (compared with RateLimitOptions.Now), or after MaxWait, Send does not wait:
// it gives back its place in the buckets and returns a temporary *Reply,
// 451 4.7.0 (a 4xx, RFC 5321 §4.2.1; 4.7.0 is a policy status, RFC 3463
// §3.8, as providers answer when a rate limit is reached), without calling
// the next Sender. A queue
// retries it later like any deferral; a Failover around RateLimiters, one
// per provider, takes it as a provider that refused for now, and tries the
// next. When ctx ends during the wait, Send
// gives back its place and returns ctx's error.
//
// A message counts against the quota once it is handed on, whatever the
// next Sender's outcome: a provider that counts only accepted messages is
// then kept to a little less than its quota, never more.
//
// A RateLimiter is safe for concurrent use.
type RateLimiter struct {
	next  Sender
	o     RateLimitOptions
	mu    sync.Mutex // makes the reservations of one message together
	msgs  *rate.Limiter
	rcpts *rate.Limiter
}

// RateLimitOptions are the quotas of a RateLimiter and its optional
// settings. At least one of Messages and Recipients must be set.
type RateLimitOptions struct {
	// Messages is the number of messages per Interval; 0 for no limit on
	// messages.
	Messages int
	// Recipients is the number of recipients per Interval, counted over
	// all messages; 0 for no limit on recipients.
	Recipients int
	// Interval is the period of the quotas. Default one second.
	Interval time.Duration
	// MessageBurst is the most messages that may go at once after a quiet
	// time. Default Messages: a whole Interval's quota.
	MessageBurst int
	// RecipientBurst is the most recipients that may go at once after a
	// quiet time. Default Recipients.
	RecipientBurst int
	// MaxWait, when positive, is the longest Send waits for its turn; a
	// longer wait is refused as one past ctx's deadline is. Default 0: no
	// limit but ctx's.
	MaxWait time.Duration
	// Now is the clock of the buckets, also compared with ctx's deadline.
	// Default time.Now.
	Now func() time.Time
	// Wait waits d, or until ctx ends, when it returns ctx's error.
	// Default: a timer.
	Wait func(ctx context.Context, d time.Duration) error
	// Logger gets one debug record per message that waits or is refused.
	// Default: none.
	Logger *slog.Logger
}

// NewRateLimiter returns a RateLimiter that hands messages on to next.
func NewRateLimiter(next Sender, opts *RateLimitOptions) (*RateLimiter, error) {
	if next == nil {
		return nil, errors.New("relay: NewRateLimiter: next Sender is nil")
	}
	if opts == nil || opts.Messages == 0 && opts.Recipients == 0 {
		return nil, errors.New("relay: NewRateLimiter: no quota: set Messages or Recipients")
	}
	o := *opts
	if o.Messages < 0 || o.Recipients < 0 || o.Interval < 0 || o.MessageBurst < 0 || o.RecipientBurst < 0 || o.MaxWait < 0 {
		return nil, errors.New("relay: NewRateLimiter: negative quota, interval, burst or wait")
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.MessageBurst == 0 {
		o.MessageBurst = o.Messages
	}
	if o.RecipientBurst == 0 {
		o.RecipientBurst = o.Recipients
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Wait == nil {
		o.Wait = waitTimer
	}
	l := &RateLimiter{next: next, o: o}
	if o.Messages > 0 {
		l.msgs = rate.NewLimiter(rate.Limit(float64(o.Messages)/o.Interval.Seconds()), o.MessageBurst)
	}
	if o.Recipients > 0 {
		l.rcpts = rate.NewLimiter(rate.Limit(float64(o.Recipients)/o.Interval.Seconds()), o.RecipientBurst)
	}
	return l, nil
}

// Send waits for the message's turn and hands it on; see RateLimiter.
func (l *RateLimiter) Send(ctx context.Context, env *Envelope, msg Message) (*Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := l.o.Now()
	rs, delay := l.reserve(now, len(env.To))
	if delay > 0 {
		deadline, hasDeadline := ctx.Deadline()
		if l.o.MaxWait > 0 && delay > l.o.MaxWait || hasDeadline && now.Add(delay).After(deadline) {
			l.cancel(rs, now)
			l.log("relay: rate limit: refused", env, delay)
			return nil, &Reply{
				Code:     451,
				Enhanced: EnhancedCode{4, 7, 0},
				Message:  fmt.Sprintf("Rate limit: next turn in %v", delay.Round(time.Millisecond)),
			}
		}
		l.log("relay: rate limit: waiting", env, delay)
		if err := l.o.Wait(ctx, delay); err != nil {
			l.cancel(rs, l.o.Now())
			return nil, err
		}
	}
	return l.next.Send(ctx, env, msg)
}

// reserve takes the tokens of a message to n recipients and returns the
// reservations and the wait before all of them are earned.
func (l *RateLimiter) reserve(now time.Time, n int) ([]*rate.Reservation, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rs []*rate.Reservation
	var delay time.Duration
	take := func(lim *rate.Limiter, k int) {
		r := lim.ReserveN(now, k)
		rs = append(rs, r)
		delay = max(delay, r.DelayFrom(now))
	}
	if l.msgs != nil {
		take(l.msgs, 1)
	}
	if l.rcpts != nil {
		// ReserveN refuses more than the burst at once; in parts of at
		// most the burst, the bucket goes into debt, and the last part
		// waits until the whole debt is paid.
		for n > 0 {
			k := min(n, l.o.RecipientBurst)
			take(l.rcpts, k)
			n -= k
		}
	}
	return rs, delay
}

// cancel gives back the tokens of rs, the latest first, so that each
// reservation is undone whole.
func (l *RateLimiter) cancel(rs []*rate.Reservation, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(rs) - 1; i >= 0; i-- {
		rs[i].CancelAt(now)
	}
}

func (l *RateLimiter) log(msg string, env *Envelope, delay time.Duration) {
	if l.o.Logger != nil {
		l.o.Logger.Debug(msg, "recipients", len(env.To), "wait", delay)
	}
}

// waitTimer waits d, or until ctx ends.
func waitTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
