package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// limiterFixture is a RateLimiter whose waits are recorded and move its
// clock instead of sleeping.
type limiterFixture struct {
	l     *relay.RateLimiter
	clock *manualClock
	mu    sync.Mutex
	waits []time.Duration
	sent  int
	// waitHook, when set, replaces the recording wait.
	waitHook func(ctx context.Context, d time.Duration) error
}

func newLimiterFixture(t *testing.T, o relay.RateLimitOptions) *limiterFixture {
	t.Helper()
	fx := &limiterFixture{clock: newManualClock()}
	o.Now = fx.clock.Now
	o.Wait = func(ctx context.Context, d time.Duration) error {
		if fx.waitHook != nil {
			return fx.waitHook(ctx, d)
		}
		fx.mu.Lock()
		fx.waits = append(fx.waits, d)
		fx.mu.Unlock()
		fx.clock.Advance(d)
		return nil
	}
	next := relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		fx.mu.Lock()
		fx.sent++
		fx.mu.Unlock()
		return accept("next").Send(ctx, env, msg)
	})
	l, err := relay.NewRateLimiter(next, &o)
	if err != nil {
		t.Fatal(err)
	}
	fx.l = l
	return fx
}

// send sends a message to n recipients and checks the wait it took (0
// for none).
func (fx *limiterFixture) send(t *testing.T, ctx context.Context, n int, wantWait time.Duration) error {
	t.Helper()
	fx.mu.Lock()
	fx.waits = nil
	fx.mu.Unlock()
	var to []string
	for i := range n {
		to = append(to, fmt.Sprintf("r%d@example.org", i))
	}
	_, err := fx.l.Send(ctx, &relay.Envelope{From: "alice@example.com", To: relay.To(to...)}, testMessage)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var got time.Duration
	switch len(fx.waits) {
	case 0:
	case 1:
		got = fx.waits[0]
	default:
		t.Fatalf("waited %v, more than once", fx.waits)
	}
	if got != wantWait {
		t.Errorf("waited %v, want %v", got, wantWait)
	}
	return err
}

func TestRateLimiterMessages(t *testing.T) {
	t.Parallel()
	fx := newLimiterFixture(t, relay.RateLimitOptions{Messages: 2}) // 2 per second
	bg := context.Background()
	fx.send(t, bg, 1, 0) // the burst: two at once
	fx.send(t, bg, 1, 0)
	fx.send(t, bg, 1, 500*time.Millisecond) // then one per 500ms
	fx.send(t, bg, 1, 500*time.Millisecond)
	fx.clock.Advance(time.Minute) // the bucket fills, to its burst
	fx.send(t, bg, 50, 0)         // recipients are not limited
	fx.send(t, bg, 1, 0)
	fx.send(t, bg, 1, 500*time.Millisecond)
	if fx.sent != 7 {
		t.Errorf("handed on %d messages, want 7", fx.sent)
	}
}

func TestRateLimiterRecipients(t *testing.T) {
	t.Parallel()
	fx := newLimiterFixture(t, relay.RateLimitOptions{Recipients: 10, Interval: time.Minute}) // one per 6s
	bg := context.Background()
	fx.send(t, bg, 4, 0)
	fx.send(t, bg, 4, 0)
	fx.send(t, bg, 4, 12*time.Second) // 2 left: 2 more to earn
	fx.send(t, bg, 0, 0)              // no recipient, no wait
	fx.send(t, bg, 1, 6*time.Second)

	// More recipients than the burst: the message waits for them all.
	fx.clock.Advance(time.Hour)
	fx.send(t, bg, 25, 90*time.Second) // 10 at once, 15 to earn
	fx.send(t, bg, 1, 6*time.Second)
}

// With both quotas, a message waits for the later of its two turns.
func TestRateLimiterBoth(t *testing.T) {
	t.Parallel()
	fx := newLimiterFixture(t, relay.RateLimitOptions{Messages: 1, Recipients: 4, RecipientBurst: 8})
	bg := context.Background()
	fx.send(t, bg, 8, 0)
	fx.send(t, bg, 1, time.Second)            // messages: 1s; recipients: 250ms
	fx.send(t, bg, 10, 1750*time.Millisecond) // messages: 1s; recipients: 3 left, 7 to earn
}

// A wait that would pass ctx's deadline is refused with a temporary 451
// 4.7.0, without calling the next Sender; the place taken is given back.
func TestRateLimiterRefusesPastDeadline(t *testing.T) {
	t.Parallel()
	fx := newLimiterFixture(t, relay.RateLimitOptions{Messages: 1, Interval: time.Minute})
	// ctx's deadline is compared with the limiter's clock: start it now.
	fx.clock.now = time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), fx.clock.Now().Add(90*time.Second))
	defer cancel()

	fx.send(t, ctx, 1, 0)
	fx.send(t, ctx, 1, time.Minute) // the deadline is now 30s away
	for range 3 {
		err := fx.send(t, ctx, 1, 0) // a minute is too long
		var reply *relay.Reply
		if !errors.As(err, &reply) || reply.Code != 451 || reply.Enhanced != (relay.EnhancedCode{4, 7, 0}) || !reply.Temporary() {
			t.Fatalf("error %v, want a 451 4.7.0 reply", err)
		}
	}
	if fx.sent != 2 {
		t.Errorf("handed on %d, want 2", fx.sent)
	}
	// The refusals gave their places back: a send without a deadline
	// waits one interval, not four.
	fx.send(t, context.Background(), 1, time.Minute)
}

// A wait over MaxWait is refused the same way.
func TestRateLimiterMaxWait(t *testing.T) {
	t.Parallel()
	fx := newLimiterFixture(t, relay.RateLimitOptions{Recipients: 100, Interval: time.Hour, MaxWait: 5 * time.Minute}) // one per 36s
	bg := context.Background()
	fx.send(t, bg, 100, 0)
	fx.send(t, bg, 1, 36*time.Second)
	if err := fx.send(t, bg, 10, 0); !isTemporaryReply(err) { // 6 minutes
		t.Errorf("error %v, want a temporary reply", err)
	}
	fx.send(t, bg, 8, 288*time.Second) // 4.8 minutes
	if fx.sent != 3 {
		t.Errorf("handed on %d, want 3", fx.sent)
	}
}

func isTemporaryReply(err error) bool {
	var r *relay.Reply
	return errors.As(err, &r) && r.Temporary()
}

// When ctx ends during the wait, Send returns its error and gives its place
// back.
func TestRateLimiterContextEndsWhileWaiting(t *testing.T) {
	t.Parallel()
	fx := newLimiterFixture(t, relay.RateLimitOptions{Messages: 1, Interval: time.Minute})
	fx.send(t, context.Background(), 1, 0)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fx.waitHook = func(ctx context.Context, d time.Duration) error {
		fx.clock.Advance(d / 2)
		cancel()
		return ctx.Err()
	}
	_, err := fx.l.Send(ctx, testEnv, testMessage)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want %v", err, context.Canceled)
	}
	if fx.sent != 1 {
		t.Errorf("handed on %d, want 1", fx.sent)
	}
	// Half the interval has passed, and the cancelled turn was given
	// back: the next message waits the other half.
	fx.waitHook = nil
	fx.send(t, context.Background(), 1, 30*time.Second)

	// An ended context is not waited on at all.
	if _, err := fx.l.Send(ctx, testEnv, testMessage); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	t.Parallel()
	fx := newLimiterFixture(t, relay.RateLimitOptions{Messages: 5, Recipients: 20})
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := fx.l.Send(context.Background(), &relay.Envelope{To: relay.To("a@example.org", "b@example.org", "c@example.org")}, testMessage); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if fx.sent != 40 {
		t.Errorf("handed on %d, want 40", fx.sent)
	}
}

func TestNewRateLimiterErrors(t *testing.T) {
	t.Parallel()
	next := accept("next")
	for _, tc := range []struct {
		name string
		next relay.Sender
		opts *relay.RateLimitOptions
	}{
		{"nil next", nil, &relay.RateLimitOptions{Messages: 1}},
		{"nil options", next, nil},
		{"no quota", next, &relay.RateLimitOptions{Interval: time.Second}},
		{"negative", next, &relay.RateLimitOptions{Messages: -1}},
		{"negative interval", next, &relay.RateLimitOptions{Messages: 1, Interval: -time.Second}},
		{"negative burst", next, &relay.RateLimitOptions{Recipients: 1, RecipientBurst: -1}},
	} {
		if _, err := relay.NewRateLimiter(tc.next, tc.opts); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// An account at a provider allows 2 messages a second. The third message
// sent at once waits half a second for its turn; here the wait only
// prints, and the clock stands still.
func ExampleNewRateLimiter() {
	provider := relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		fmt.Println("sent to", env.To[0].Addr)
		return &relay.Receipt{}, nil
	})
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	limiter, err := relay.NewRateLimiter(provider, &relay.RateLimitOptions{
		Messages: 2,
		Interval: time.Second,
		Now:      func() time.Time { return now },
		Wait: func(ctx context.Context, d time.Duration) error {
			fmt.Println("waiting", d)
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	for _, to := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		limiter.Send(context.Background(), &relay.Envelope{From: "news@example.com", To: relay.To(to)}, relay.Bytes("Subject: news\r\n\r\nNews.\r\n"))
	}
	// Output:
	// sent to a@example.org
	// sent to b@example.org
	// waiting 500ms
	// sent to c@example.org
}
