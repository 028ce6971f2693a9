package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectOptions configures Connect. A nil *ConnectOptions means the
// defaults.
type ConnectOptions struct {
	// Name names the client in the server's monitoring. Default
	// "smarthost".
	Name string
	// CredsFile is a NATS credentials file (a user JWT and its NKey
	// seed) to authenticate with. Default: none.
	CredsFile string
	// TLSCA is a PEM file of the CA certificates to verify the servers
	// with; setting it, or TLSCert, requires TLS. Default: the system's.
	TLSCA string
	// TLSCert and TLSKey are PEM files of a client certificate and its
	// key, for servers that verify clients. Default: none.
	TLSCert, TLSKey string
	// Timeout bounds each attempt to connect to one server, within ctx's
	// deadline. Default 5 seconds.
	Timeout time.Duration
	// Logger receives a record of each disconnection (warning),
	// reconnection (info) and asynchronous error (error). Default: none.
	Logger *slog.Logger
}

// CheckURLs checks a comma-separated list of NATS server URLs,
// nats://HOST:PORT or tls://HOST:PORT (the port defaults to 4222), and
// returns them. The user and password of a URL are refused: they belong
// in a credentials file, not in a setting that others may read.
func CheckURLs(urls string) ([]string, error) {
	var out []string
	for u := range strings.SplitSeq(urls, ",") {
		u = strings.TrimSpace(u)
		p, err := url.Parse(u)
		show := redactURL(u) // errors never show a password
		switch {
		case u == "":
			continue
		case err != nil:
			return nil, fmt.Errorf("natsqueue: %q is not a URL", show)
		case p.Scheme != "nats" && p.Scheme != "tls":
			return nil, fmt.Errorf("natsqueue: %q: want nats://HOST:PORT or tls://HOST:PORT", show)
		case p.User != nil:
			return nil, fmt.Errorf("natsqueue: %q: a user in the URL; use a credentials file", show)
		case p.Hostname() == "" || p.Path != "" && p.Path != "/" || p.RawQuery != "" || p.Fragment != "":
			return nil, fmt.Errorf("natsqueue: %q: want nats://HOST:PORT or tls://HOST:PORT", show)
		}
		if port := p.Port(); port != "" {
			if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
				return nil, fmt.Errorf("natsqueue: %q: port %q", show, port)
			}
		}
		out = append(out, p.Scheme+"://"+net.JoinHostPort(p.Hostname(), portOr(p.Port(), "4222")))
	}
	if len(out) == 0 {
		return nil, errors.New("natsqueue: no server URL")
	}
	return out, nil
}

// redactURL is u with its user information, if any, masked: a password,
// or a user alone, which NATS takes as a token.
func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		if p.User != nil {
			p.User = url.User("xxxxx")
		}
		return p.String()
	}
	at := strings.LastIndex(u, "@")
	if at < 0 {
		return u
	}
	if i := strings.Index(u, "://"); i >= 0 && i < at {
		return u[:i+3] + "xxxxx" + u[at:]
	}
	return "xxxxx" + u[at:]
}

func portOr(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

// Connect connects to the first of the NATS servers urls (see CheckURLs)
// that answers, within ctx, and returns the connection, which reconnects
// to any server of the cluster without end when it is lost (the relay
// keeps running; Keys and Suppressions read their buckets again once it
// is back). The caller closes it.
func Connect(ctx context.Context, urls string, opts *ConnectOptions) (*nats.Conn, error) {
	var o ConnectOptions
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "smarthost"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	list, err := CheckURLs(urls)
	if err != nil {
		return nil, err
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("natsqueue: a client certificate needs its key, and a key its certificate")
	}
	if d, ok := ctx.Deadline(); ok {
		o.Timeout = max(min(o.Timeout, time.Until(d)), time.Millisecond)
	}
	log := o.Logger
	nopts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.Timeout),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("natsqueue: disconnected from NATS", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("natsqueue: reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			log.Error("natsqueue: NATS error", "err", err)
		}),
	}
	if o.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(o.CredsFile))
	}
	if o.TLSCA != "" {
		nopts = append(nopts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		nopts = append(nopts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(list, ","), nopts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("natsqueue: connecting to %s: %w", strings.Join(list, ","), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("natsqueue: connecting to %s: %w", strings.Join(list, ","), context.Cause(ctx))
	}
}
