package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// Resolver is what the spf, dkim and dmarc packages ask the DNS through;
// *net.Resolver, *dnsauth.Resolver and *dnstest.Zone are all one.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// DNS is the -zone and -dns flags of the programs that look records up.
type DNS struct {
	zone, server string
}

// Register defines -zone and -dns on fs.
func (d *DNS) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.zone, "zone", "", "answer DNS queries from the zone `FILE` (RFC 1035 master file) instead of the DNS")
	fs.StringVar(&d.server, "dns", "", "ask the DNS server at `HOST:PORT` (default: the system resolver)")
}

// Check checks the flags' values: -zone and -dns exclude each other, and
// -dns is a host and a port number. The error names the flag.
func (d *DNS) Check() error {
	if d.zone != "" && d.server != "" {
		return errors.New("-zone and -dns exclude each other")
	}
	if d.server == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(d.server)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
		return fmt.Errorf("-dns %q: want HOST:PORT, such as 127.0.0.1:53", d.server)
	}
	return nil
}

// Resolver reads the zone file of -zone, or makes a resolver that asks the
// server of -dns, or returns net.DefaultResolver. Call Check first. Its
// errors name the flag (and the file) and are usage errors.
func (d *DNS) Resolver() (Resolver, error) {
	switch {
	case d.zone != "":
		z, err := dnstest.ReadZoneFile(d.zone)
		if err != nil {
			return nil, fmt.Errorf("-zone: %s", Msg(err))
		}
		return z, nil
	case d.server != "":
		r, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{d.server}})
		if err != nil {
			return nil, fmt.Errorf("-dns: %s", Msg(err))
		}
		return r, nil
	}
	return net.DefaultResolver, nil
}
