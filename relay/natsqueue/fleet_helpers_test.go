package natsqueue_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
	"github.com/smarthost-go/smarthost/srs"
)

// signingKeys are the DKIM keys of the relays under test: the customer's
// Ed25519 key and the provider's RSA key, as in relay's BenchmarkRelay.
var signingKeys = sync.OnceValues(func() ([2]any, error) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return [2]any{}, err
	}
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	return [2]any{ed, r}, err
})

// relayInstance is a relay.Server and a relay.Deliverer on one queue.
type relayInstance struct {
	addr   string
	srv    *relay.Server
	q      relay.Queue
	client *relay.Client
	stop   context.CancelFunc
	ran    chan error
	once   sync.Once
}

// startRelay starts a relay on q, for clients of 127.0.0.0/8 (a trusted
// network: no AUTH), delivering to the SMTP server at sink with workers
// workers. The test's cleanup stops it, unless kill did.
func startRelay(t testing.TB, q relay.Queue, sink string, workers int) *relayInstance {
	t.Helper()
	keys, err := signingKeys()
	if err != nil {
		t.Fatal(err)
	}
	customer, err := dkim.NewSigner("customer.example", "s1", keys[0].(ed25519.PrivateKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := dkim.NewSigner("relay.test", "p1", keys[1].(*rsa.PrivateKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := srs.NewRewriter("srs.relay.test", []string{"a test secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relay.NewServer(q, &relay.ServerOptions{
		Hostname:            "relay.test",
		Trusted:             []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		DomainSigners:       map[string]*dkim.Signer{"customer.example": customer},
		ProviderSigner:      provider,
		ReturnPaths:         map[string]string{"customer.example": "em1234.customer.example"},
		SRS:                 rw,
		MaxConnections:      -1,
		MaxConnectionsPerIP: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	client, err := relay.NewClient(sink, &relay.ClientOptions{TLS: relay.NoTLS, MaxConns: workers, LocalName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := relay.NewDeliverer(q, client, &relay.DelivererOptions{Workers: workers, Hostname: "relay.test", RetryBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &relayInstance{addr: l.Addr().String(), srv: srv, q: q, client: client, stop: stop, ran: make(chan error, 1)}
	go func() { r.ran <- d.Run(ctx) }()
	t.Cleanup(r.shutdown)
	return r
}

// shutdown stops the relay in order: the server, then delivery, then the
// queue.
func (r *relayInstance) shutdown() {
	r.once.Do(func() {
		r.srv.Close()
		r.stop()
		<-r.ran
		r.q.Close()
		r.client.Close()
	})
}

// kill stops the relay abruptly: its queue is closed under the
// deliveries, whose leases are abandoned without acknowledgement, and its
// server's connections are cut.
func (r *relayInstance) kill() {
	r.once.Do(func() {
		r.q.Close()
		r.srv.Close()
		r.stop()
		<-r.ran
		r.client.Close()
	})
}

// testMessage is message n of a test load of about size octets, from
// the customer's domain, identified by its X-Test-Seq field.
func testMessage(n, size int) []byte {
	return []byte(fmt.Sprintf("From: Shop <shop@customer.example>\r\nTo: <rcpt@receiver.example>\r\nSubject: order %d\r\nX-Test-Seq: %d\r\n\r\n", n, n) +
		strings.Repeat("A line of the order, as ordinary mail goes, ending here.\r\n", size/58))
}

var testEnvelope = &relay.Envelope{From: "shop@customer.example", To: relay.To("rcpt@receiver.example")}

// testSeq reads the X-Test-Seq field of a message the sink received.
func testSeq(data []byte) (int, bool) {
	_, rest, ok := strings.Cut(string(data), "\r\nX-Test-Seq: ")
	if !ok {
		return 0, false
	}
	v, _, _ := strings.Cut(rest, "\r\n")
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// cluster is an embedded JetStream cluster of n nodes on 127.0.0.1.
type cluster struct {
	t     testing.TB
	opts  []*server.Options
	nodes []*server.Server
}

func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var routes []string
	ports := make([]int, n)
	for i := range n {
		ports[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       freePort(t),
			NoLog:      true,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "relays", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		c.opts = append(c.opts, o)
		c.nodes = append(c.nodes, c.start(o))
	}
	t.Cleanup(func() {
		for _, s := range c.nodes {
			s.Shutdown()
		}
	})
	c.waitLeader()
	return c
}

func (c *cluster) start(o *server.Options) *server.Server {
	c.t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		c.t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("NATS node %s not ready", o.ServerName)
	}
	return s
}

// waitLeader waits until the cluster has elected a JetStream meta leader.
func (c *cluster) waitLeader() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.nodes {
			if s.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no JetStream meta leader after 30s")
}

// restart shuts node i down and starts it again on the same storage.
func (c *cluster) restart(i int) {
	c.nodes[i].Shutdown()
	c.nodes[i].WaitForShutdown()
	c.nodes[i] = c.start(c.opts[i])
}

func (c *cluster) url(i int) string { return c.nodes[i].ClientURL() }

// newQueue opens the queue, retrying while the cluster settles.
func newQueue(t testing.TB, url string, opts *natsqueue.Options) *natsqueue.Queue {
	t.Helper()
	_, js := connect(t, url)
	var err error
	for range 60 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var q *natsqueue.Queue
		q, err = natsqueue.New(ctx, js, opts)
		cancel()
		if err == nil {
			return q
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("natsqueue.New: %v", err)
	return nil
}

// freePort returns a port free on 127.0.0.1 now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
