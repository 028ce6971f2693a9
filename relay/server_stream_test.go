package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/relay"
)

// fileQueue is a Queue that writes each message to a file of its own, so
// that what it keeps is on disk, not on the heap a test measures. Every
// sampleEvery octets written, it calls sample.
type fileQueue struct {
	dir    string
	sample func()

	mu      sync.Mutex
	entries []*relay.Entry
	files   []string
}

const sampleEvery = 4 << 20

func (q *fileQueue) Create(ctx context.Context) (relay.QueueWriter, error) {
	f, err := os.CreateTemp(q.dir, "msg-*")
	if err != nil {
		return nil, err
	}
	return &fileQueueWriter{q: q, f: f}, nil
}

func (q *fileQueue) Lease(ctx context.Context) (relay.Lease, error) {
	return nil, errors.New("fileQueue: no delivery in these tests")
}

func (q *fileQueue) Close() error { return nil }

type fileQueueWriter struct {
	q    *fileQueue
	f    *os.File
	n    int64
	done bool
}

func (w *fileQueueWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if w.q.sample != nil && (w.n+int64(n))/sampleEvery != w.n/sampleEvery {
		w.q.sample()
	}
	w.n += int64(n)
	return n, err
}

func (w *fileQueueWriter) Commit(ctx context.Context, e *relay.Entry) error {
	if w.q.sample != nil {
		w.q.sample()
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	w.done = true
	w.q.mu.Lock()
	defer w.q.mu.Unlock()
	e.ID = fmt.Sprintf("F%04d", len(w.q.entries)+1)
	e.Created = time.Now()
	e.NextAttempt = e.Created
	w.q.entries = append(w.q.entries, e)
	w.q.files = append(w.q.files, w.f.Name())
	return nil
}

func (w *fileQueueWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// lineSource gives n octets of message body: lines of 78 characters and
// CRLF, none beginning with a dot.
type lineSource struct {
	n     int64
	block []byte
	off   int
}

func newLineSource(n int64) *lineSource {
	var b bytes.Buffer
	for i := 0; b.Len() < 64<<10; i++ {
		fmt.Fprintf(&b, "%06d %s\r\n", i, strings.Repeat("abcdefghij", 8)[:71])
	}
	return &lineSource{n: n, block: b.Bytes()}
}

func (s *lineSource) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.n)]
	k := 0
	for k < len(p) {
		c := copy(p[k:], s.block[s.off:])
		k += c
		s.off = (s.off + c) % len(s.block)
	}
	s.n -= int64(k)
	return k, nil
}

// TestServerStreamsLargeMessage sends a 50 MiB message through the whole
// pipeline (STARTTLS, AUTH, two DKIM signatures, the queue) and checks
// that the heap never grows by anything near its size: the body streams
// from the socket to the queue and the signers, and is never held. The
// queue writes to a file; the heap is sampled every 4 MiB the queue
// receives, and at Commit.
func TestServerStreamsLargeMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 50 MiB")
	}
	// Not parallel: the heap measured is the whole test binary's.
	const (
		bodySize = 50 << 20
		bound    = 16 << 20
	)
	var (
		mu   sync.Mutex
		peak uint64
		n    int
	)
	q := &fileQueue{dir: t.TempDir(), sample: func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapAlloc)
		n++
		mu.Unlock()
	}}
	fx := srvStartQueue(t, q, func(o *relay.ServerOptions) { o.MaxMessageBytes = 64 << 20 }, nil)

	c, err := smtp.DialStartTLS(fx.addr, fx.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(gosasl.NewPlainClient("", "apikey", srvKey)); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	if err := c.Mail("orders@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("buyer@example.net", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	const head = "From: Shop <orders@customer.example>\r\nTo: buyer@example.net\r\nSubject: large\r\n\r\n"
	if _, err := io.WriteString(w, head); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, newLineSource(bodySize)); err != nil {
		t.Fatal(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.StatusText, "queued as F0001") {
		t.Fatalf("reply %q", resp.StatusText)
	}
	mu.Lock()
	growth, samples := int64(peak)-int64(before.HeapAlloc), n
	mu.Unlock()
	t.Logf("heap before %.1f MiB, peak %.1f MiB over %d samples: growth %.1f MiB for a %d MiB body",
		float64(before.HeapAlloc)/(1<<20), float64(peak)/(1<<20), samples, float64(growth)/(1<<20), bodySize>>20)
	if samples < bodySize/sampleEvery {
		t.Errorf("%d heap samples, want at least %d", samples, bodySize/sampleEvery)
	}
	if growth >= bound {
		t.Errorf("the heap grew by %d octets while a %d-octet body streamed, want under %d", growth, bodySize, bound)
	}

	// What was queued is the whole message, and both signatures verify
	// over it, read from the file.
	if len(q.entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q.entries))
	}
	e := q.entries[0]
	f, err := os.Open(q.files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if min := int64(len(head) + bodySize); st.Size() < min || st.Size() > min+2048 {
		t.Errorf("queued %d octets, want the %d sent and the added fields", st.Size(), min)
	}
	res, err := fx.verifier.Verify(context.Background(), io.MultiReader(bytes.NewReader(e.Header), f))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Status != dkim.Pass || res[1].Status != dkim.Pass ||
		res[0].Domain != "customer.example" || res[1].Domain != "relay.test" {
		t.Errorf("signatures of the large message: %+v", res)
	}
}
