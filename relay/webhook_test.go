package relay_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

const hookSecret = "whsec_test"

// hookRequest is one request a hookReceiver took, with its answer.
type hookRequest struct {
	header http.Header
	body   []byte
	status int
	events []relay.Event
}

// hookReceiver is a webhook receiver on 127.0.0.1: it records every
// request and answers with the status of answer (200 when nil).
type hookReceiver struct {
	srv    *httptest.Server
	answer func(n int) int // n counts the requests, from 1
	mu     sync.Mutex
	reqs   []hookRequest
	got    chan struct{} // a request arrived
}

func newHookReceiver(t *testing.T, answer func(n int) int) *hookReceiver {
	t.Helper()
	r := &hookReceiver{answer: answer, got: make(chan struct{}, 1000)}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.reqs) + 1
	r.mu.Unlock()
	status := http.StatusOK
	if r.answer != nil {
		status = r.answer(n)
	}
	var events []relay.Event
	if err := json.Unmarshal(body, &events); err != nil {
		status = http.StatusBadRequest
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, hookRequest{header: req.Header.Clone(), body: body, status: status, events: events})
	r.mu.Unlock()
	w.WriteHeader(status)
	r.got <- struct{}{}
}

// wait waits for n requests, failing the test after a generous deadline.
func (r *hookReceiver) wait(t *testing.T, n int) []hookRequest {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		reqs := slices.Clone(r.reqs)
		r.mu.Unlock()
		if len(reqs) >= n {
			return reqs
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("got %d webhook requests, want %d", len(reqs), n)
		}
	}
}

// accepted lists the queue IDs of the events of the requests answered 2xx.
func accepted(reqs []hookRequest) []string {
	var ids []string
	for _, r := range reqs {
		if r.status/100 == 2 {
			for _, e := range r.events {
				ids = append(ids, e.QueueID)
			}
		}
	}
	return ids
}

func queueIDs(n int) []string {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("q%d", i))
	}
	return ids
}

func newWebhook(t *testing.T, url string, opts *relay.WebhookOptions) *relay.Webhook {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	w, err := relay.NewWebhook(url, []byte(hookSecret), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		w.Close(c)
	})
	return w
}

func emit(w *relay.Webhook, ids ...string) {
	for _, id := range ids {
		w.Emit(context.Background(), &relay.Event{Type: relay.EventDelivered, QueueID: id, Rcpt: "rcpt@example.org"})
	}
}

func batchFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestWebhookBatchSize: with a MaxDelay far away, batches are cut at
// MaxBatch events, in the order emitted.
func TestWebhookBatchSize(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t, nil)
	w := newWebhook(t, r.srv.URL, &relay.WebhookOptions{MaxBatch: 3, MaxDelay: time.Hour})
	emit(w, queueIDs(6)...)
	reqs := r.wait(t, 2)
	for i, req := range reqs {
		if len(req.events) != 3 {
			t.Errorf("request %d has %d events, want 3: %s", i, len(req.events), req.body)
		}
		if ct := req.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d Content-Type %q", i, ct)
		}
	}
	if got := accepted(reqs); !slices.Equal(got, queueIDs(6)) {
		t.Errorf("events %v, want %v", got, queueIDs(6))
	}
}

// TestWebhookBatchTime: a batch that does not fill is sent after MaxDelay,
// while the webhook is still open.
func TestWebhookBatchTime(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t, nil)
	w := newWebhook(t, r.srv.URL, &relay.WebhookOptions{MaxBatch: 100, MaxDelay: 20 * time.Millisecond})
	emit(w, "a", "b")
	reqs := r.wait(t, 1)
	if got := accepted(reqs); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("events %v, want [a b]", got)
	}
	if reqs[0].events[0].Type != relay.EventDelivered || reqs[0].events[0].Rcpt != "rcpt@example.org" {
		t.Errorf("event %+v", reqs[0].events[0])
	}
	emit(w, "c")
	reqs = r.wait(t, 2)
	if got := accepted(reqs); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("events %v, want [a b c]", got)
	}
}

// TestWebhookSignature: the signature header is the HMAC-SHA256 of
// timestamp "." body, computed here independently; VerifyWebhook takes
// it, and refuses a tampered body, another secret and an old timestamp.
func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t, nil)
	w := newWebhook(t, r.srv.URL, &relay.WebhookOptions{MaxBatch: 1})
	emit(w, "q1")
	req := r.wait(t, 1)[0]

	ts := req.header.Get(relay.WebhookTimestampHeader)
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write([]byte(ts + "." + string(req.body)))
	if got, want := req.header.Get(relay.WebhookSignatureHeader), "v1="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	if req.header.Get(relay.WebhookBatchHeader) == "" {
		t.Error("no batch header")
	}
	now := time.Now()
	if err := relay.VerifyWebhook([]byte(hookSecret), req.header, req.body, now, time.Minute); err != nil {
		t.Errorf("VerifyWebhook: %v", err)
	}
	tampered := []byte(strings.Replace(string(req.body), "q1", "q2", 1))
	for name, err := range map[string]error{
		"tampered body": relay.VerifyWebhook([]byte(hookSecret), req.header, tampered, now, time.Minute),
		"other secret":  relay.VerifyWebhook([]byte("whsec_other"), req.header, req.body, now, time.Minute),
		"too late":      relay.VerifyWebhook([]byte(hookSecret), req.header, req.body, now.Add(10*time.Minute), time.Minute),
		"no signature":  relay.VerifyWebhook([]byte(hookSecret), http.Header{relay.WebhookTimestampHeader: {ts}}, req.body, now, time.Minute),
	} {
		if !errors.Is(err, relay.ErrWebhookSignature) {
			t.Errorf("%s: VerifyWebhook = %v, want ErrWebhookSignature", name, err)
		}
	}
}

// TestVerifyWebhookVector checks VerifyWebhook against a signature made by
// OpenSSL: printf '%s' '1700000000.[{"event":"delivered","queue_id":"q1"}]' |
// openssl dgst -sha256 -hmac whsec_test
func TestVerifyWebhookVector(t *testing.T) {
	t.Parallel()
	body := []byte(`[{"event":"delivered","queue_id":"q1"}]`)
	h := http.Header{}
	h.Set(relay.WebhookTimestampHeader, "1700000000")
	h.Set(relay.WebhookSignatureHeader, "v1=00, v1=33f36f729c71d754c7857414d03ad1f798e59cf2d0fc5f32cf60dc06c15e8731")
	now := time.Unix(1700000060, 0)
	if err := relay.VerifyWebhook([]byte(hookSecret), h, body, now, 5*time.Minute); err != nil {
		t.Errorf("VerifyWebhook: %v", err)
	}
	h.Set(relay.WebhookSignatureHeader, "v1=33f36f729c71d754c7857414d03ad1f798e59cf2d0fc5f32cf60dc06c15e8730")
	if err := relay.VerifyWebhook([]byte(hookSecret), h, body, now, 5*time.Minute); !errors.Is(err, relay.ErrWebhookSignature) {
		t.Errorf("last digit changed: VerifyWebhook = %v", err)
	}
}

// TestWebhookRetry: a batch answered 500 is sent again, under the same
// batch name, and its events are taken once.
func TestWebhookRetry(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	dir := t.TempDir()
	w := newWebhook(t, r.srv.URL, &relay.WebhookOptions{Dir: dir, MaxBatch: 3, MaxDelay: time.Hour, MinBackoff: 10 * time.Millisecond})
	emit(w, queueIDs(3)...)
	r.wait(t, 2)
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	reqs := r.wait(t, 2)
	if len(reqs) != 2 || reqs[0].status != 500 || reqs[1].status != 204 {
		t.Fatalf("%d requests, want a 500 then a 204", len(reqs))
	}
	if a, b := reqs[0].header.Get(relay.WebhookBatchHeader), reqs[1].header.Get(relay.WebhookBatchHeader); a != b {
		t.Errorf("batch names %q and %q differ", a, b)
	}
	if got := accepted(reqs); !slices.Equal(got, queueIDs(3)) {
		t.Errorf("events taken %v, want %v once each", got, queueIDs(3))
	}
	if left := batchFiles(t, dir); len(left) != 0 {
		t.Errorf("batches left after a 2xx: %v", left)
	}
}

// TestWebhookRestart: a batch the receiver never acknowledged stays in
// Dir when the webhook stops, and the next webhook on Dir sends it.
func TestWebhookRestart(t *testing.T) {
	t.Parallel()
	down := newHookReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	w1, err := relay.NewWebhook(down.srv.URL, []byte(hookSecret), &relay.WebhookOptions{Dir: dir, MaxBatch: 10, MaxDelay: time.Hour, MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	emit(w1, queueIDs(4)...)
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w1.Close(stopped); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with batches unsent = %v, want context.Canceled", err)
	}
	// An event emitted after Close goes to the directory too.
	emit(w1, "late")
	if left := batchFiles(t, dir); len(left) != 2 {
		t.Fatalf("%d batches in the directory, want 2", len(left))
	}

	up := newHookReceiver(t, nil)
	w2 := newWebhook(t, up.srv.URL, &relay.WebhookOptions{Dir: dir})
	reqs := up.wait(t, 2)
	if got, want := accepted(reqs), append(queueIDs(4), "late"); !slices.Equal(got, want) {
		t.Errorf("events after restart %v, want %v", got, want)
	}
	if err := w2.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if left := batchFiles(t, dir); len(left) != 0 {
		t.Errorf("batches left: %v", left)
	}
}

// TestWebhookFullBuffer: with the receiver stalled and the buffer full,
// Emit returns (the events go to Dir), and every event arrives once.
func TestWebhookFullBuffer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	r := newHookReceiver(t, func(int) int { <-release; return http.StatusOK })
	dir := t.TempDir()
	w := newWebhook(t, r.srv.URL, &relay.WebhookOptions{Dir: dir, Buffer: 1, MaxBatch: 2, MaxDelay: time.Hour})
	emit(w, queueIDs(11)...) // would hang here if Emit waited for the receiver
	close(release)
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// Close returned nil: every batch was answered, and recorded.
	got := accepted(r.wait(t, 1))
	slices.Sort(got)
	want := queueIDs(11)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v once each", got, want)
	}
}

// TestWebhookURL: plain http only to a loopback address.
func TestWebhookURL(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"https://hooks.example.com/smarthost": true,
		"http://127.0.0.1:8080/hook":          true,
		"http://127.0.0.2/hook":               true,
		"http://[::1]:8080/hook":              true,
		"http://hooks.example.com/hook":       false,
		"http://localhost:8080/hook":          false,
		"http://192.0.2.1/hook":               false,
		"http://[2001:db8::1]/hook":           false,
		"ftp://127.0.0.1/hook":                false,
		"https:///nohost":                     false,
	} {
		w, err := relay.NewWebhook(url, []byte(hookSecret), &relay.WebhookOptions{Dir: t.TempDir()})
		if (err == nil) != ok {
			t.Errorf("NewWebhook(%q) error %v, want ok=%v", url, err, ok)
		}
		if err == nil {
			if err := w.Close(ctx(t)); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	if _, err := relay.NewWebhook("https://hooks.example.com/", nil, &relay.WebhookOptions{Dir: t.TempDir()}); err == nil {
		t.Error("NewWebhook with no secret: no error")
	}
	if _, err := relay.NewWebhook("https://hooks.example.com/", []byte(hookSecret), nil); err == nil {
		t.Error("NewWebhook with no directory: no error")
	}
}

// TestWebhookUnreadableBatch: a batch that cannot be read is set aside,
// and the batches after it are sent.
func TestWebhookUnreadableBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A directory where a batch file should be: reading it fails.
	if err := os.Mkdir(filepath.Join(dir, "0000000000000000000-0000000000.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newHookReceiver(t, nil)
	w := newWebhook(t, r.srv.URL, &relay.WebhookOptions{Dir: dir, MaxBatch: 1})
	emit(w, "q0")
	if got := accepted(r.wait(t, 1)); !slices.Equal(got, []string{"q0"}) {
		t.Errorf("events %v, want [q0]", got)
	}
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "0000000000000000000-0000000000.json.unreadable")); err != nil {
		t.Errorf("the unreadable batch was not set aside: %v", err)
	}
}

// TestWebhookEmitDuringClose: events emitted from many goroutines while
// the webhook closes are each sent, or left in Dir and sent by the next
// webhook: none is lost, none is sent twice.
func TestWebhookEmitDuringClose(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t, nil)
	dir := t.TempDir()
	w1, err := relay.NewWebhook(r.srv.URL, []byte(hookSecret), &relay.WebhookOptions{Dir: dir, MaxBatch: 7, Buffer: 5, MaxDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	var wg sync.WaitGroup
	for g := range 8 {
		ids := make([]string, 50)
		for i := range ids {
			ids[i] = fmt.Sprintf("g%d-%d", g, i)
		}
		want = append(want, ids...)
		wg.Go(func() { emit(w1, ids...) })
	}
	if err := w1.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	w2 := newWebhook(t, r.srv.URL, &relay.WebhookOptions{Dir: dir})
	if err := w2.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := accepted(r.wait(t, 1))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%d events taken, want %d, each once", len(got), len(want))
	}
	if left := batchFiles(t, dir); len(left) != 0 {
		t.Errorf("batches left: %v", left)
	}
}

// TestWebhookHTTPS: the webhook posts over TLS to a receiver whose
// certificate its Client trusts.
func TestWebhookHTTPS(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if req.TLS == nil || relay.VerifyWebhook([]byte(hookSecret), req.Header, b, time.Now(), time.Minute) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()
	w := newWebhook(t, srv.URL, &relay.WebhookOptions{Client: srv.Client(), MaxBatch: 1})
	emit(w, "q0")
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || !strings.Contains(bodies[0], `"queue_id":"q0"`) {
		t.Errorf("bodies received over TLS: %q", bodies)
	}
}
