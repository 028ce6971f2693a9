package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

// lookup is one DNS question a check asked and what came back.
type lookup struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Answers []string `json:"answers,omitempty"`
	// Error is "not found" for NXDOMAIN or an empty answer (the module's
	// resolver contract), else the failure.
	Error string `json:"error,omitempty"`
}

func (l lookup) String() string {
	switch {
	case l.Error != "":
		return fmt.Sprintf("%s %s: %s", l.Type, l.Name, l.Error)
	case len(l.Answers) == 1:
		return fmt.Sprintf("%s %s: %q", l.Type, l.Name, l.Answers[0])
	}
	return fmt.Sprintf("%s %s: %q", l.Type, l.Name, l.Answers)
}

// recorder is a resolver that notes every lookup made through it, so
// that each check can show the DNS behind its result. DKIM looks keys up
// on its own goroutines: the log is locked.
type recorder struct {
	r   cli.Resolver
	mu  sync.Mutex
	log []lookup
}

func (r *recorder) add(typ, name string, answers []string, err error) {
	// Names are shown as the packages asked, less a final dot: spf asks
	// absolute names, dkim and dmarc relative ones.
	l := lookup{Type: typ, Name: strings.TrimSuffix(name, "."), Answers: answers}
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			l.Error = "not found"
		} else {
			l.Error = cli.Msg(err)
		}
	}
	r.mu.Lock()
	r.log = append(r.log, l)
	r.mu.Unlock()
}

// lookups returns the log so far.
func (r *recorder) lookups() []lookup {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]lookup{}, r.log...)
}

func (r *recorder) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, err := r.r.LookupTXT(ctx, name)
	r.add("TXT", name, txt, err)
	return txt, err
}

func (r *recorder) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, err := r.r.LookupMX(ctx, name)
	var s []string
	for _, m := range mx {
		s = append(s, fmt.Sprintf("%d %s", m.Pref, m.Host))
	}
	r.add("MX", name, s, err)
	return mx, err
}

func (r *recorder) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	ips, err := r.r.LookupNetIP(ctx, network, host)
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	typ := map[string]string{"ip4": "A", "ip6": "AAAA"}[network]
	if typ == "" {
		typ = "A/AAAA"
	}
	r.add(typ, host, s, err)
	return ips, err
}

func (r *recorder) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	names, err := r.r.LookupAddr(ctx, addr)
	r.add("PTR", addr, names, err)
	return names, err
}

// cnamer is the resolvers that can follow a CNAME chain: *net.Resolver,
// *dnsauth.Resolver and *dnstest.Zone all can.
type cnamer interface {
	LookupCNAME(ctx context.Context, host string) (string, error)
}

// canonical returns the end of the CNAME chain at name, when r can follow
// one and the chain is not empty: where a delegated DKIM key (RFC 6376
// §3.6.2.1 allows any TXT record the name leads to) really lives. It is
// a lookup of authcheck's own, for the reader; no check depends on it.
func canonical(ctx context.Context, r cli.Resolver, name string) string {
	c, ok := r.(cnamer)
	if !ok {
		return ""
	}
	target, err := c.LookupCNAME(ctx, name)
	target = strings.TrimSuffix(target, ".")
	if err != nil || target == "" || strings.EqualFold(target, strings.TrimSuffix(name, ".")) {
		return ""
	}
	return target
}
