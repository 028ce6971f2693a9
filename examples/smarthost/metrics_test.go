package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// TestMetricsAndWebhook: a message through the relay shows in the counters
// of -metrics (accepted, delivered, the queue empty again), and its events
// reach the -webhook receiver signed with the secret of
// -webhook-secret-file, as they reach the -events file.
func TestMetricsAndWebhook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const secret = "a webhook secret of the test"
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The webhook receiver: every request must verify.
	var mu sync.Mutex
	var hooked []relay.Event
	var unsigned int
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var evs []relay.Event
		err := relay.VerifyWebhook([]byte(secret), r.Header, body, time.Now(), time.Minute)
		if err == nil {
			err = json.Unmarshal(body, &evs)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			unsigned++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		hooked = append(hooked, evs...)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook.Listener.Close()
	hook.Listener = ln
	hook.Start()
	defer hook.Close()

	sink := newSink(t, &smtptest.Options{TLS: smtptest.NoTLS})
	events := filepath.Join(dir, "events.jsonl")
	d := startDaemon(t, dir, nil, "-listen", "127.0.0.1:0", "-hostname", "relay.test", "-trusted", "127.0.0.0/8",
		"-upstream", sink.Addr, "-upstream-tls", "none", "-key-domains", "client.example",
		"-metrics", "127.0.0.1:0", "-events", events,
		"-webhook", hook.URL+"/events", "-webhook-secret-file", secretFile)
	m := regexp.MustCompile(`metrics_addr=(\S+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no metrics_addr in the log:\n%s", d.stderr)
	}
	base := "http://" + m[1]
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 \"ok\\n\"", code, body)
	}
	if _, body := get("/metrics"); !hasLine(body, "smarthost_messages_accepted_total 0") || !hasLine(body, "smarthost_queue_messages 0") {
		t.Errorf("/metrics before any message:\n%s", body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sendPlain(ctx, d.addr, "<counted@client.example>"); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.WaitMessages(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var body string
	// The counter moves as the recipient is delivered, the queue a moment
	// later, once the message is removed from the spool.
	waitFor(t, time.Minute, "the delivery in /metrics", func() bool {
		_, body = get("/metrics")
		return hasLine(body, `smarthost_recipients_total{outcome="delivered",reason=""} 1`) && hasLine(body, "smarthost_queue_messages 0")
	})
	for _, want := range []string{
		"smarthost_messages_accepted_total 1",
		"smarthost_delivery_latency_seconds_count 1",
		"smarthost_queue_oldest_age_seconds 0",
		"smarthost_auth_failures_total 0",
	} {
		if !hasLine(body, want) {
			t.Errorf("/metrics has no line %q:\n%s", want, body)
		}
	}

	// Stopped, the relay flushes the webhook's last batch.
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, e := range hooked {
		got = append(got, string(e.Type)+" "+e.Rcpt+" "+e.MessageID)
	}
	want := []string{"accepted rcpt@sink.example <counted@client.example>", "delivered rcpt@sink.example <counted@client.example>"}
	if !slices.Equal(got, want) || unsigned != 0 {
		t.Errorf("webhook events %q (%d refused as unsigned), want %q", got, unsigned, want)
	}
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Errorf("%d lines in the events file, want 2:\n%s", n, b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "smarthost-data", "webhook", "*.json")); len(left) != 0 {
		t.Errorf("webhook batches left: %v", left)
	}
}

// hasLine reports whether text has line as one of its lines.
func hasLine(text, line string) bool {
	return slices.Contains(strings.Split(text, "\n"), line)
}

// TestWebhookRestart: events the webhook receiver did not acknowledge
// before the relay stopped wait under -data, and reach the receiver after
// the next start.
func TestWebhookRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte("another secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	up := false
	var got []relay.Event
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		var evs []relay.Event
		if !up || relay.VerifyWebhook([]byte("another secret"), r.Header, body, time.Now(), time.Minute) != nil || json.Unmarshal(body, &evs) != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got = append(got, evs...)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook.Listener.Close()
	hook.Listener = ln
	hook.Start()
	defer hook.Close()

	sink := newSink(t, &smtptest.Options{TLS: smtptest.NoTLS})
	args := []string{"-listen", "127.0.0.1:0", "-hostname", "relay.test", "-trusted", "127.0.0.0/8",
		"-upstream", sink.Addr, "-upstream-tls", "none", "-key-domains", "client.example", "-shutdown-timeout", "1s",
		"-webhook", hook.URL, "-webhook-secret-file", secretFile}
	d := startDaemon(t, dir, nil, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sendPlain(ctx, d.addr, "<kept@client.example>"); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.WaitMessages(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
	batches := filepath.Join(dir, "smarthost-data", "webhook", "*.json")
	if left, _ := filepath.Glob(batches); len(left) == 0 {
		t.Fatalf("no webhook batch left after a stop with the receiver down\n%s", d.stderr)
	}

	mu.Lock()
	up = true
	mu.Unlock()
	d = startDaemon(t, dir, nil, args...)
	waitFor(t, time.Minute, "the events at the receiver", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 2
	})
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	// Events may be emitted out of order (a worker can deliver a message
	// before its session emits the accepted event): by their Time, they
	// are the message's accepted and delivered.
	slices.SortStableFunc(got, func(a, b relay.Event) int { return a.Time.Compare(b.Time) })
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, string(e.Type)+" "+e.MessageID)
	}
	if want := []string{"accepted <kept@client.example>", "delivered <kept@client.example>"}; !slices.Equal(kinds, want) {
		t.Errorf("events after the restart, by time, %q, want %q", kinds, want)
	}
	if left, _ := filepath.Glob(batches); len(left) != 0 {
		t.Errorf("webhook batches left: %v", left)
	}
}
