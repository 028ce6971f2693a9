package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Failover is a Sender that sends through the first of an ordered list of
// Senders (smart hosts, typically) that takes the message, and rests the
// ones that fail.
//
// A Sender fails when it cannot be reached, or refuses the transaction for
// now: an error that is not a *Reply (no connection, a dropped connection,
// a TLS failure), or a temporary *Reply (4xx, RFC 5321 §4.2.1), 421 "service
// not available" included (§3.8). Failover then tries the next Sender and
// rests the one that failed: it is skipped while others are healthy, for a
// time that starts at Backoff and doubles with each consecutive failure up
// to MaxBackoff, less a random fraction (Jitter) so that relays that saw a
// host fail together do not all come back to it at once. Once its rest is
// over a Sender is tried again in its place in the list; a success ends its
// failures. When no healthy Sender takes the message (all failed, or all
// were resting) Failover tries, rather than fail, the resting Sender whose
// rest ends first and that it has not tried for this message. When every
// Sender tried failed, Send returns the last one's error.
//
// A permanent *Reply (5xx) for the transaction is returned at once, without
// trying another Sender and without resting this one, unless
// FailoverOptions.FailOverPermanent is set. A permanent refusal is about the
// message or its envelope (RFC 5321 §4.2.1: the client "SHOULD NOT repeat
// the exact request"): a policy or content rejection, an unknown sender, a
// message too large. Another host of the same service would refuse it the same way,
// and sending it elsewhere would only look like an attempt to get around the
// refusal.
//
// A Receipt is returned as it came, including its per-recipient failures:
// the Sender took the message, and the recipients it refused for now
// (4xx to RCPT TO or to the end of DATA) are for the caller (the queue) to
// retry, recipient by recipient, with a new Send; the next Send begins again
// with the first healthy Sender. Retrying them at once on the next Sender
// here would deliver the message to them in two transactions whose outcomes
// the Receipt could not tell apart.
//
// A Receipt that comes with an error (the recipients' replies when the
// transaction failed after RCPT TO) is returned with it.
//
// An error that comes from reading the message itself (its Open or Read
// failed) is returned at once and rests no Sender, since no other Sender
// could read it either; likewise the error of a context that ended.
//
// A Failover is safe for concurrent use.
type Failover struct {
	senders []Sender
	o       FailoverOptions
	mu      sync.Mutex
	state   []failoverState
}

type failoverState struct {
	failures  int
	restUntil time.Time
}

// FailoverOptions are the optional settings of a Failover. nil means every
// default.
type FailoverOptions struct {
	// Backoff is the rest after a Sender's first failure; each further
	// consecutive failure doubles it. Default 10 seconds.
	Backoff time.Duration
	// MaxBackoff caps the rest. Default 10 minutes, or Backoff when that
	// is longer.
	MaxBackoff time.Duration
	// Jitter is the largest fraction of each rest taken off at random,
	// between 0 and 1. Default 0.2; negative for none.
	Jitter float64
	// FailOverPermanent makes a permanent (5xx) reply to the transaction
	// fail over to the next Sender too, as a temporary one does, for lists
	// whose Senders are services that decide differently (separate
	// providers, accounts with their own policies). The Sender that
	// answered it is not rested: it is up. Default false: a 5xx is
	// returned at once.
	FailOverPermanent bool
	// OnAttempt, when set, is called after each attempt, on the goroutine
	// of Send, for events and metrics.
	OnAttempt func(FailoverAttempt)
	// Now is the clock of the rests. Default time.Now.
	Now func() time.Time
	// Rand is the randomness of the jitter: eight octets per rest, read
	// as a big-endian integer, one rest at a time. Default math/rand/v2.
	Rand io.Reader
	// Logger gets one debug record per failed attempt. Default: none.
	Logger *slog.Logger
}

// FailoverAttempt describes one attempt of a Failover, for
// FailoverOptions.OnAttempt.
type FailoverAttempt struct {
	// Index is the Sender's place in the list given to NewFailover.
	Index int
	// Err is nil when the Sender took the message, else its error.
	Err error
	// Resting reports that the Sender was tried while resting, because
	// no healthy Sender took the message.
	Resting bool
	// RestUntil, when not zero, is the end of the rest this attempt's
	// failure gave the Sender.
	RestUntil time.Time
}

// FailoverStatus is the health of one Sender of a Failover.
type FailoverStatus struct {
	// Failures is the number of consecutive failures, 0 for a healthy
	// Sender.
	Failures int
	// RestUntil is when the Sender's rest ends; zero or past for a
	// Sender that is not resting.
	RestUntil time.Time
}

// The defaults of FailoverOptions.
const (
	DefaultFailoverBackoff    = 10 * time.Second
	DefaultFailoverMaxBackoff = 10 * time.Minute
	DefaultFailoverJitter     = 0.2
)

// NewFailover returns a Failover over senders, tried in the order given.
// opts may be nil.
func NewFailover(opts *FailoverOptions, senders ...Sender) (*Failover, error) {
	if len(senders) == 0 {
		return nil, errors.New("relay: NewFailover: no Sender")
	}
	for i, s := range senders {
		if s == nil {
			return nil, fmt.Errorf("relay: NewFailover: Sender %d is nil", i)
		}
	}
	var o FailoverOptions
	if opts != nil {
		o = *opts
	}
	if o.Backoff < 0 || o.MaxBackoff < 0 {
		return nil, errors.New("relay: NewFailover: negative Backoff or MaxBackoff")
	}
	if o.Jitter > 1 {
		return nil, fmt.Errorf("relay: NewFailover: Jitter %v is more than 1", o.Jitter)
	}
	if o.Backoff == 0 {
		o.Backoff = DefaultFailoverBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultFailoverMaxBackoff, o.Backoff)
	}
	if o.MaxBackoff < o.Backoff {
		return nil, fmt.Errorf("relay: NewFailover: MaxBackoff %v is less than Backoff %v", o.MaxBackoff, o.Backoff)
	}
	switch {
	case o.Jitter == 0:
		o.Jitter = DefaultFailoverJitter
	case o.Jitter < 0:
		o.Jitter = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Failover{
		senders: append([]Sender(nil), senders...),
		o:       o,
		state:   make([]failoverState, len(senders)),
	}, nil
}

// Send sends through the first healthy Sender that takes the message; see
// Failover.
func (f *Failover) Send(ctx context.Context, env *Envelope, msg Message) (*Receipt, error) {
	tried := make([]bool, len(f.senders))
	var (
		lastR   *Receipt
		lastErr error
	)
	for {
		i, resting := f.next(tried)
		if i < 0 {
			return lastR, lastErr
		}
		tried[i] = true
		if resting {
			// One resting Sender at most: after it, none is tried.
			for j := range tried {
				tried[j] = true
			}
		}
		wm := &watchedMessage{Message: msg}
		r, err := f.senders[i].Send(ctx, env, wm)
		if err == nil {
			f.succeeded(i)
			f.report(FailoverAttempt{Index: i, Resting: resting})
			return r, nil
		}
		lastR, lastErr = r, err
		if ctx.Err() != nil || wm.failed() {
			f.report(FailoverAttempt{Index: i, Err: err, Resting: resting})
			return r, err
		}
		var reply *Reply
		if errors.As(err, &reply) && reply.Permanent() {
			f.succeeded(i) // it answered: it is up
			f.report(FailoverAttempt{Index: i, Err: err, Resting: resting})
			if !f.o.FailOverPermanent {
				return r, err
			}
			continue
		}
		until := f.failed(i)
		f.report(FailoverAttempt{Index: i, Err: err, Resting: resting, RestUntil: until})
	}
}

// next picks the Sender to try: the first healthy one not tried yet, else
// the untried one whose rest ends first; -1 when all were tried.
func (f *Failover) next(tried []bool) (i int, resting bool) {
	now := f.o.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	best := -1
	for j, st := range f.state {
		if tried[j] {
			continue
		}
		if !st.restUntil.After(now) {
			return j, false
		}
		if best < 0 || st.restUntil.Before(f.state[best].restUntil) {
			best = j
		}
	}
	return best, best >= 0
}

func (f *Failover) succeeded(i int) {
	f.mu.Lock()
	f.state[i] = failoverState{}
	f.mu.Unlock()
}

// failed counts a failure of Sender i and rests it; it returns the end of
// the rest.
func (f *Failover) failed(i int) time.Time {
	now := f.o.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &f.state[i]
	st.failures++
	rest := f.o.Backoff
	for n := 1; n < st.failures && rest < f.o.MaxBackoff; n++ {
		rest *= 2
	}
	rest = min(rest, f.o.MaxBackoff)
	if f.o.Jitter > 0 {
		rest -= time.Duration(f.o.Jitter * randFloat64(f.o.Rand) * float64(rest))
	}
	st.restUntil = now.Add(rest)
	return st.restUntil
}

func (f *Failover) report(a FailoverAttempt) {
	if a.Err != nil && f.o.Logger != nil {
		attrs := []any{"sender", a.Index, "err", a.Err, "resting", a.Resting}
		if !a.RestUntil.IsZero() {
			attrs = append(attrs, "rest_until", a.RestUntil)
		}
		f.o.Logger.Debug("relay: failover attempt failed", attrs...)
	}
	if f.o.OnAttempt != nil {
		f.o.OnAttempt(a)
	}
}

// Status returns the health of each Sender, in the order given to
// NewFailover.
func (f *Failover) Status() []FailoverStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FailoverStatus, len(f.state))
	for i, st := range f.state {
		out[i] = FailoverStatus{Failures: st.failures, RestUntil: st.restUntil}
	}
	return out
}

// watchedMessage is a Message that remembers whether opening or reading it
// failed, so that a Sender's error can be told to be the message's own.
type watchedMessage struct {
	Message
	mu  sync.Mutex
	err error
}

func (m *watchedMessage) Open() (io.ReadCloser, error) {
	rc, err := m.Message.Open()
	if err != nil {
		m.set(err)
		return nil, err
	}
	return &watchedReader{rc, m}, nil
}

func (m *watchedMessage) set(err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
	}
	m.mu.Unlock()
}

func (m *watchedMessage) failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err != nil
}

type watchedReader struct {
	io.ReadCloser
	m *watchedMessage
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		r.m.set(err)
	}
	return n, err
}

// randUint64 reads a big-endian uint64 from r, or takes one from
// math/rand/v2 when r is nil. A failed read gives 0.
func randUint64(r io.Reader) uint64 {
	if r == nil {
		return rand.Uint64()
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:])
}

// randFloat64 returns a number in [0, 1) from r (see randUint64).
func randFloat64(r io.Reader) float64 {
	return float64(randUint64(r)>>11) / (1 << 53)
}
