package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/relay"
)

// accountName is the customer's account at the provider, the name of its
// API key.
const accountName = "shop"

// relayWorld is the provider's relay: the submission server, its spool
// and Deliverer delivering by MX, and the return paths' MX, a
// BounceServer.
type relayWorld struct {
	o         *output
	server    *relay.Server
	bounces   *relay.BounceServer
	spool     *relay.Spool
	keys      *relay.KeyFile
	sender    *relay.MXSender
	supp      *relay.MemorySuppressions
	events    *eventLog
	key       string         // the customer's API key
	roots     *x509.CertPool // the relay's self-signed certificate
	addr      string         // submission, standing for port 587
	bounceLn  net.Listener
	submitLn  net.Listener
	stopDeliv context.CancelFunc
	delivered chan error
	served    sync.WaitGroup
}

func startRelay(ctx context.Context, o *output, dir string, d *dnsWorld, m *mx) (_ *relayWorld, err error) {
	r := &relayWorld{o: o, supp: &relay.MemorySuppressions{}, events: &eventLog{}}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	logger := o.logger()

	// The API key, made at start: the only time it is shown.
	if r.keys, err = relay.OpenKeyFile(ctx, filepath.Join(dir, "keys.json"), &relay.KeyFileOptions{Logger: logger}); err != nil {
		return nil, err
	}
	if r.key, err = r.keys.Create(ctx, accountName, []string{relay.ScopeSend}, []string{customerDomain}); err != nil {
		return nil, err
	}
	o.printf("  API key of the account %q, for %s: %s…\n", accountName, customerDomain, r.key[:12])

	// Two DKIM signers: the customer's key (d=customer.example, its
	// selector CNAMEd to the provider) and the provider's own.
	customer, err := dkim.NewSigner(customerDomain, customerSelector, d.customerKey, nil)
	if err != nil {
		return nil, err
	}
	provider, err := dkim.NewSigner(providerDomain, providerSelector, d.providerKey, nil)
	if err != nil {
		return nil, err
	}
	cert, roots, err := selfSigned(submissionHost)
	if err != nil {
		return nil, err
	}
	r.roots = roots
	if r.spool, err = relay.NewSpool(filepath.Join(dir, "spool"), &relay.SpoolOptions{Logger: logger}); err != nil {
		return nil, err
	}
	tracker := &relay.MemoryTracker{}
	if r.server, err = relay.NewServer(r.spool, &relay.ServerOptions{
		Hostname:       relayHost,
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{cert}},
		Authenticator:  r.keys,
		DomainSigners:  map[string]*dkim.Signer{customerDomain: customer},
		ProviderSigner: provider,
		ReturnPaths:    map[string]string{customerDomain: returnPathDomain},
		Tracker:        tracker,
		Suppressions:   r.supp,
		Events:         r.events,
		Logger:         logger,
	}); err != nil {
		return nil, err
	}
	if r.bounces, err = relay.NewBounceServer(r.spool, &relay.BounceServerOptions{
		Hostname:          bounceHost,
		ReturnPathDomains: []string{returnPathDomain},
		Tracker:           tracker,
		Suppressions:      r.supp,
		Events:            r.events,
		Logger:            logger,
	}); err != nil {
		return nil, err
	}

	// Delivery by MX, through the demo's DNS. Every host is on 127.0.0.1,
	// where the MX listens on a port of its own rather than 25.
	if r.sender, err = relay.NewMXSender(d.resolver, &relay.MXOptions{
		Port:      m.port(),
		AllowAddr: netip.Addr.IsLoopback,
		// With -v, the MX prints this conversation, TLS included.
		Client: &relay.ClientOptions{LocalName: relayHost, Logger: logger},
		Logger: logger,
	}); err != nil {
		return nil, err
	}
	deliverer, err := relay.NewDeliverer(r.spool, r.sender, &relay.DelivererOptions{
		Hostname:     relayHost,
		Events:       r.events,
		Suppressions: r.supp,
		Logger:       logger,
	})
	if err != nil {
		return nil, err
	}

	if r.submitLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if r.bounceLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	r.addr = r.submitLn.Addr().String()
	r.served.Go(func() { r.server.Serve(r.submitLn) })
	r.served.Go(func() { r.bounces.Serve(r.bounceLn) })
	dctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stopDeliv, r.delivered = stop, make(chan error, 1)
	go func() { r.delivered <- deliverer.Run(dctx) }()
	bouncePort := r.bounceLn.Addr().(*net.TCPAddr).Port
	if err := m.routeBounces(d, bouncePort); err != nil {
		return nil, err
	}
	o.printf("  submission on %s (standing for port 587): STARTTLS, then AUTH with the API key\n", r.addr)
	o.printf("  signs with d=%s s=%s (rsa-sha256) and d=%s s=%s (ed25519-sha256)\n", customerDomain, customerSelector, providerDomain, providerSelector)
	o.printf("  return path bounces+ID@%s; its MX %s on 127.0.0.1:%d\n", returnPathDomain, bounceHost, bouncePort)
	return r, nil
}

// close stops the servers, then delivery, then the spool.
func (r *relayWorld) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r.server != nil && r.submitLn != nil {
		r.server.Shutdown(ctx)
	}
	if r.bounces != nil && r.bounceLn != nil {
		r.bounces.Shutdown(ctx)
	}
	r.served.Wait()
	if r.stopDeliv != nil {
		r.stopDeliv()
		<-r.delivered
	}
	if r.sender != nil {
		r.sender.Close()
	}
	if r.spool != nil {
		r.spool.Close()
	}
	if r.keys != nil {
		r.keys.Close()
	}
}

// eventLog keeps the relay's events and lets the demo wait for one.
type eventLog struct {
	mu     sync.Mutex
	events []relay.Event
	more   chan struct{} // closed and renewed at each event
}

func (l *eventLog) Emit(_ context.Context, e *relay.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, *e)
	if l.more != nil {
		close(l.more)
		l.more = nil
	}
}

// wait returns the first event of type typ for rcpt, waiting for it until
// ctx ends.
func (l *eventLog) wait(ctx context.Context, typ relay.EventType, rcpt string) (relay.Event, error) {
	for {
		l.mu.Lock()
		i := slices.IndexFunc(l.events, func(e relay.Event) bool { return e.Type == typ && e.Rcpt == rcpt })
		if i >= 0 {
			e := l.events[i]
			l.mu.Unlock()
			return e, nil
		}
		if l.more == nil {
			l.more = make(chan struct{})
		}
		more := l.more
		l.mu.Unlock()
		select {
		case <-more:
		case <-ctx.Done():
			return relay.Event{}, fmt.Errorf("no %s event for %s: %w", typ, rcpt, ctx.Err())
		}
	}
}

// selfSigned makes a self-signed certificate for name and 127.0.0.1, and
// a pool that trusts it.
func selfSigned(name string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
