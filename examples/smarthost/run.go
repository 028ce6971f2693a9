package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/srs"
)

// firstKeyName names the API key made with a new key file.
const firstKeyName = "default"

// serveCommand is the relay's command line, its flags bound to cfg's
// fields with their values as the defaults, and -config and -check.
func serveCommand(cfg *Config, stdout, stderr io.Writer) (c *cli.Command, _ *Config, configPath *string, check *bool) {
	c = cli.New("smarthost", "smarthost [-config FILE] [-check] [FLAGS]", stdout, stderr)
	c.Doc = `Runs the relay: a submission server (STARTTLS, then AUTH PLAIN or LOGIN with
the user "apikey" and an API key; or a trusted network) that signs each
message with DKIM (the key of the From domain, then the provider's), gives
it a return path (bounces+ID@SUBDOMAIN) or an SRS envelope sender, answers
250 once it is in the spool on disk, and delivers it, through -upstream or
to the recipients' MX hosts, with retries, and bounces it to its sender
when it cannot be delivered. Its message-tracking events go to the file of
-events and, signed, to -webhook; -metrics serves Prometheus metrics and
/healthz. SIGTERM or SIGINT stops it gracefully.

With -bounce-listen it also receives, on port 25 without AUTH, the mail sent
back to the return paths (whose IDs it tracks in DATA/tracking.jsonl for 30
days) and to the SRS addresses: bounces and feedback reports become bounced
and spamreport events, mail to an SRS address is forwarded to the original
sender; any other recipient is refused.

The settings come from the flags, over those of the YAML file of -config,
whose keys are the flags' names (relative paths there are taken from the
file's directory). Without -keys, it makes the key file under -data with a
first API key, printed on standard output with the key alone on the last
line. -check checks everything, prints the settings in effect as YAML and
exits.

Each account has a suppression list (-suppressions): recipients refused
for good by the upstream or MX with a status about the address (5.1.1,
5.1.2, 5.1.6, 5.1.10) are added, and refused at RCPT from then on (550
5.1.1), or dropped with -suppressed drop. Clients of -trusted networks
have no account, and no list applies to them.

With -queue nats://HOST:PORT[,...], the queue, the API keys and the
suppression list are in NATS JetStream, shared by every relay pointing
there (a fleet); no first key is made.

"smarthost apikey create|list|revoke" manages the API keys;
"smarthost suppression list|add|remove" the suppression list; with
-queue, those of the fleet.`
	c.Stdin = "nothing"
	c.Exit0 = "when the relay stopped on SIGTERM or SIGINT (or -check found no fault)"
	c.Exit1 = "when the relay could not start (a listen address in use, a spool or key\n     file that cannot be written) or failed while running"
	configPath = c.Flags.String("config", "", "read the settings from the YAML `FILE`; the flags given override it")
	check = c.Flags.Bool("check", false, "check the settings and the files they name, print the settings in effect as YAML, and exit")
	cfg.register(c.Flags)
	return c, cfg, configPath, check
}

// serve reads and checks the settings, then runs the relay until ctx ends.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c, cfg, configPath, check := serveCommand(defaultConfig(), stdout, stderr)
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}
	set := map[string]bool{}
	c.Flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	name := func(key string) string { return "-" + key }
	if *configPath != "" {
		file, err := loadConfig(*configPath)
		if err != nil {
			return c.Usagef("-config: %v", err)
		}
		// The flags again, over the file's settings: they parsed once,
		// they parse again.
		again, fileCfg, _, _ := serveCommand(file, io.Discard, io.Discard)
		if status, stop := again.Parse(args); stop {
			return status
		}
		cfg = fileCfg
		path := *configPath
		name = func(key string) string {
			if set[key] {
				return "-" + key
			}
			return "-config " + path + ": " + key
		}
	}
	s, err := checkConfig(cfg, name, getenv)
	if err != nil {
		return c.Usagef("%v", err)
	}
	if err := s.loadFiles(ctx, name); err != nil {
		return c.Usagef("%v", err)
	}
	if *check {
		if err := s.cfg.marshal(stdout); err != nil {
			return c.Failf("%v", err)
		}
		return cli.OK
	}
	level := slog.LevelInfo
	if s.cfg.Debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return runRelay(ctx, c, s, stdout, logger)
}

// runRelay starts the relay with the checked settings s and runs it until
// ctx ends, then stops it gracefully.
func runRelay(ctx context.Context, c *cli.Command, s *settings, stdout io.Writer, logger *slog.Logger) (status int) {
	cfg := s.cfg
	// Listen first: an address in use ends the start before a file is
	// made.
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.listen)
	if err != nil {
		return c.Failf("-listen: %v", err)
	}
	defer ln.Close()
	var lnTLS net.Listener
	if s.listenTLS != "" {
		if lnTLS, err = lc.Listen(ctx, "tcp", s.listenTLS); err != nil {
			return c.Failf("-listen-tls: %v", err)
		}
		defer lnTLS.Close()
	}
	var lnBounce net.Listener
	if s.bounceListen != "" {
		if lnBounce, err = lc.Listen(ctx, "tcp", s.bounceListen); err != nil {
			return c.Failf("-bounce-listen: %v", err)
		}
		defer lnBounce.Close()
	}
	var lnMetrics net.Listener
	if s.metrics != "" {
		if lnMetrics, err = lc.Listen(ctx, "tcp", s.metrics); err != nil {
			return c.Failf("-metrics: %v", err)
		}
		defer lnMetrics.Close()
	}

	// The files of the data directory.
	for _, dir := range []string{cfg.Data, filepath.Dir(cfg.Keys), filepath.Dir(cfg.Spool), filepath.Dir(cfg.TLSCert), filepath.Dir(cfg.SRSSecrets), filepath.Dir(cfg.Suppressions)} {
		if dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return c.Failf("%v", err)
			}
		}
	}
	cert := s.cert
	if cert == nil {
		var made bool
		if cert, made, err = selfSigned(cfg.TLSCert, cfg.TLSKey, s.hostname, []string{s.listen, s.listenTLS}, time.Now()); err != nil {
			return c.Failf("the self-signed certificate: %v", err)
		}
		logger.Info("self-signed certificate", "file", cfg.TLSCert, "made", made, "sha256", fingerprint(cert), "not_after", cert.Leaf.NotAfter)
	}
	var rewriter *srs.Rewriter
	if cfg.SRSDomain != "" {
		if s.srsSecrets == nil {
			secret := make([]byte, 32)
			rand.Read(secret)
			s.srsSecrets = []string{base64.RawStdEncoding.EncodeToString(secret)}
			if err := writeFileAtomic(cfg.SRSSecrets, []byte(s.srsSecrets[0]+"\n"), 0o600); err != nil {
				return c.Failf("-srs-secrets: %v", err)
			}
			logger.Info("made the SRS secret", "file", cfg.SRSSecrets)
		}
		if rewriter, err = srs.NewRewriter(cfg.SRSDomain, s.srsSecrets, nil); err != nil {
			return c.Failf("-srs-domain: %s", cli.Msg(err))
		}
	}
	// The keys and the suppression list: in files under -data, or in
	// NATS JetStream with -queue, shared by the fleet.
	var keys keyStore
	var suppressions suppressionStore
	var fleet *natsStores
	if s.nats != nil {
		if fleet, err = s.nats.open(ctx, logger, true, true); err != nil {
			return c.Failf("-queue: %s", cli.Msg(err))
		}
		defer fleet.Close()
		keys, suppressions = fleet.keys, fleet.suppressions
	} else {
		kf, err := relay.OpenKeyFile(ctx, cfg.Keys, &relay.KeyFileOptions{Logger: logger})
		if err != nil {
			return c.Failf("-keys: %s", cli.Msg(err))
		}
		defer kf.Close()
		sf, err := relay.OpenSuppressionFile(ctx, cfg.Suppressions, &relay.SuppressionFileOptions{Logger: logger})
		if err != nil {
			return c.Failf("-suppressions: %s", cli.Msg(err))
		}
		defer sf.Close()
		keys, suppressions = kf, sf
	}
	var sinks multiEvents
	if cfg.Events != "" {
		el, err := openEventLog(cfg.Events, logger)
		if err != nil {
			return c.Failf("-events: %v", err)
		}
		defer el.Close()
		sinks = append(sinks, el)
	}
	var webhook *relay.Webhook
	if cfg.Webhook != "" {
		// What is left unsent at exit waits under -data for the next
		// start.
		webhook, err = relay.NewWebhook(cfg.Webhook, s.webhookSecret, &relay.WebhookOptions{
			Dir:    filepath.Join(cfg.Data, webhookName),
			Logger: logger,
		})
		if err != nil {
			return c.Failf("-webhook: %s", cli.Msg(err))
		}
		sinks = append(sinks, webhook)
	}
	var events relay.Events
	switch len(sinks) {
	case 0:
	case 1:
		events = sinks[0]
	default:
		events = sinks
	}
	// The queue: the spool under -data, or the JetStream queue with
	// -queue.
	var queue relay.Queue
	var spool *relay.Spool
	if fleet != nil {
		q, err := openNATSQueue(ctx, fleet.js, s.nats.replicas, logger)
		if err != nil {
			return c.Failf("-queue: %s", cli.Msg(err))
		}
		if q != nil {
			defer q.Close()
			queue = q
		}
	}
	if queue == nil {
		if spool, err = relay.NewSpool(cfg.Spool, &relay.SpoolOptions{Logger: logger, SyncFS: cfg.SpoolSyncFS}); err != nil {
			return c.Failf("-spool: %s", cli.Msg(err))
		}
		defer spool.Close()
		queue = spool
		if q, err := spool.Quarantined(); err != nil || len(q) > 0 {
			logger.Warn("the spool has quarantined files, for an operator to look at", "dir", filepath.Join(cfg.Spool, "quarantine"), "files", len(q), "err", err)
		}
	}
	var metrics relay.Metrics
	var prom *promMetrics
	if lnMetrics != nil {
		prom = newPromMetrics(spool)
		metrics = prom
	}

	// Delivery, and the server.
	sender, how, err := newSender(s, logger)
	if err != nil {
		return c.Failf("%s", cli.Msg(err))
	}
	defer sender.Close()
	deliverer, err := relay.NewDeliverer(queue, sender, &relay.DelivererOptions{
		ShutdownGrace: s.shutdown,
		Hostname:      s.hostname,
		Events:        events,
		Suppressions:  suppressions,
		Metrics:       metrics,
		Logger:        logger,
	})
	if err != nil {
		return c.Failf("%s", cli.Msg(err))
	}
	// The return paths' IDs, for the bounce receiver (this one, or one
	// in another process on the same data directory).
	var tracker relay.Tracker
	if len(s.returnPaths) > 0 {
		ft, err := relay.NewFileTracker(filepath.Join(cfg.Data, trackingName), &relay.FileTrackerOptions{Logger: logger})
		if err != nil {
			return c.Failf("%s", cli.Msg(err))
		}
		defer ft.Close()
		tracker = ft
	}
	server, err := relay.NewServer(queue, &relay.ServerOptions{
		Hostname:       s.hostname,
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{*cert}},
		Authenticator:  keys,
		Trusted:        s.trusted,
		DomainSigners:  s.domainSigners,
		ProviderSigner: s.providerSigner,
		ReturnPaths:    s.returnPaths,
		SRS:            rewriter,
		Events:         events,
		Tracker:        tracker,
		Metrics:        metrics,
		Logger:         logger,

		Suppressions:     suppressions,
		SuppressedAction: s.suppressed,

		MaxConnections:      cfg.MaxConns,
		MaxConnectionsPerIP: cfg.MaxConnsPerIP,
	})
	if err != nil {
		return c.Failf("%s", cli.Msg(err))
	}
	var bounces *relay.BounceServer
	if lnBounce != nil {
		domains := make([]string, 0, len(s.returnPaths))
		for _, sub := range s.returnPaths {
			domains = append(domains, sub)
		}
		bounces, err = relay.NewBounceServer(queue, &relay.BounceServerOptions{
			Hostname:          s.hostname,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{*cert}},
			ReturnPathDomains: domains,
			AbuseAddresses:    cfg.Abuse,
			Tracker:           tracker,
			SRS:               rewriter,
			Suppressions:      suppressions,
			Events:            events,
			Metrics:           metrics,
			Logger:            logger,
		})
		if err != nil {
			return c.Failf("-bounce-listen: %s", cli.Msg(err))
		}
	}
	if fleet != nil {
		if list, err := keys.List(ctx); err == nil && len(list) == 0 {
			logger.Warn("no API key in the fleet's bucket: make one with smarthost apikey create -queue " + cfg.Queue)
		}
	} else if !s.keysExist {
		key, err := keys.Create(ctx, firstKeyName, []string{relay.ScopeSend}, s.keyDomains)
		if err != nil {
			return c.Failf("-keys: the first key: %s", cli.Msg(err))
		}
		printKey(stdout, firstKeyName, []string{relay.ScopeSend}, s.keyDomains, key)
	}

	// Run.
	served := make(chan error, 3)
	go func() { served <- server.Serve(ln) }()
	if lnTLS != nil {
		go func() { served <- server.ServeTLS(lnTLS) }()
	}
	if bounces != nil {
		go func() { served <- bounces.Serve(lnBounce) }()
	}
	dctx, stopDelivery := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDelivery()
	delivered := make(chan error, 1)
	go func() { delivered <- deliverer.Run(dctx) }()
	mctx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMetrics()
	attrs := []any{"addr", ln.Addr().String()}
	if lnTLS != nil {
		attrs = append(attrs, "tls_addr", lnTLS.Addr().String())
	}
	if lnBounce != nil {
		attrs = append(attrs, "bounce_addr", lnBounce.Addr().String())
	}
	if lnMetrics != nil {
		go serveMetrics(mctx, lnMetrics, prom, logger)
		attrs = append(attrs, "metrics_addr", lnMetrics.Addr().String())
	}
	if spool != nil {
		attrs = append(attrs, "spool", cfg.Spool, "queued", spool.Len())
	}
	if fleet != nil {
		attrs = append(attrs, "nats", fleet.nc.ConnectedUrlRedacted())
	}
	logger.Info("listening", append(attrs, "delivery", how)...)

	select {
	case <-ctx.Done():
	case err := <-served:
		logger.Error("the server failed", "err", err)
		status = cli.Fail
	case err := <-delivered:
		logger.Error("delivery stopped", "err", err)
		delivered <- err
		status = cli.Fail
	}
	// Stop accepting and let the sessions finish, while the deliveries
	// under way finish too, or are cut short and left due in the spool.
	stopDelivery()
	logger.Info("shutting down", "within", s.shutdown)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdown)
	defer cancel()
	bouncesDone := make(chan error, 1)
	if bounces != nil {
		// At the same time as the submission server, within the same
		// time; both end before the spool closes.
		go func() { bouncesDone <- bounces.Shutdown(sctx) }()
	} else {
		bouncesDone <- nil
	}
	if err := server.Shutdown(sctx); err != nil {
		logger.Warn("sessions cut short", "err", err)
	}
	if err := <-bouncesDone; err != nil && !errors.Is(err, relay.ErrServerClosed) {
		logger.Warn("bounce sessions cut short", "err", err)
	}
	if err := <-delivered; err != nil && !errors.Is(err, relay.ErrQueueClosed) {
		logger.Error("delivery", "err", err)
	}
	if webhook != nil {
		// The last events, within what is left of the shutdown time;
		// the batches not acknowledged are sent at the next start.
		if err := webhook.Close(sctx); err != nil {
			logger.Warn("webhook batches left for the next start", "err", err)
		}
	}
	stopMetrics()
	if spool != nil {
		logger.Info("stopped", "queued", spool.Len())
	} else {
		logger.Info("stopped")
	}
	return status
}

// closingSender is a Sender that holds connections until Close.
type closingSender interface {
	relay.Sender
	Close() error
}

// newSender returns the Sender of -upstream, or an MXSender, and says
// which.
func newSender(s *settings, logger *slog.Logger) (closingSender, string, error) {
	if s.upstream == "" {
		mx, err := relay.NewMXSender(net.DefaultResolver, &relay.MXOptions{
			Client: &relay.ClientOptions{LocalName: s.hostname, Logger: logger},
			Logger: logger,
		})
		return mx, "MX", err
	}
	// As many connections, kept open between messages, as the Deliverer
	// has workers: each delivers one message at a time.
	opts := &relay.ClientOptions{
		TLS:          s.upstreamTLS,
		RootCAs:      s.rootCAs,
		LocalName:    s.hostname,
		MaxConns:     relay.DefaultWorkers,
		MaxIdleConns: relay.DefaultWorkers,
		Logger:       logger,
	}
	if s.upstreamUser != "" {
		opts.Credentials = &sasl.Credentials{Username: s.upstreamUser, Password: s.upstreamPassword}
	}
	cl, err := relay.NewClient(s.upstream, opts)
	return cl, "upstream " + s.upstream + " (" + strings.ToLower(string(s.upstreamTLS)) + ")", err
}
