package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/internal/dnsname"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/srs"
)

// passwordVar is the environment variable of the password to -upstream:
// never a flag or a file setting, which others may read.
const passwordVar = "SMARTHOST_UPSTREAM_PASSWORD"

// settings are a Config read and checked, and the files it names loaded.
type settings struct {
	cfg *Config // with the defaults filled in

	listen, listenTLS string
	bounceListen      string
	hostname          string
	trusted           []netip.Prefix
	keyDomains        []string
	dkim              []dkimKey
	provider          string // the provider's domain, lower case
	returnPaths       map[string]string
	shutdown          time.Duration
	suppressed        relay.SuppressedAction
	metrics           string        // -metrics HOST:PORT, "" for none
	nats              *natsSettings // -queue nats://...; nil for the files under -data
	webhookSecret     []byte        // loaded by loadFiles

	upstream         string
	upstreamTLS      relay.TLSMode
	upstreamUser     string
	upstreamPassword string

	// Loaded by loadFiles.
	cert           *tls.Certificate // nil: the self-signed one under -data
	domainSigners  map[string]*dkim.Signer
	providerSigner *dkim.Signer
	rootCAs        *x509.CertPool
	srsSecrets     []string // nil with -srs-domain: made at start
	keysExist      bool

	selfSigned bool // no -tls-cert: the one under -data, made when missing
	srsDefault bool // no -srs-secrets: the file under -data, made when missing
}

// dkimKey is one -dkim DOMAIN:SELECTOR:KEYFILE.
type dkimKey struct {
	domain, selector, file string
	source                 string // the flag or file setting that gave it
}

// namer names the source of a setting in an error: "-listen" for a flag
// or a default, `-config FILE: listen` for a setting of the file.
type namer func(setting string) string

// checkConfig checks the values of c, naming each source with name, and
// returns them read. It reads no file.
func checkConfig(c *Config, name namer, getenv func(string) string) (*settings, error) {
	s := &settings{cfg: c.withDefaults(), returnPaths: map[string]string{},
		selfSigned: c.TLSCert == "" && c.TLSKey == "", srsDefault: c.SRSSecrets == ""}
	given := *c // before the defaults
	c = s.cfg
	var err error
	if s.listen, err = checkHostPort(c.Listen, true); err != nil {
		return nil, fmt.Errorf("%s %q: %v", name("listen"), c.Listen, err)
	}
	if c.ListenTLS != "" {
		if s.listenTLS, err = checkHostPort(c.ListenTLS, true); err != nil {
			return nil, fmt.Errorf("%s %q: %v", name("listen-tls"), c.ListenTLS, err)
		}
	}
	if c.BounceListen != "" {
		if s.bounceListen, err = checkHostPort(c.BounceListen, true); err != nil {
			return nil, fmt.Errorf("%s %q: %v", name("bounce-listen"), c.BounceListen, err)
		}
	}
	if s.hostname = strings.TrimSuffix(c.Hostname, "."); s.hostname != "" {
		if !isHostname(s.hostname) {
			return nil, fmt.Errorf("%s %q: not a domain name", name("hostname"), c.Hostname)
		}
	} else if s.hostname, err = os.Hostname(); err != nil || !isHostname(s.hostname) {
		return nil, fmt.Errorf("-hostname is required: the machine's name %q is not a domain name (%v)", s.hostname, err)
	}
	c.Hostname = s.hostname
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, fmt.Errorf("%s and %s go together", name("tls-cert"), name("tls-key"))
	}
	if c.Data == "" {
		return nil, fmt.Errorf("%s is empty", name("data"))
	}
	for _, t := range c.Trusted {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want CIDR, such as 10.0.0.0/8 or 2001:db8::/32", name("trusted"), t)
		}
		s.trusted = append(s.trusted, p.Masked())
	}
	for _, l := range []struct {
		key string
		n   int
	}{{"max-connections", c.MaxConns}, {"max-connections-per-ip", c.MaxConnsPerIP}} {
		if l.n == 0 || l.n < -1 {
			return nil, fmt.Errorf("%s %d: want a positive number, or -1 for no limit", name(l.key), l.n)
		}
	}
	switch a := relay.SuppressedAction(c.Suppressed); a {
	case relay.SuppressedRefuse, relay.SuppressedDrop:
		s.suppressed = a
	default:
		return nil, fmt.Errorf("%s %q: want refuse or drop", name("suppressed"), c.Suppressed)
	}
	if s.shutdown, err = time.ParseDuration(c.ShutdownTimeout); err != nil || s.shutdown <= 0 {
		return nil, fmt.Errorf("%s %q: want a positive duration, such as 30s", name("shutdown-timeout"), c.ShutdownTimeout)
	}

	if c.Metrics != "" {
		if s.metrics, err = checkHostPort(c.Metrics, true); err != nil {
			return nil, fmt.Errorf("%s %q: %v", name("metrics"), c.Metrics, err)
		}
	}
	switch {
	case c.Webhook != "":
		if err := relay.CheckWebhookURL(c.Webhook); err != nil {
			return nil, fmt.Errorf("%s: %s", name("webhook"), cli.Msg(err))
		}
		if c.WebhookSecret == "" {
			return nil, fmt.Errorf("%s needs %s", name("webhook"), name("webhook-secret-file"))
		}
	case c.WebhookSecret != "":
		return nil, fmt.Errorf("%s needs %s", name("webhook-secret-file"), name("webhook"))
	}

	// Signing and the envelope sender.
	signed := map[string]bool{}
	for _, d := range c.DKIM {
		parts := strings.SplitN(d, ":", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, fmt.Errorf("%s %q: want DOMAIN:SELECTOR:KEYFILE", name("dkim"), d)
		}
		k := dkimKey{domain: strings.ToLower(strings.TrimSuffix(parts[0], ".")), selector: parts[1], file: parts[2], source: name("dkim")}
		// The dkim package's own rules for d= and s= (RFC 6376 §3.5),
		// with a key that is never used.
		if _, err := dkim.NewSigner(k.domain, k.selector, ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), nil); err != nil {
			return nil, fmt.Errorf("%s %q: %s", name("dkim"), d, cli.Msg(err))
		}
		if signed[k.domain] {
			return nil, fmt.Errorf("%s %q: a second key for %s", name("dkim"), d, k.domain)
		}
		signed[k.domain] = true
		s.dkim = append(s.dkim, k)
	}
	if c.ProviderDomain != "" {
		s.provider = strings.ToLower(strings.TrimSuffix(c.ProviderDomain, "."))
		if !signed[s.provider] {
			return nil, fmt.Errorf("%s %q: no -dkim key of that domain", name("provider-domain"), c.ProviderDomain)
		}
	}
	for _, rp := range c.ReturnPath {
		domain, sub, ok := strings.Cut(rp, ":")
		domain = strings.ToLower(strings.TrimSuffix(domain, "."))
		sub = strings.ToLower(strings.TrimSuffix(sub, "."))
		switch {
		case !ok || domain == "" || sub == "":
			return nil, fmt.Errorf("%s %q: want DOMAIN:SUBDOMAIN, such as example.com:em1234.example.com", name("return-path"), rp)
		case checkDomain(domain) != nil || checkDomain(sub) != nil:
			return nil, fmt.Errorf("%s %q: not a domain name", name("return-path"), rp)
		case sub != domain && !strings.HasSuffix(sub, "."+domain):
			// SPF of the return path aligns with the From domain
			// under relaxed DMARC only within it (RFC 7489 §3.1.2).
			return nil, fmt.Errorf("%s %q: %s is not %s or under it", name("return-path"), rp, sub, domain)
		case s.returnPaths[domain] != "":
			return nil, fmt.Errorf("%s %q: a second return path for %s", name("return-path"), rp, domain)
		}
		s.returnPaths[domain] = sub
	}
	if c.SRSDomain != "" {
		if err := checkDomain(c.SRSDomain); err != nil {
			return nil, fmt.Errorf("%s %q: not a domain name", name("srs-domain"), c.SRSDomain)
		}
	} else if c.SRSSecrets != "" {
		return nil, fmt.Errorf("%s needs %s", name("srs-secrets"), name("srs-domain"))
	}
	for _, a := range c.Abuse {
		if at := strings.LastIndexByte(a, '@'); at <= 0 || at == len(a)-1 {
			return nil, fmt.Errorf("%s %q: not an address", name("abuse"), a)
		}
	}
	if len(c.Abuse) > 0 && (s.bounceListen == "" || len(s.returnPaths) == 0) {
		return nil, fmt.Errorf("%s needs %s and %s: reports are matched to the return paths", name("abuse"), name("bounce-listen"), name("return-path"))
	}
	if s.bounceListen != "" && len(s.returnPaths) == 0 && c.SRSDomain == "" {
		return nil, fmt.Errorf("%s needs %s or %s: it receives mail for nothing else", name("bounce-listen"), name("return-path"), name("srs-domain"))
	}

	if s.nats, err = checkNATS(c, name); err != nil {
		return nil, err
	}
	for _, f := range []struct{ key, val string }{{"keys", given.Keys}, {"suppressions", given.Suppressions}} {
		if s.nats != nil && f.val != "" {
			return nil, fmt.Errorf("%s with %s: the fleet's %s are in NATS", name(f.key), name("queue"), f.key)
		}
	}

	// The API key made with a new key file.
	s.keyDomains = c.KeyDomains
	if len(s.keyDomains) == 0 {
		for _, k := range s.dkim {
			if k.domain != s.provider {
				s.keyDomains = append(s.keyDomains, k.domain)
			}
		}
		for d := range s.returnPaths {
			s.keyDomains = append(s.keyDomains, d)
		}
		slices.Sort(s.keyDomains)
		s.keyDomains = slices.Compact(s.keyDomains)
	}
	if len(s.keyDomains) == 0 {
		s.keyDomains = []string{"example.com"} // RFC 2606, for a first test
	}
	for _, d := range c.KeyDomains {
		if err := checkDomain(strings.TrimPrefix(d, "*.")); err != nil {
			return nil, fmt.Errorf("%s %q: not a domain name", name("key-domains"), d)
		}
	}

	// Delivery.
	if c.Upstream == "" {
		for _, f := range []struct{ key, val string }{{"upstream-ca", c.UpstreamCA}, {"upstream-user", c.UpstreamUser}} {
			if f.val != "" {
				return nil, fmt.Errorf("%s needs %s", name(f.key), name("upstream"))
			}
		}
		return s, nil
	}
	if s.upstream, err = checkHostPort(c.Upstream, false); err != nil {
		return nil, fmt.Errorf("%s %q: %v", name("upstream"), c.Upstream, err)
	}
	switch m := relay.TLSMode(c.UpstreamTLS); m {
	case relay.StartTLS, relay.ImplicitTLS, relay.NoTLS:
		s.upstreamTLS = m
	default:
		return nil, fmt.Errorf("%s %q: want starttls, implicit or none", name("upstream-tls"), c.UpstreamTLS)
	}
	if c.UpstreamUser != "" {
		if s.upstreamTLS == relay.NoTLS {
			return nil, fmt.Errorf("%s with %s none: credentials go only over TLS", name("upstream-user"), name("upstream-tls"))
		}
		s.upstreamUser, s.upstreamPassword = c.UpstreamUser, getenv(passwordVar)
		if s.upstreamPassword == "" {
			return nil, fmt.Errorf("%s needs the password in the environment variable %s", name("upstream-user"), passwordVar)
		}
	}
	return s, nil
}

// checkHostPort checks a HOST:PORT; port 0, a port of the system's
// choosing, only where zero is set.
func checkHostPort(addr string, zero bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || n == 0 && !zero || host == "" && !zero {
		return "", errors.New("want HOST:PORT, such as 127.0.0.1:2525")
	}
	return addr, nil
}

// checkDomain checks a host name of at least two labels, in ASCII (an
// internationalized name in its A-labels, RFC 5890): letters, digits and
// inner hyphens (RFC 1035 §2.3.1, RFC 1123 §2.1), as API keys' sender
// domains are.
func checkDomain(d string) error {
	d = strings.TrimSuffix(d, ".")
	if err := dnsname.Check(d); err != nil {
		return err
	}
	if !strings.Contains(d, ".") {
		return errors.New("a single label")
	}
	for label := range strings.SplitSeq(strings.ToLower(d), ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.ContainsFunc(label, func(r rune) bool { return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') }) {
			return fmt.Errorf("label %q is not letters, digits and inner hyphens", label)
		}
	}
	return nil
}

// isHostname reports whether h can name the relay in its greeting and
// EHLO (RFC 5321 §4.1.2 Domain): labels of letters, digits, hyphens (and
// underscores, which the relay's server takes too), of 1 to 63 octets.
func isHostname(h string) bool {
	if dnsname.Check(h) != nil {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || strings.ContainsFunc(label, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
		}) {
			return false
		}
	}
	return true
}

// loadFiles reads the files the settings name, creating none: the TLS
// certificate, the DKIM keys, the CA certificates, the SRS secrets, and
// the key file when it exists. Its errors name the flag and the file.
func (s *settings) loadFiles(ctx context.Context, name namer) error {
	c := s.cfg
	if !s.selfSigned || fileExists(c.TLSCert) {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("%s, %s: %v", name("tls-cert"), name("tls-key"), err)
		}
		s.cert = &cert
	}
	s.domainSigners = map[string]*dkim.Signer{}
	for _, k := range s.dkim {
		b, err := os.ReadFile(k.file)
		if err != nil {
			return fmt.Errorf("%s: %v", k.source, err)
		}
		key, err := dkim.ParsePrivateKey(b)
		if err != nil {
			return fmt.Errorf("%s %s: %s", k.source, k.file, cli.Msg(err))
		}
		signer, err := dkim.NewSigner(k.domain, k.selector, key, nil)
		if err != nil {
			return fmt.Errorf("%s %s: %s", k.source, k.file, cli.Msg(err))
		}
		if k.domain == s.provider {
			s.providerSigner = signer
		} else {
			s.domainSigners[k.domain] = signer
		}
	}
	if c.UpstreamCA != "" {
		b, err := os.ReadFile(c.UpstreamCA)
		if err != nil {
			return fmt.Errorf("%s: %v", name("upstream-ca"), err)
		}
		s.rootCAs = x509.NewCertPool()
		if !s.rootCAs.AppendCertsFromPEM(b) {
			return fmt.Errorf("%s %s: no PEM certificate in it", name("upstream-ca"), c.UpstreamCA)
		}
	}
	if c.SRSDomain != "" && (!s.srsDefault || fileExists(c.SRSSecrets)) {
		secrets, err := readSecrets(c.SRSSecrets)
		if err != nil {
			return fmt.Errorf("%s: %v", name("srs-secrets"), err)
		}
		if _, err := srs.NewRewriter(c.SRSDomain, secrets, nil); err != nil {
			return fmt.Errorf("%s: %s", name("srs-domain"), cli.Msg(err))
		}
		s.srsSecrets = secrets
	}
	if c.WebhookSecret != "" {
		secrets, err := readSecrets(c.WebhookSecret)
		if err != nil {
			return fmt.Errorf("%s: %v", name("webhook-secret-file"), err)
		}
		s.webhookSecret = []byte(secrets[0])
	}
	if s.nats != nil {
		// The keys and the suppressions are in NATS, not in files.
		return s.nats.checkFiles(name)
	}
	switch _, err := os.Stat(c.Keys); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%s: %v", name("keys"), err)
	default:
		// Opened and closed, so that a file that cannot be read, or
		// its hash key, is refused now.
		s.keysExist = true
		k, err := relay.OpenKeyFile(ctx, c.Keys, nil)
		if err != nil {
			return fmt.Errorf("%s: %s", name("keys"), cli.Msg(err))
		}
		k.Close()
	}
	if fileExists(c.Suppressions) {
		// Opened and closed, so that a file that cannot be read is
		// refused now.
		sf, err := relay.OpenSuppressionFile(ctx, c.Suppressions, nil)
		if err != nil {
			return fmt.Errorf("%s: %s", name("suppressions"), cli.Msg(err))
		}
		sf.Close()
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readSecrets reads one secret per line (CRLF or LF), skipping empty
// lines, as the srs example does.
func readSecrets(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var secrets []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line = strings.TrimSuffix(line, "\r"); line != "" {
			secrets = append(secrets, line)
		}
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%s: no secret in file", name)
	}
	return secrets, nil
}
