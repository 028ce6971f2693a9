package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/smarthost-go/smarthost/relay"
)

// Config is the relay's settings: the flags, and the keys of the YAML file
// of -config, which have the flags' names. Every value is kept as the text
// given; check reads them.
type Config struct {
	Data            string   `yaml:"data"`
	Listen          string   `yaml:"listen"`
	ListenTLS       string   `yaml:"listen-tls,omitempty"`
	BounceListen    string   `yaml:"bounce-listen,omitempty"`
	Abuse           []string `yaml:"abuse,omitempty"`
	Hostname        string   `yaml:"hostname,omitempty"`
	TLSCert         string   `yaml:"tls-cert,omitempty"`
	TLSKey          string   `yaml:"tls-key,omitempty"`
	Keys            string   `yaml:"keys,omitempty"`
	KeyDomains      []string `yaml:"key-domains,omitempty"`
	Spool           string   `yaml:"spool,omitempty"`
	SpoolSyncFS     bool     `yaml:"spool-syncfs,omitempty"`
	Queue           string   `yaml:"queue,omitempty"`
	NATSCreds       string   `yaml:"nats-creds,omitempty"`
	NATSTLSCA       string   `yaml:"nats-tls-ca,omitempty"`
	NATSTLSCert     string   `yaml:"nats-tls-cert,omitempty"`
	NATSTLSKey      string   `yaml:"nats-tls-key,omitempty"`
	NATSReplicas    int      `yaml:"nats-replicas,omitempty"`
	Upstream        string   `yaml:"upstream,omitempty"`
	UpstreamTLS     string   `yaml:"upstream-tls,omitempty"`
	UpstreamCA      string   `yaml:"upstream-ca,omitempty"`
	UpstreamUser    string   `yaml:"upstream-user,omitempty"`
	DKIM            []string `yaml:"dkim,omitempty"`
	ProviderDomain  string   `yaml:"provider-domain,omitempty"`
	ReturnPath      []string `yaml:"return-path,omitempty"`
	SRSDomain       string   `yaml:"srs-domain,omitempty"`
	SRSSecrets      string   `yaml:"srs-secrets,omitempty"`
	Events          string   `yaml:"events,omitempty"`
	Suppressions    string   `yaml:"suppressions,omitempty"`
	Suppressed      string   `yaml:"suppressed,omitempty"`
	Webhook         string   `yaml:"webhook,omitempty"`
	WebhookSecret   string   `yaml:"webhook-secret-file,omitempty"`
	Metrics         string   `yaml:"metrics,omitempty"`
	Trusted         []string `yaml:"trusted,omitempty"`
	ShutdownTimeout string   `yaml:"shutdown-timeout,omitempty"`
	MaxConns        int      `yaml:"max-connections"`
	MaxConnsPerIP   int      `yaml:"max-connections-per-ip"`
	Debug           bool     `yaml:"debug,omitempty"`
}

// defaultConfig is the configuration of a relay started without flags.
func defaultConfig() *Config {
	return &Config{
		Data:            "smarthost-data",
		Listen:          "127.0.0.1:2525",
		UpstreamTLS:     "starttls",
		Suppressed:      string(relay.SuppressedRefuse),
		ShutdownTimeout: "30s",
		MaxConns:        1000,
		MaxConnsPerIP:   20,
	}
}

// The files under the data directory, for the settings left empty.
const (
	keysName       = "keys.json"
	spoolName      = "spool"
	certName       = "tls-cert.pem"
	certKeyName    = "tls-key.pem"
	srsSecretsName = "srs-secrets"
	suppressName   = "suppressions.json"
	trackingName   = "tracking.jsonl"
	webhookName    = "webhook"
)

// register defines the relay's flags on fs, bound to c's fields, with c's
// values as their defaults.
func (c *Config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Data, "data", c.Data, "keep in `DIR` the files that other flags leave to their default: the key file, the spool, the self-signed certificate, the SRS secrets; and the tracking file of the return paths, "+trackingName)
	fs.StringVar(&c.Listen, "listen", c.Listen, "listen for submission with STARTTLS (RFC 6409, RFC 3207) on `HOST:PORT`")
	fs.StringVar(&c.ListenTLS, "listen-tls", c.ListenTLS, "also listen for submission with implicit TLS (RFC 8314 §3, port 465) on `HOST:PORT`")
	fs.Var(&listValue{p: &c.Abuse, split: true}, "abuse", "the addresses, `ADDR[,ADDR...]`, where mailbox providers send feedback-loop reports (RFC 5965) to -bounce-listen: a report about a tracked message becomes a spamreport event and a suppression")
	fs.StringVar(&c.BounceListen, "bounce-listen", c.BounceListen, "receive the bounces and feedback reports of the return paths and SRS addresses (SMTP, port 25, no AUTH) on `HOST:PORT`")
	fs.StringVar(&c.Hostname, "hostname", c.Hostname, "the relay's `NAME` in its greeting, Received fields, Message-IDs, DSNs and EHLO (default: the machine's name)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM `FILE` of the relay's certificate chain, with -tls-key (default: a self-signed certificate made at the first start, under -data)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM `FILE` of the private key of -tls-cert")
	fs.StringVar(&c.Keys, "keys", c.Keys, "the API key `FILE` (default DATA/"+keysName+"; its hash key is FILE.hashkey); made with a first key, printed once, when it does not exist")
	fs.Var(&listValue{p: &c.KeyDomains, split: true}, "key-domains", "the sender domains of the first API key, made with a new key file, `DOMAIN[,DOMAIN...]` (default: the domains of -dkim but the provider's, and of -return-path; else example.com)")
	fs.StringVar(&c.Spool, "spool", c.Spool, "the spool `DIR` of the queue (default DATA/"+spoolName+")")
	fs.BoolVar(&c.SpoolSyncFS, "spool-syncfs", c.SpoolSyncFS, "make new messages durable with one syncfs of the spool's file system for all the sessions committing at once, not an fsync of each file: much faster under load, but it writes out every changed file of that file system, so give the spool one of its own (Linux 5.8 and later)")
	c.registerNATS(fs)
	fs.StringVar(&c.Upstream, "upstream", c.Upstream, "deliver through the smart host at `HOST:PORT` (default: to each recipient domain's MX hosts)")
	fs.StringVar(&c.UpstreamTLS, "upstream-tls", c.UpstreamTLS, "how to secure the connections to -upstream, `MODE`: starttls, implicit or none")
	fs.StringVar(&c.UpstreamCA, "upstream-ca", c.UpstreamCA, "PEM `FILE` of the CA certificates to verify -upstream with (default: the system's)")
	fs.StringVar(&c.UpstreamUser, "upstream-user", c.UpstreamUser, "authenticate to -upstream as `USER`, with the password in $"+passwordVar)
	fs.Var(&listValue{p: &c.DKIM}, "dkim", "a DKIM key, `DOMAIN:SELECTOR:KEYFILE` (repeatable): mail from DOMAIN is signed with the key in KEYFILE (PEM, or an Ed25519 seed) under SELECTOR")
	fs.StringVar(&c.ProviderDomain, "provider-domain", c.ProviderDomain, "the relay operator's `DOMAIN`, whose -dkim key signs every message a second time")
	fs.Var(&listValue{p: &c.ReturnPath}, "return-path", "a return path, `DOMAIN:SUBDOMAIN` (repeatable): the envelope sender of mail from DOMAIN becomes bounces+ID@SUBDOMAIN")
	fs.StringVar(&c.SRSDomain, "srs-domain", c.SRSDomain, "rewrite the other envelope senders with SRS into `DOMAIN`")
	fs.StringVar(&c.SRSSecrets, "srs-secrets", c.SRSSecrets, "`FILE` of the SRS secrets, one per line, the first signing (default DATA/"+srsSecretsName+", made with a random secret when missing)")
	fs.StringVar(&c.Events, "events", c.Events, "append the message-tracking events to `FILE` as JSON lines")
	fs.StringVar(&c.Suppressions, "suppressions", c.Suppressions, "the suppression list `FILE`, managed with \"smarthost suppression\": the recipients each account must not mail again (default DATA/"+suppressName+")")
	fs.StringVar(&c.Suppressed, "suppressed", c.Suppressed, "what RCPT of a recipient suppressed for the client's account gets, `ACTION`: refuse (550 5.1.1) or drop (250, left out, a dropped event)")
	fs.StringVar(&c.Webhook, "webhook", c.Webhook, "post the message-tracking events, in signed batches, to `URL` (https; plain http only to 127.0.0.1 or [::1]); the batches not yet acknowledged wait under DATA/"+webhookName)
	fs.StringVar(&c.WebhookSecret, "webhook-secret-file", c.WebhookSecret, "`FILE` of the secret that signs the -webhook requests (HMAC-SHA256), on its first line")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics at /metrics, and /healthz, on `HOST:PORT`")
	fs.Var(&listValue{p: &c.Trusted, split: true}, "trusted", "the networks, `CIDR[,CIDR...]`, whose clients may relay without AUTH, in plaintext too")
	fs.StringVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long, on SIGTERM or SIGINT, the sessions and deliveries under way may go on (a `DURATION`)")
	fs.IntVar(&c.MaxConns, "max-connections", c.MaxConns, "the most connections open at once, `N` (-1: no limit); one more is answered 421")
	fs.IntVar(&c.MaxConnsPerIP, "max-connections-per-ip", c.MaxConnsPerIP, "the most connections open at once from one client address (an IPv6 /64), `N` (-1: no limit)")
	fs.BoolVar(&c.Debug, "debug", c.Debug, "log the debug records of every part of the relay")
}

// registerNATS defines the flags of the NATS JetStream fleet, which the
// relay and its apikey and suppression commands share.
func (c *Config) registerNATS(fs *flag.FlagSet) {
	fs.StringVar(&c.Queue, "queue", c.Queue, "keep the queue, the API keys and the suppression list in NATS JetStream, at `nats://HOST:PORT[,nats://HOST:PORT...]` (tls:// for TLS), shared by every relay pointing there; without it, the spool, the key file and the suppression file under -data")
	fs.StringVar(&c.NATSCreds, "nats-creds", c.NATSCreds, "authenticate to -queue with the NATS credentials `FILE` (a user JWT and its NKey seed)")
	fs.StringVar(&c.NATSTLSCA, "nats-tls-ca", c.NATSTLSCA, "PEM `FILE` of the CA certificates to verify the -queue servers with, over TLS (default: the system's)")
	fs.StringVar(&c.NATSTLSCert, "nats-tls-cert", c.NATSTLSCert, "PEM `FILE` of a client certificate for the -queue servers, with -nats-tls-key")
	fs.StringVar(&c.NATSTLSKey, "nats-tls-key", c.NATSTLSKey, "PEM `FILE` of the private key of -nats-tls-cert")
	fs.IntVar(&c.NATSReplicas, "nats-replicas", c.NATSReplicas, "the copies, `N` (1 to 5), of each stream and bucket a relay of the fleet creates: 3 on a three-node cluster, so that it survives the loss of a node (default 1)")
}

// listValue is a flag that takes a list: repeated, or comma-separated when
// split is set. Given on the command line, it replaces the list of the
// configuration file rather than adding to it.
type listValue struct {
	p     *[]string
	split bool
	set   bool
}

func (l *listValue) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *listValue) Set(s string) error {
	if !l.set {
		*l.p, l.set = nil, true
	}
	if !l.split {
		*l.p = append(*l.p, s)
		return nil
	}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.p = append(*l.p, v)
		}
	}
	return nil
}

// loadConfig reads the YAML file at path over the defaults. Unknown keys
// are refused, so that a misspelt one is an error rather than ignored.
// Relative paths in the file are taken from the file's directory.
func loadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := defaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if te, ok := err.(*yaml.TypeError); ok {
			msg = strings.Join(te.Errors, "; ")
		}
		return nil, fmt.Errorf("%s: %s", path, msg)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.Data, &c.TLSCert, &c.TLSKey, &c.Keys, &c.Spool, &c.UpstreamCA, &c.SRSSecrets, &c.Events, &c.Suppressions, &c.WebhookSecret,
		&c.NATSCreds, &c.NATSTLSCA, &c.NATSTLSCert, &c.NATSTLSKey} {
		*p = relativeTo(dir, *p)
	}
	for i, d := range c.DKIM {
		if parts := strings.SplitN(d, ":", 3); len(parts) == 3 && parts[2] != "" {
			c.DKIM[i] = parts[0] + ":" + parts[1] + ":" + relativeTo(dir, parts[2])
		}
	}
	return c, nil
}

// relativeTo returns path taken from dir when it is relative.
func relativeTo(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// withDefaults returns a copy of c with the paths it leaves empty set to
// their place under the data directory.
func (c *Config) withDefaults() *Config {
	d := *c
	under := func(p *string, name string) {
		if *p == "" {
			*p = filepath.Join(c.Data, name)
		}
	}
	under(&d.Keys, keysName)
	under(&d.Spool, spoolName)
	under(&d.Suppressions, suppressName)
	if d.TLSCert == "" && d.TLSKey == "" {
		under(&d.TLSCert, certName)
		under(&d.TLSKey, certKeyName)
	}
	if d.SRSDomain != "" {
		under(&d.SRSSecrets, srsSecretsName)
	}
	return &d
}

// marshal writes c as a configuration file.
func (c *Config) marshal(w io.Writer) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return err
	}
	return enc.Close()
}
