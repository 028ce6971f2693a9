package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

var (
	errRefused  = fmt.Errorf("dial tcp 192.0.2.1:587: %w", syscall.ECONNREFUSED)
	reply421    = &relay.Reply{Code: 421, Enhanced: relay.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
	reply451    = &relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 7, 1}, Message: "Try again later"}
	reply550    = &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 7, 1}, Message: "Message refused"}
	testEnv     = &relay.Envelope{From: "alice@example.com", To: relay.To("bob@example.org")}
	testMessage = relay.Bytes("From: alice@example.com\r\nSubject: hi\r\n\r\nHi.\r\n")
)

// toggle is a Sender whose outcome a test sets: nil error to accept.
type toggle struct {
	mu   sync.Mutex
	name string
	err  error
}

func (s *toggle) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *toggle) Send(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return accept(s.name).Send(ctx, env, msg)
}

// failoverFixture is a Failover over Senders named a, b, c... with a
// manual clock, no jitter, Backoff 10s and MaxBackoff 80s.
type failoverFixture struct {
	f       *relay.Failover
	clock   *manualClock
	senders []*toggle
	calls   *calls
}

func newFailoverFixture(t *testing.T, opts *relay.FailoverOptions, names ...string) *failoverFixture {
	t.Helper()
	fx := &failoverFixture{clock: newManualClock(), calls: new(calls)}
	var o relay.FailoverOptions
	if opts != nil {
		o = *opts
	}
	o.Now = fx.clock.Now
	if o.Backoff == 0 {
		o.Backoff = 10 * time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 80 * time.Second
	}
	if o.Jitter == 0 {
		o.Jitter = -1
	}
	var senders []relay.Sender
	for _, n := range names {
		s := &toggle{name: n}
		fx.senders = append(fx.senders, s)
		senders = append(senders, fx.calls.wrap(n, s))
	}
	f, err := relay.NewFailover(&o, senders...)
	if err != nil {
		t.Fatal(err)
	}
	fx.f = f
	return fx
}

// send sends one message and checks which Senders were called, and which
// took it ("" when the send failed).
func (fx *failoverFixture) send(t *testing.T, wantCalls, wantHost string) error {
	t.Helper()
	r, err := fx.f.Send(context.Background(), testEnv, testMessage)
	if got := fx.calls.take(); got != wantCalls {
		t.Errorf("called %q, want %q", got, wantCalls)
	}
	host := ""
	if err == nil {
		host = r.Host
	}
	if host != wantHost {
		t.Errorf("sent by %q (err %v), want %q", host, err, wantHost)
	}
	return err
}

// rests checks each Sender's rest, as a duration from now (0: healthy).
func (fx *failoverFixture) rests(t *testing.T, want ...time.Duration) {
	t.Helper()
	now := fx.clock.Now()
	for i, st := range fx.f.Status() {
		got := time.Duration(0)
		if st.RestUntil.After(now) {
			got = st.RestUntil.Sub(now)
		}
		if got != want[i] {
			t.Errorf("sender %d rests %v, want %v (status %+v)", i, got, want[i], st)
		}
	}
}

func TestFailoverFirstHealthyTakesIt(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, nil, "a", "b", "c")
	fx.send(t, "a", "a")
	fx.send(t, "a", "a")
	fx.rests(t, 0, 0, 0)
}

// A Sender that cannot be reached, or answers 4xx (421 included), is
// skipped and rested; it is tried again once its rest is over.
func TestFailoverSkipsAndRests(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		errRefused,
		reply421,
		reply451,
		fmt.Errorf("relay: smtp.example.net:587: %w", reply421), // wrapped
		errors.New("relay: TLS handshake: remote error"),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			fx := newFailoverFixture(t, nil, "a", "b")
			fx.senders[0].set(err)
			fx.send(t, "a b", "b")
			fx.rests(t, 10*time.Second, 0)

			// Resting, a is skipped while b is healthy.
			fx.clock.Advance(9 * time.Second)
			fx.send(t, "b", "b")
			fx.rests(t, time.Second, 0)

			// Rest over: a is tried first again, fails again, rests twice
			// as long.
			fx.clock.Advance(time.Second)
			fx.send(t, "a b", "b")
			fx.rests(t, 20*time.Second, 0)

			// It recovers: once its rest is over, it takes the message,
			// and its failures are forgotten.
			fx.senders[0].set(nil)
			fx.clock.Advance(20 * time.Second)
			fx.send(t, "a", "a")
			fx.rests(t, 0, 0)
			if st := fx.f.Status()[0]; st.Failures != 0 {
				t.Errorf("failures after recovery: %d", st.Failures)
			}
			fx.senders[0].set(err)
			fx.send(t, "a b", "b")
			fx.rests(t, 10*time.Second, 0)
		})
	}
}

// Each consecutive failure doubles the rest, up to MaxBackoff.
func TestFailoverBackoffDoublesUpToMax(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, &relay.FailoverOptions{Backoff: time.Second, MaxBackoff: 5 * time.Second}, "a", "b")
	fx.senders[0].set(errRefused)
	for _, want := range []time.Duration{1, 2, 4, 5, 5, 5} {
		fx.send(t, "a b", "b")
		fx.rests(t, want*time.Second, 0)
		fx.clock.Advance(want * time.Second)
	}
	if st := fx.f.Status()[0]; st.Failures != 6 {
		t.Errorf("failures %d, want 6", st.Failures)
	}
}

// Jitter takes up to its fraction off each rest, at random.
func TestFailoverJitter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rand     byte
		min, max time.Duration
	}{
		{0x00, 40 * time.Second, 40 * time.Second}, // no fraction taken off
		{0x80, 29 * time.Second, 31 * time.Second}, // half of it
		{0xff, 20 * time.Second, 20*time.Second + time.Microsecond},
	} {
		clock := newManualClock()
		f, err := relay.NewFailover(&relay.FailoverOptions{
			Backoff: 40 * time.Second,
			Jitter:  0.5,
			Now:     clock.Now,
			Rand:    constReader(tc.rand),
		}, fail(errRefused), accept("b"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Send(context.Background(), testEnv, testMessage); err != nil {
			t.Fatal(err)
		}
		rest := f.Status()[0].RestUntil.Sub(clock.Now())
		if rest < tc.min || rest > tc.max {
			t.Errorf("rand %#x: rest %v, want between %v and %v", tc.rand, rest, tc.min, tc.max)
		}
	}
}

// A 5xx to the transaction is definitive: returned at once, the next
// Sender not tried, and the Sender not rested (it is up).
func TestFailoverPermanentIsReturned(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, nil, "a", "b")
	fx.senders[0].set(reply550)
	err := fx.send(t, "a", "")
	if err != reply550 {
		t.Errorf("error %v, want %v", err, reply550)
	}
	fx.rests(t, 0, 0)

	// A 5xx is an answer: the Sender is up, and its failures end.
	fx.senders[0].set(errRefused)
	fx.send(t, "a b", "b")
	fx.clock.Advance(10 * time.Second)
	fx.senders[0].set(reply550)
	fx.send(t, "a", "")
	if st := fx.f.Status()[0]; st.Failures != 0 {
		t.Errorf("failures after a 5xx: %d", st.Failures)
	}
}

func TestFailoverPermanentOption(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, &relay.FailoverOptions{FailOverPermanent: true}, "a", "b", "c")
	fx.senders[0].set(reply550)
	fx.send(t, "a b", "b")
	fx.rests(t, 0, 0, 0)

	// Every Sender refusing: the last refusal is returned.
	fx.senders[1].set(reply451)
	fx.senders[2].set(&relay.Reply{Code: 554, Message: "no"})
	if err := fx.send(t, "a b c", ""); err.Error() != "554 no" {
		t.Errorf("error %v, want the last one's", err)
	}
	fx.rests(t, 0, 10*time.Second, 0)
}

// Every Sender down: each is tried once, all are rested, and the last
// error is returned as it came.
func TestFailoverAllDown(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, nil, "a", "b", "c")
	fx.senders[0].set(errRefused)
	fx.senders[1].set(errRefused)
	fx.senders[2].set(reply421)
	err := fx.send(t, "a b c", "")
	var reply *relay.Reply
	if !errors.As(err, &reply) || reply != reply421 {
		t.Errorf("error %v, want the last one, %v", err, reply421)
	}
	fx.rests(t, 10*time.Second, 10*time.Second, 10*time.Second)
}

// With every Sender resting, the one whose rest ends first is tried rather
// than fail; one resting Sender at most per message.
func TestFailoverAllResting(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, nil, "a", "b", "c")
	fx.senders[0].set(errRefused)
	fx.send(t, "a b", "b") // a rests until 10s
	fx.rests(t, 10*time.Second, 0, 0)

	fx.clock.Advance(time.Second)
	fx.senders[1].set(errRefused)
	fx.senders[2].set(errRefused)
	// b and c fail (rest until 11s); a, resting until 10s, is tried last,
	// fails, and rests until 1s+20s.
	fx.send(t, "b c a", "")
	fx.rests(t, 20*time.Second, 10*time.Second, 10*time.Second)

	fx.clock.Advance(time.Second)
	// All resting: b's rest ends first (c's as soon, but b comes first).
	fx.send(t, "b", "")
	fx.rests(t, 19*time.Second, 20*time.Second, 9*time.Second)
	fx.send(t, "c", "") // now c's rest ends first
	fx.rests(t, 19*time.Second, 20*time.Second, 20*time.Second)

	// a comes back while resting: it takes the message, and is healthy.
	fx.senders[0].set(nil)
	fx.send(t, "a", "a")
	fx.rests(t, 0, 20*time.Second, 20*time.Second)
	fx.send(t, "a", "a")
}

// An error reading the message is no Sender's fault: it is returned at
// once, and no Sender is rested.
func TestFailoverMessageErrorRestsNobody(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, nil, "a", "b")
	gone := errors.New("spool file gone")
	_, err := fx.f.Send(context.Background(), testEnv, failingMessage{gone})
	if !errors.Is(err, gone) {
		t.Errorf("error %v, want %v", err, gone)
	}
	if got := fx.calls.take(); got != "a" {
		t.Errorf("called %q, want a", got)
	}
	fx.rests(t, 0, 0)

	// The same when the reading fails half way.
	_, err = fx.f.Send(context.Background(), testEnv, brokenMessage{gone})
	if !errors.Is(err, gone) {
		t.Errorf("error %v, want %v", err, gone)
	}
	fx.calls.take()
	fx.rests(t, 0, 0)
}

// brokenMessage fails after its first octets.
type brokenMessage struct{ err error }

func (m brokenMessage) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.MultiReader(bytes.NewReader(testMessage[:10]), errReader{m.err})), nil
}
func (m brokenMessage) Size() int64 { return testMessage.Size() }

type errReader struct{ e error }

func (r errReader) Read([]byte) (int, error) { return 0, r.e }

// A cancelled send is returned at once, and rests nobody.
func TestFailoverContextEnded(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, nil, "a", "b")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fx.senders[0].set(fmt.Errorf("relay: dial: %w", context.Canceled))
	_, err := fx.f.Send(ctx, testEnv, testMessage)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	if got := fx.calls.take(); got != "a" {
		t.Errorf("called %q, want a", got)
	}
	fx.rests(t, 0, 0)
}

// A Receipt is returned as it came, its recipients refused for now
// included: the queue retries them.
func TestFailoverReturnsReceiptAsItCame(t *testing.T) {
	t.Parallel()
	want := &relay.Receipt{Host: "a", Rcpts: []relay.RcptResult{
		{Addr: "bob@example.org", Reply: &relay.Reply{Code: 250}},
		{Addr: "carol@example.org", Reply: reply451},
	}}
	var c calls
	f, err := relay.NewFailover(nil,
		c.wrap("a", relay.SenderFunc(func(context.Context, *relay.Envelope, relay.Message) (*relay.Receipt, error) { return want, nil })),
		c.wrap("b", accept("b")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Send(context.Background(), &relay.Envelope{To: relay.To("bob@example.org", "carol@example.org")}, testMessage)
	if err != nil || got != want {
		t.Errorf("got %+v, %v", got, err)
	}
	if calls := c.take(); calls != "a" {
		t.Errorf("called %q, want a", calls)
	}
}

// A Receipt that comes with an error (recipients refused at RCPT TO, then
// the transaction failed) is returned with it.
func TestFailoverKeepsReceiptWithError(t *testing.T) {
	t.Parallel()
	partial := func(host string, err error) relay.SenderFunc {
		return func(context.Context, *relay.Envelope, relay.Message) (*relay.Receipt, error) {
			return &relay.Receipt{Host: host, Rcpts: []relay.RcptResult{
				{Addr: "bob@example.org", Reply: &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}}},
				{Addr: "carol@example.org"},
			}}, err
		}
	}
	env := &relay.Envelope{To: relay.To("bob@example.org", "carol@example.org")}
	for _, tc := range []struct {
		name    string
		senders []relay.Sender
		host    string
		err     error
	}{
		{"all fail", []relay.Sender{partial("a", reply451), partial("b", reply421)}, "b", reply421},
		{"permanent", []relay.Sender{partial("a", reply550), accept("b")}, "a", reply550},
	} {
		f, err := relay.NewFailover(nil, tc.senders...)
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.Send(context.Background(), env, testMessage)
		if err != tc.err || r == nil || r.Host != tc.host || r.Rcpts[0].Reply.Code != 550 {
			t.Errorf("%s: got %+v, %v; want %s's receipt and %v", tc.name, r, err, tc.host, tc.err)
		}
	}
}

func TestFailoverOnAttempt(t *testing.T) {
	t.Parallel()
	var got []relay.FailoverAttempt
	fx := newFailoverFixture(t, &relay.FailoverOptions{OnAttempt: func(a relay.FailoverAttempt) { got = append(got, a) }}, "a", "b")
	fx.senders[0].set(errRefused)
	fx.send(t, "a b", "b")
	fx.senders[1].set(reply421)
	fx.send(t, "b a", "")
	now := fx.clock.Now()
	want := []relay.FailoverAttempt{
		{Index: 0, Err: errRefused, RestUntil: now.Add(10 * time.Second)},
		{Index: 1},
		{Index: 1, Err: reply421, RestUntil: now.Add(10 * time.Second)},
		{Index: 0, Err: errRefused, Resting: true, RestUntil: now.Add(20 * time.Second)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("attempts\n%v\nwant\n%v", got, want)
	}
}

func TestFailoverConcurrent(t *testing.T) {
	t.Parallel()
	fx := newFailoverFixture(t, nil, "a", "b")
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if i%4 == 0 {
				fx.senders[0].set(errRefused)
				fx.clock.Advance(time.Minute)
			} else if i%4 == 2 {
				fx.senders[0].set(nil)
			}
			if _, err := fx.f.Send(context.Background(), testEnv, testMessage); err != nil {
				t.Error(err)
			}
			fx.f.Status()
		})
	}
	wg.Wait()
}

func TestNewFailoverErrors(t *testing.T) {
	t.Parallel()
	ok := accept("a")
	for _, tc := range []struct {
		name    string
		opts    *relay.FailoverOptions
		senders []relay.Sender
	}{
		{"no sender", nil, nil},
		{"nil sender", nil, []relay.Sender{ok, nil}},
		{"negative backoff", &relay.FailoverOptions{Backoff: -1}, []relay.Sender{ok}},
		{"max under backoff", &relay.FailoverOptions{Backoff: time.Minute, MaxBackoff: time.Second}, []relay.Sender{ok}},
		{"jitter over 1", &relay.FailoverOptions{Jitter: 1.5}, []relay.Sender{ok}},
	} {
		if _, err := relay.NewFailover(tc.opts, tc.senders...); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := relay.NewFailover(&relay.FailoverOptions{Backoff: time.Hour}, ok); err != nil {
		t.Errorf("a Backoff over the default MaxBackoff: %v", err)
	}
}

// Over SMTP: the first smart host refuses connections, the second says 421
// at its greeting, the third takes the message.
func TestFailoverOverSMTP(t *testing.T) {
	t.Parallel()
	busy := newSMTPServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	busy.Fail(smtptest.Fault{On: smtptest.Greeting, Reply: relay.Reply{Code: 421, Enhanced: relay.EnhancedCode{4, 3, 2}, Message: "Too busy"}})
	good := newSMTPServer(t, &smtptest.Options{TLS: smtptest.NoTLS})

	var attempts []relay.FailoverAttempt
	f, err := relay.NewFailover(&relay.FailoverOptions{OnAttempt: func(a relay.FailoverAttempt) { attempts = append(attempts, a) }},
		smtpSender{addr: closedAddr(t)}, smtpSender{addr: busy.Addr}, smtpSender{addr: good.Addr})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Send(context.Background(), testEnv, testMessage)
	if err != nil {
		t.Fatal(err)
	}
	if r.Host != good.Addr || len(r.Accepted()) != 1 {
		t.Errorf("receipt %+v", r)
	}
	if len(attempts) != 3 || !errors.Is(attempts[0].Err, syscall.ECONNREFUSED) {
		t.Fatalf("attempts %v", attempts)
	}
	var reply *relay.Reply
	if !errors.As(attempts[1].Err, &reply) || reply.Code != 421 {
		t.Errorf("second attempt: %v, want a 421", attempts[1].Err)
	}
	if busy.Stats().Messages+good.Stats().Messages != 1 {
		t.Errorf("messages kept: %d and %d", busy.Stats().Messages, good.Stats().Messages)
	}
}

// Two smart hosts: the primary is down, so the backup takes the message,
// and the primary rests before it is tried again.
func ExampleNewFailover() {
	primary := relay.SenderFunc(func(context.Context, *relay.Envelope, relay.Message) (*relay.Receipt, error) {
		return nil, errors.New("dial tcp smtp.example.net:587: connection refused")
	})
	backup := relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		r := &relay.Receipt{Host: "smtp.example.com:587"}
		for _, to := range env.To {
			r.Rcpts = append(r.Rcpts, relay.RcptResult{Addr: to.Addr, Reply: &relay.Reply{Code: 250, Message: "OK"}})
		}
		return r, nil
	})
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	f, err := relay.NewFailover(&relay.FailoverOptions{
		Backoff: 30 * time.Second,
		Jitter:  -1, // none, for the example
		Now:     func() time.Time { return start },
	}, primary, backup)
	if err != nil {
		panic(err)
	}
	r, err := f.Send(context.Background(), &relay.Envelope{From: "alice@example.com", To: relay.To("bob@example.org")}, relay.Bytes("Subject: hi\r\n\r\nHi.\r\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Host, r.Accepted())
	for i, st := range f.Status() {
		fmt.Println(i, st.Failures, st.RestUntil.Format(time.TimeOnly))
	}
	// Output:
	// smtp.example.com:587 [bob@example.org]
	// 0 1 12:00:30
	// 1 0 00:00:00
}
