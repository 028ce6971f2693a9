package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

// A fleet: with -queue nats://..., the queue, the API keys and the
// suppression list are in NATS JetStream (package relay/natsqueue), and
// every relay pointing at the same servers shares them.

// natsTimeout bounds the connection to NATS and the first reading of the
// buckets, at the start of the relay or of a command.
const natsTimeout = 30 * time.Second

// keyStore is what the relay and the apikey commands use of a key store:
// a relay.KeyFile, or a natsqueue.Keys.
type keyStore interface {
	relay.Authenticator
	Create(ctx context.Context, name string, scopes, domains []string) (string, error)
	Revoke(ctx context.Context, name string) error
	List(ctx context.Context) ([]relay.KeyInfo, error)
	Close() error
}

// suppressionStore is a relay.SuppressionFile, or a
// natsqueue.Suppressions.
type suppressionStore interface {
	relay.Suppressions
	Close() error
}

var (
	_ keyStore         = (*relay.KeyFile)(nil)
	_ keyStore         = (*natsqueue.Keys)(nil)
	_ suppressionStore = (*relay.SuppressionFile)(nil)
	_ suppressionStore = (*natsqueue.Suppressions)(nil)
)

// natsSettings are the checked settings of -queue and -nats-*.
type natsSettings struct {
	urls     string
	replicas int // of the buckets and streams created
	opts     natsqueue.ConnectOptions
}

// checkNATS checks the NATS settings of c: nil without -queue.
func checkNATS(c *Config, name namer) (*natsSettings, error) {
	files := []struct{ key, val string }{
		{"nats-creds", c.NATSCreds}, {"nats-tls-ca", c.NATSTLSCA}, {"nats-tls-cert", c.NATSTLSCert}, {"nats-tls-key", c.NATSTLSKey},
	}
	if c.Queue == "" {
		for _, f := range files {
			if f.val != "" {
				return nil, fmt.Errorf("%s needs %s", name(f.key), name("queue"))
			}
		}
		if c.NATSReplicas != 0 {
			return nil, fmt.Errorf("%s needs %s", name("nats-replicas"), name("queue"))
		}
		return nil, nil
	}
	if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
		return nil, fmt.Errorf("%s %d: want 1 to 5", name("nats-replicas"), c.NATSReplicas)
	}
	if _, err := natsqueue.CheckURLs(c.Queue); err != nil {
		return nil, fmt.Errorf("%s: %s", name("queue"), cli.Msg(err))
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		return nil, fmt.Errorf("%s and %s go together", name("nats-tls-cert"), name("nats-tls-key"))
	}
	return &natsSettings{urls: c.Queue, replicas: max(c.NATSReplicas, 1), opts: natsqueue.ConnectOptions{
		CredsFile: c.NATSCreds, TLSCA: c.NATSTLSCA, TLSCert: c.NATSTLSCert, TLSKey: c.NATSTLSKey,
	}}, nil
}

// checkFiles reads the files the NATS settings name, so that one that
// cannot be used is a usage error before the relay starts.
func (n *natsSettings) checkFiles(name namer) error {
	o := n.opts
	if o.CredsFile != "" {
		if _, err := os.Stat(o.CredsFile); err != nil {
			return fmt.Errorf("%s: %v", name("nats-creds"), err)
		}
	}
	if o.TLSCA != "" {
		b, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return fmt.Errorf("%s: %v", name("nats-tls-ca"), err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("%s %s: no PEM certificate in it", name("nats-tls-ca"), o.TLSCA)
		}
	}
	if o.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey); err != nil {
			return fmt.Errorf("%s, %s: %v", name("nats-tls-cert"), name("nats-tls-key"), err)
		}
	}
	return nil
}

// connect connects to NATS, within natsTimeout.
func (n *natsSettings) connect(ctx context.Context, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, natsTimeout)
	defer cancel()
	o := n.opts
	o.Logger = logger
	nc, err := natsqueue.Connect(ctx, n.urls, &o)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("natsqueue: %w", err)
	}
	return nc, js, nil
}

// natsStores are the stores of a fleet, on one connection.
type natsStores struct {
	nc           *nats.Conn
	js           jetstream.JetStream
	keys         *natsqueue.Keys
	suppressions *natsqueue.Suppressions
}

// openNATS connects and opens the key store (when keys is set) and the
// suppression list (when suppressions is set), each within natsTimeout.
func (n *natsSettings) open(ctx context.Context, logger *slog.Logger, keys, suppressions bool) (*natsStores, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	nc, js, err := n.connect(ctx, logger)
	if err != nil {
		return nil, err
	}
	st := &natsStores{nc: nc, js: js}
	ctx, cancel := context.WithTimeout(ctx, natsTimeout)
	defer cancel()
	if keys {
		if st.keys, err = natsqueue.NewKeys(ctx, js, &natsqueue.KeysOptions{Replicas: n.replicas, Logger: logger}); err != nil {
			st.Close()
			return nil, err
		}
	}
	if suppressions {
		if st.suppressions, err = natsqueue.NewSuppressions(ctx, js, &natsqueue.SuppressionsOptions{Replicas: n.replicas, Logger: logger}); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// Close closes the stores, then the connection.
func (st *natsStores) Close() error {
	if st.keys != nil {
		st.keys.Close()
	}
	if st.suppressions != nil {
		st.suppressions.Close()
	}
	st.nc.Close()
	return nil
}

// natsKeys is a natsqueue.Keys that closes its connection with it.
type natsKeys struct {
	*natsqueue.Keys
	st *natsStores
}

func (k natsKeys) Close() error { return k.st.Close() }

// natsSuppressions is a natsqueue.Suppressions that closes its
// connection with it.
type natsSuppressions struct {
	*natsqueue.Suppressions
	st *natsStores
}

func (s natsSuppressions) Close() error { return s.st.Close() }

// fleetFlags are the NATS flags of the apikey and suppression commands,
// the relay's.
type fleetFlags struct{ cfg Config }

func (f *fleetFlags) register(c *cli.Command) { f.cfg.registerNATS(c.Flags) }

// settings returns the NATS settings of the flags, else of the relay's
// configuration file config when it has -queue; nil for the files.
// fileFlag names the command's file flag, which -queue excludes.
func (f *fleetFlags) settings(c *cli.Command, config, fileFlag string, fileSet bool) (*natsSettings, int, bool) {
	cfg, name := &f.cfg, func(key string) string { return "-" + key }
	if cfg.Queue == "" && config != "" {
		file, err := loadConfig(config)
		if err != nil {
			return nil, c.Usagef("-config: %v", err), true
		}
		if file.Queue != "" {
			cfg, name = file, func(key string) string { return "-config " + config + ": " + key }
		}
	}
	ns, err := checkNATS(cfg, name)
	if err != nil {
		return nil, c.Usagef("%v", err), true
	}
	if ns != nil {
		if fileSet {
			return nil, c.Usagef("%s with %s: the fleet's data is in NATS", fileFlag, name("queue")), true
		}
		if err := ns.checkFiles(name); err != nil {
			return nil, c.Usagef("%v", err), true
		}
	}
	return ns, 0, false
}
