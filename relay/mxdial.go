package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// mxClients are the Clients of an MXSender's default Dial, one per address
// and host name, kept with their pools of connections for the next Send.
type mxClients struct {
	tmpl ClientOptions

	mu      sync.Mutex
	clients map[mxClientKey]*Client
	closed  bool
}

// mxClientKey is what a Client is made of: the address it connects to,
// and the name its TLS expects.
type mxClientKey struct {
	addr       string
	serverName string
}

// newMXClients checks the template of the Clients, by making one.
func newMXClients(tmpl *ClientOptions) (*mxClients, error) {
	mc := &mxClients{clients: make(map[mxClientKey]*Client)}
	if tmpl != nil {
		mc.tmpl = *tmpl
	}
	if mc.tmpl.TLS == "" {
		mc.tmpl.TLS = OpportunisticTLS
	}
	if mc.tmpl.Credentials != nil {
		return nil, errors.New("relay: NewMXSender: MXOptions.Client has Credentials: the MX hosts of the recipients' domains are anyone's, and get no password")
	}
	if _, err := NewClient("192.0.2.1:25", mc.options("mx.example")); err != nil {
		return nil, fmt.Errorf("relay: NewMXSender: MXOptions.Client: %w", err)
	}
	return mc, nil
}

// options are the template's options for a host.
func (mc *mxClients) options(serverName string) *ClientOptions {
	o := mc.tmpl
	cfg := &tls.Config{}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	o.TLSConfig = cfg
	return &o
}

// dial is the default MXOptions.Dial: the Client of h's address and name,
// made on first use.
func (mc *mxClients) dial(h MXHost) Sender {
	key := mxClientKey{addr: h.Addr.String(), serverName: h.Name}
	if strings.HasPrefix(h.Name, "[") {
		// An address literal: the certificate is checked against the
		// address (crypto/tls sends no SNI for an address).
		key.serverName = h.Addr.Addr().String()
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.closed {
		return failedSender{fmt.Errorf("relay: mx %s: %w", h.Addr, ErrClientClosed)}
	}
	if c := mc.clients[key]; c != nil {
		return c
	}
	c, err := NewClient(key.addr, mc.options(key.serverName))
	if err != nil {
		return failedSender{fmt.Errorf("relay: mx %s: %w", h.Addr, err)}
	}
	mc.clients[key] = c
	return c
}

// close closes every Client.
func (mc *mxClients) close() {
	mc.mu.Lock()
	clients := mc.clients
	mc.clients, mc.closed = nil, true
	mc.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
}

// failedSender is a Sender that fails with err.
type failedSender struct{ err error }

func (f failedSender) Send(context.Context, *Envelope, Message) (*Receipt, error) {
	return nil, f.err
}
