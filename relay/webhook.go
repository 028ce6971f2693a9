package relay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The header fields of a webhook request. The signature is
// "v1=" and the HMAC-SHA256 (RFC 2104, FIPS 180-4) under the shared
// secret of the timestamp, a dot and the body, in lower-case hex
// (RFC 4648 §8): HMAC(secret, timestamp + "." + body). The timestamp is
// the time of the request in seconds since the Unix epoch, in decimal.
// The batch header names the batch: a batch that is sent again after a
// failure (a timeout, a non-2xx reply) carries the same name, so that a
// receiver can drop a batch it has already taken.
const (
	WebhookTimestampHeader = "X-Smarthost-Timestamp"
	WebhookSignatureHeader = "X-Smarthost-Signature"
	WebhookBatchHeader     = "X-Smarthost-Batch"
)

// ErrWebhookSignature is the error of VerifyWebhook for a request whose
// signature is missing, wrong, or too old.
var ErrWebhookSignature = errors.New("relay: webhook signature does not verify")

// WebhookOptions configures NewWebhook. Dir is required; for the others
// zero means the default.
type WebhookOptions struct {
	// Dir holds the batches not yet acknowledged: each is written there,
	// and synced, before it is sent, and removed once the receiver
	// answers 2xx, so that a batch survives a crash or a restart; the
	// next NewWebhook on the same directory sends what it finds. One
	// Webhook per directory. Created (mode 0700) if missing. Required.
	Dir string
	// MaxBatch is the most events in one request. Default 100.
	MaxBatch int
	// MaxDelay is the longest an event waits for its batch to fill
	// before the batch is sent anyway. Default 5 seconds.
	MaxDelay time.Duration
	// Buffer is the number of events held in memory waiting for a batch;
	// when it is full, Emit writes the events to Dir in batches of its
	// own instead of waiting. Default 1000.
	Buffer int
	// MinBackoff is the wait after the first failed request of a batch;
	// it doubles after each failure, up to MaxBackoff. Defaults 1 second
	// and 5 minutes (or MinBackoff, if longer).
	MinBackoff, MaxBackoff time.Duration
	// Client makes the requests. It must not follow redirects (a 3xx is a
	// failure to retry). Default: an http.Client with a 30 second timeout
	// that does not follow redirects.
	Client *http.Client
	// Now is the clock of the signature timestamps. Default time.Now.
	Now func() time.Time
	// Logger receives a debug record per request and an error record per
	// failure. Never the secret. Default: none.
	Logger *slog.Logger
}

// Webhook is an Events that posts the events as JSON arrays (RFC 8259)
// of Event objects to a URL, in batches, signed with an HMAC-SHA256
// (see WebhookSignatureHeader), retrying with exponential backoff until
// the receiver answers 2xx. Delivery is at least once: a batch whose 2xx
// is lost is sent again, under the same WebhookBatchHeader.
type Webhook struct {
	url    string
	secret []byte
	o      WebhookOptions

	in        chan []byte // marshalled events waiting for the batcher
	mu        sync.RWMutex
	over      [][]byte // events that did not fit in `in`
	closed    bool
	overflow  chan struct{} // cap 1: over has events
	wake      chan struct{} // cap 1: a batch was written
	stop      chan struct{} // closed by Close
	batchDone chan struct{} // closed when the batcher has written all
	sendDone  chan struct{} // closed when the sender has stopped
	cancel    context.CancelFunc
	seq       atomic.Uint64
}

// NewWebhook returns a Webhook posting to rawURL, signing with secret,
// and starts it; it takes up the batches a previous Webhook left in
// opts.Dir. The URL must be https, or http to a loopback address
// (127.0.0.0/8 or ::1, as an IP literal) for tests and sidecars on the
// same host. Close it to flush.
func NewWebhook(rawURL string, secret []byte, opts *WebhookOptions) (*Webhook, error) {
	if err := CheckWebhookURL(rawURL); err != nil {
		return nil, err
	}
	if len(secret) == 0 {
		return nil, errors.New("relay: webhook: empty secret")
	}
	var o WebhookOptions
	if opts != nil {
		o = *opts
	}
	if o.Dir == "" {
		return nil, errors.New("relay: webhook: no directory for the batches")
	}
	defaultTo(&o.MaxBatch, 100)
	defaultTo(&o.MaxDelay, 5*time.Second)
	defaultTo(&o.Buffer, 1000)
	defaultTo(&o.MinBackoff, time.Second)
	defaultTo(&o.MaxBackoff, max(5*time.Minute, o.MinBackoff))
	if o.MaxBatch < 0 || o.MaxDelay < 0 || o.Buffer < 0 || o.MinBackoff < 0 || o.MaxBackoff < o.MinBackoff {
		return nil, errors.New("relay: webhook: negative batch size, delay, buffer or backoff")
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: webhook: %w", err)
	}
	// A batch being written when the process stopped was never sent nor
	// counted as written: its events are lost with the process's memory.
	tmps, _ := filepath.Glob(filepath.Join(o.Dir, "*.tmp"))
	for _, t := range tmps {
		os.Remove(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{
		url:       rawURL,
		secret:    slices.Clone(secret),
		o:         o,
		in:        make(chan []byte, o.Buffer),
		overflow:  make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		batchDone: make(chan struct{}),
		sendDone:  make(chan struct{}),
		cancel:    cancel,
	}
	go w.batcher()
	go w.sender(ctx)
	return w, nil
}

// CheckWebhookURL says whether NewWebhook takes rawURL: https, or plain
// http only to a loopback IP literal (127.0.0.0/8, [::1]); a name such as
// localhost is refused, since it may resolve elsewhere.
func CheckWebhookURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("relay: webhook URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("relay: webhook URL %q has no host", rawURL)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		ip, err := netip.ParseAddr(u.Hostname())
		if err == nil && ip.Unmap().IsLoopback() {
			return nil
		}
		return fmt.Errorf("relay: webhook URL %q: plain http only to a loopback address (127.0.0.1, [::1]); use https", rawURL)
	default:
		return fmt.Errorf("relay: webhook URL %q: scheme must be https", rawURL)
	}
}

// Emit queues e for the next batch. It does not wait for the network:
// when the buffer is full the events go to Dir. After Close, events are
// written to Dir for the next Webhook on it.
func (w *Webhook) Emit(ctx context.Context, e *Event) {
	b, err := json.Marshal(e)
	if err != nil {
		w.o.Logger.ErrorContext(ctx, "relay: webhook: encode an event", "err", err)
		return
	}
	w.mu.RLock()
	if !w.closed {
		select {
		case w.in <- b:
			w.mu.RUnlock()
			return
		default:
		}
	}
	w.mu.RUnlock()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.over = append(w.over, b)
	switch {
	case w.closed || len(w.over) >= w.o.MaxBatch:
		w.flushOverLocked()
	case len(w.over) == 1:
		select {
		case w.overflow <- struct{}{}:
		default:
		}
	}
}

// flushOverLocked writes the overflow events to Dir. w.mu is held.
func (w *Webhook) flushOverLocked() {
	for len(w.over) > 0 {
		n := min(len(w.over), w.o.MaxBatch)
		w.persist(w.over[:n])
		w.over = w.over[n:]
	}
	w.over = nil
}

func (w *Webhook) flushOver() {
	w.mu.Lock()
	w.flushOverLocked()
	w.mu.Unlock()
}

// batcher gathers the events of `in` into batches of MaxBatch, or fewer
// after MaxDelay, and writes them to Dir.
func (w *Webhook) batcher() {
	defer close(w.batchDone)
	var batch [][]byte
	timer := time.NewTimer(w.o.MaxDelay)
	timer.Stop()
	running := false
	start := func() {
		if !running {
			timer.Reset(w.o.MaxDelay)
			running = true
		}
	}
	flush := func() {
		if len(batch) > 0 {
			w.persist(batch)
			batch = nil
		}
		if running {
			timer.Stop()
			running = false
		}
	}
	for {
		select {
		case b := <-w.in:
			batch = append(batch, b)
			start()
			if len(batch) >= w.o.MaxBatch {
				flush()
			}
		case <-w.overflow:
			start()
		case <-timer.C:
			running = false
			flush()
			w.flushOver()
		case <-w.stop:
			// Close holds no Emit in its send any more: `in` only drains.
			for {
				select {
				case b := <-w.in:
					batch = append(batch, b)
					if len(batch) >= w.o.MaxBatch {
						flush()
					}
					continue
				default:
				}
				break
			}
			flush()
			w.flushOver()
			return
		}
	}
}

// persist writes a batch to Dir, synced, and wakes the sender. A batch
// that cannot be written is logged and lost, as the events file's lines
// are: events are not the record of delivery.
func (w *Webhook) persist(events [][]byte) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(e)
	}
	body.WriteByte(']')
	name := fmt.Sprintf("%019d-%010d.json", w.o.Now().UnixNano(), w.seq.Add(1))
	if err := writeFileSynced(w.o.Dir, name, body.Bytes()); err != nil {
		w.o.Logger.Error("relay: webhook: write a batch", "dir", w.o.Dir, "events", len(events), "err", err)
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// writeFileSynced writes data to dir/name durably: to a temporary file,
// synced, renamed, and the directory synced.
func writeFileSynced(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// pending lists the batches in Dir, oldest first.
func (w *Webhook) pending() ([]string, error) {
	names, err := filepath.Glob(filepath.Join(w.o.Dir, "*.json"))
	slices.Sort(names)
	return names, err
}

// sender posts the batches of Dir in order until each is acknowledged,
// and stops once the batcher is done and Dir is empty, or ctx is done.
func (w *Webhook) sender(ctx context.Context) {
	defer close(w.sendDone)
	draining := false
	for {
		names, err := w.pending()
		if err != nil {
			w.o.Logger.Error("relay: webhook: list the batches", "dir", w.o.Dir, "err", err)
		}
		if len(names) == 0 {
			if draining {
				return
			}
			select {
			case <-w.wake:
			case <-w.batchDone:
				draining = true
			case <-ctx.Done():
				return
			}
			continue
		}
		for _, name := range names {
			if !w.deliver(ctx, name) {
				return
			}
		}
	}
}

// deliver posts one batch until it is acknowledged, and removes it. It
// returns false when ctx is done first.
func (w *Webhook) deliver(ctx context.Context, name string) bool {
	body, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		// Unreadable: set it aside for the operator (under a name the
		// sender does not list, so as not to try it again at once), and
		// go on with the rest.
		w.o.Logger.Error("relay: webhook: read a batch", "file", name, "err", err)
		if err := os.Rename(name, name+".unreadable"); err != nil {
			w.o.Logger.Error("relay: webhook: set aside an unreadable batch", "file", name, "err", err)
			return sleep(ctx, w.o.MaxBackoff)
		}
		return true
	}
	batch := strings.TrimSuffix(filepath.Base(name), ".json")
	backoff := w.o.MinBackoff
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, batch, body)
		if err == nil {
			w.o.Logger.Debug("relay: webhook: batch sent", "batch", batch, "attempt", attempt)
			if err := os.Remove(name); err != nil {
				w.o.Logger.Error("relay: webhook: remove a sent batch", "file", name, "err", err)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.o.Logger.Error("relay: webhook: send a batch", "batch", batch, "attempt", attempt, "retry_in", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, w.o.MaxBackoff)
	}
}

// sleep waits for d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// post sends one batch, signed; nil means a 2xx reply.
func (w *Webhook) post(ctx context.Context, batch string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(w.o.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(WebhookTimestampHeader, ts)
	req.Header.Set(WebhookSignatureHeader, "v1="+hex.EncodeToString(webhookMAC(w.secret, ts, body)))
	req.Header.Set(WebhookBatchHeader, batch)
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("relay: webhook: %s", resp.Status)
	}
	return nil
}

// Close stops taking events into batches, writes the last batch, and
// sends what is in Dir until it is empty or ctx is done; what is left
// then is sent by the next Webhook on Dir, and Close returns ctx's error.
func (w *Webhook) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.batchDone
	select {
	case <-w.sendDone:
		w.cancel()
		return nil
	case <-ctx.Done():
		w.cancel()
		<-w.sendDone
		return fmt.Errorf("relay: webhook: batches left in %s: %w", w.o.Dir, context.Cause(ctx))
	}
}

// webhookMAC is HMAC-SHA256(secret, timestamp "." body).
func webhookMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhook checks the signature of a webhook request, for a
// receiver: header holds its WebhookTimestampHeader and
// WebhookSignatureHeader, body is the request body as received. The
// timestamp must be within tolerance of now (default 5 minutes when
// tolerance is 0 or less), so that a captured request cannot be replayed
// later. The signature header may list several comma-separated "v1="
// values (a secret being rotated); one must match. The comparison takes
// constant time. The error wraps ErrWebhookSignature.
func VerifyWebhook(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	ts := header.Get(WebhookTimestampHeader)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no timestamp", ErrWebhookSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is %s away", ErrWebhookSignature, ts, d.Round(time.Second))
	}
	want := webhookMAC(secret, ts, body)
	for v := range strings.SplitSeq(header.Get(WebhookSignatureHeader), ",") {
		sig, ok := strings.CutPrefix(strings.TrimSpace(v), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrWebhookSignature)
}
