package natsqueue_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runServer starts a single JetStream server on 127.0.0.1 for the test.
func runServer(t testing.TB) *server.Server {
	t.Helper()
	return runServerSync(t, false)
}

// runServerSync is runServer, with syncAlways the server's sync_interval:
// always (an fsync of every write before its acknowledgement).
func runServerSync(t testing.TB, syncAlways bool) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		SyncAlways: syncAlways,
		ServerName: "single",
		Host:       "127.0.0.1",
		Port:       -1,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connect connects to url, and returns JetStream on the connection.
func connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
