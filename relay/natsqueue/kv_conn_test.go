package natsqueue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

// TestCheckURLs: nats:// and tls:// URLs of a host and a port (4222 by
// default), a list of them; no user in a URL, no other scheme.
func TestCheckURLs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":               "nats://127.0.0.1:4222",
		"nats://a.example, tls://b.example:1": "nats://a.example:4222,tls://b.example:1",
		"nats://[::1]:4222":                   "nats://[::1]:4222",
		"nats://u:secret@h:1":                 "",
		"http://u:secret@h:1":                 "",
		"nats://secret@h:1":                   "",
		"nats://u:secret@h:port":              "",
		"nats://u:secret@h:1/path":            "",
		"http://h:1":                          "",
		"h:4222":                              "",
		"nats://h:99999":                      "",
		"nats://h:1/path":                     "",
		"":                                    "",
	} {
		got, err := natsqueue.CheckURLs(in)
		if strings.Join(got, ",") != want || (err == nil) != (want != "") {
			t.Errorf("CheckURLs(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// TestConnect: Connect reaches a server of the list when the first does
// not answer, and gives up when ctx ends.
func TestConnect(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Port 1 on the loopback refuses at once.
	nc, err := natsqueue.Connect(ctx, "nats://127.0.0.1:1,"+s.ClientURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.ConnectedUrl() != s.ClientURL() {
		t.Errorf("connected to %s, want %s", nc.ConnectedUrl(), s.ClientURL())
	}
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := natsqueue.Connect(short, "nats://127.0.0.1:1", nil); err == nil {
		t.Error("Connect to nothing: no error")
	}
	if _, err := natsqueue.Connect(ctx, s.ClientURL(), &natsqueue.ConnectOptions{TLSCert: "cert.pem"}); err == nil {
		t.Error("a client certificate without its key: no error")
	}
}
