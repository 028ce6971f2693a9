// Package spfsuite loads the SPF conformance suites kept under
// spf/testdata/, for the spf package's conformance runner and the
// benchmark-comparison module: the openspf YAML
// format (rfc7208-tests.yml, rfc4408-tests.yml, pyspf-test.yml) and the
// stalwart mail-auth format (stalwart-mail-auth/*.yml).
package spfsuite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/internal/dnsname"
)

// Case is one test of a suite.
type Case struct {
	File, Scenario, Name string
	Zone                 *dnstest.Zone
	Resolver             Resolver // Zone, possibly wrapped
	// openspf style: checked as MAIL FROM (null sender: postmaster@helo).
	IP, MailFrom, HELO string
	// stalwart style: check_host(ip, domain, sender).
	Domain, Sender string
	HostStyle      bool
	Results        []string // acceptable results, the first preferred
	Explanation    *string  // expected explanation, if given
}

// ID names the case as file/name.
func (c *Case) ID() string { return c.File + "/" + c.Name }

// Resolver is what the cases are evaluated with: the spf package's
// resolver interface.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// LoadFile loads a suite file of either format.
func LoadFile(path string) ([]*Case, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.Contains(string(b), "\nzonedata:") {
		return loadOpenSPF(filepath.Base(path), b)
	}
	return loadStalwart(filepath.Base(path), string(b))
}

type openTest struct {
	Helo        string  `yaml:"helo"`
	Host        string  `yaml:"host"`
	MailFrom    string  `yaml:"mailfrom"`
	Result      any     `yaml:"result"`
	Explanation *string `yaml:"explanation"`
}

type openDoc struct {
	Description string              `yaml:"description"`
	Tests       map[string]openTest `yaml:"tests"`
	Zonedata    map[string][]any    `yaml:"zonedata"`
}

func loadOpenSPF(file string, b []byte) ([]*Case, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	var cases []*Case
	for {
		var d openDoc
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		z, err := openZone(d.Zonedata)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, d.Description, err)
		}
		names := make([]string, 0, len(d.Tests))
		for n := range d.Tests {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t := d.Tests[n]
			c := &Case{File: file, Scenario: d.Description, Name: n, Zone: z, Resolver: z,
				IP: t.Host, MailFrom: t.MailFrom, HELO: t.Helo, Explanation: t.Explanation}
			switch r := t.Result.(type) {
			case string:
				c.Results = []string{r}
			case []any:
				for _, x := range r {
					c.Results = append(c.Results, fmt.Sprint(x))
				}
			}
			cases = append(cases, c)
		}
	}
	return cases, nil
}

// hdr makes the header of a record owned by name, given as raw labels as
// the suites write them; records keep names in presentation form
// (RFC 1035 §5.1), escaped.
var hdr = func(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: 3600}
}

// fqdn is the absolute presentation form of a raw name.
func fqdn(name string) string { return dns.Fqdn(dnsname.Escape(name)) }

// openZone builds a zone from openspf zonedata: type SPF records are served
// as TXT when the name has no TXT entry ("TXT: NONE" means none); a TIMEOUT
// entry makes every query time out except those of types with records
// listed before it.
func openZone(data map[string][]any) (*dnstest.Zone, error) {
	z := dnstest.NewZone()
	for name, entries := range data {
		var spf, txt []dns.RR
		hasTXT := false
		real := map[uint16]bool{}
		timeout := false
		for _, e := range entries {
			if s, ok := e.(string); ok {
				if s == "TIMEOUT" {
					timeout = true
					continue
				}
				return nil, fmt.Errorf("zone %s: unknown entry %q", name, s)
			}
			m, ok := e.(map[string]any)
			if !ok || len(m) != 1 {
				return nil, fmt.Errorf("zone %s: bad entry %v", name, e)
			}
			for typ, v := range m {
				switch typ {
				case "SPF", "TXT":
					if typ == "TXT" {
						hasTXT = true
					}
					var ss []string
					switch v := v.(type) {
					case []any:
						for _, x := range v {
							ss = append(ss, dnsname.EscapeTXT(fmt.Sprint(x)))
						}
					default:
						s := fmt.Sprint(v)
						if s == "NONE" {
							continue
						}
						ss = []string{dnsname.EscapeTXT(s)}
					}
					rr := &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: ss}
					if typ == "SPF" {
						spf = append(spf, rr)
					} else {
						txt = append(txt, rr)
						real[dns.TypeTXT] = !timeout || real[dns.TypeTXT]
					}
				case "A", "AAAA":
					ip, err := netip.ParseAddr(fmt.Sprint(v))
					if err != nil {
						return nil, fmt.Errorf("zone %s: %v", name, err)
					}
					if typ == "A" {
						z.Add(&dns.A{Hdr: hdr(name, dns.TypeA), A: net.IP(ip.AsSlice())})
						real[dns.TypeA] = true
					} else {
						z.Add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.IP(ip.AsSlice())})
						real[dns.TypeAAAA] = true
					}
				case "MX":
					l, ok := v.([]any)
					if !ok || len(l) != 2 {
						return nil, fmt.Errorf("zone %s: bad MX %v", name, v)
					}
					pref, _ := strconv.Atoi(fmt.Sprint(l[0]))
					z.Add(&dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: uint16(pref), Mx: fqdn(fmt.Sprint(l[1]))})
					real[dns.TypeMX] = true
				case "PTR":
					z.Add(&dns.PTR{Hdr: hdr(name, dns.TypePTR), Ptr: fqdn(fmt.Sprint(v))})
					real[dns.TypePTR] = true
				case "CNAME":
					z.Add(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: fqdn(fmt.Sprint(v))})
					real[dns.TypeCNAME] = true
				default:
					return nil, fmt.Errorf("zone %s: unknown type %s", name, typ)
				}
			}
		}
		if hasTXT {
			z.Add(txt...)
		} else {
			for _, rr := range spf {
				z.Add(rr)
				real[dns.TypeTXT] = true
			}
		}
		if timeout {
			if len(real) == 0 {
				z.Fail(name, dns.TypeANY, dnstest.Timeout)
			} else {
				for _, t := range []uint16{dns.TypeTXT, dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypePTR, dns.TypeCNAME} {
					if !real[t] {
						z.Fail(name, t, dnstest.Timeout)
					}
				}
			}
		}
	}
	return z, nil
}

// dnsErrorResolver answers names whose first label is "_dns_error" with a
// SERVFAIL, as the stalwart suite expects.
type dnsErrorResolver struct{ *dnstest.Zone }

func dnsErr(name string) error {
	if strings.HasPrefix(strings.ToLower(name), "_dns_error.") {
		return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	return nil
}

func (r dnsErrorResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := dnsErr(name); err != nil {
		return nil, err
	}
	return r.Zone.LookupTXT(ctx, name)
}

func (r dnsErrorResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if err := dnsErr(name); err != nil {
		return nil, err
	}
	return r.Zone.LookupMX(ctx, name)
}

func (r dnsErrorResolver) LookupNetIP(ctx context.Context, network, name string) ([]netip.Addr, error) {
	if err := dnsErr(name); err != nil {
		return nil, err
	}
	return r.Zone.LookupNetIP(ctx, network, name)
}

// kv is one "key: value" line of the stalwart format.
type kv struct{ k, v string }

// loadStalwart reads the stalwart format line by line: its records: block
// and test items repeat keys, which a YAML decoder would collapse.
func loadStalwart(file, text string) ([]*Case, error) {
	var cases []*Case
	for _, doc := range strings.Split("\n"+text, "\n---") {
		var name string
		var records []kv
		var items [][]kv
		section := ""
		sc := bufio.NewScanner(strings.NewReader(doc))
		for sc.Scan() {
			line := sc.Text()
			trim := strings.TrimSpace(line)
			if trim == "" || strings.HasPrefix(trim, "#") {
				continue
			}
			if !strings.HasPrefix(line, " ") {
				k, v, _ := strings.Cut(trim, ":")
				section = k
				if k == "name" {
					name = strings.TrimSpace(v)
				}
				continue
			}
			newItem := strings.HasPrefix(trim, "- ")
			trim = strings.TrimPrefix(trim, "- ")
			k, v, ok := strings.Cut(trim, ":")
			if !ok {
				return nil, fmt.Errorf("%s: bad line %q", file, line)
			}
			e := kv{strings.TrimSpace(k), strings.TrimSpace(v)}
			switch section {
			case "records":
				records = append(records, e)
			case "tests":
				if newItem || len(items) == 0 {
					items = append(items, nil)
				}
				items[len(items)-1] = append(items[len(items)-1], e)
			}
		}
		if name == "" && len(items) == 0 {
			continue
		}
		var domain, sender, ip string
		for i, item := range items {
			var own []kv
			label := name
			for _, e := range item {
				if e.k == "name" {
					label = name + ": " + e.v
				}
			}
			n := 0
			for _, e := range item {
				switch e.k {
				case "domain":
					domain = e.v
				case "sender":
					sender = e.v
				case "ip":
					ip = e.v
				case "name":
				case "expect":
					z, err := stalwartZone(records, own)
					if err != nil {
						return nil, fmt.Errorf("%s: %s: %w", file, name, err)
					}
					status, exp, _ := strings.Cut(e.v, " ")
					c := &Case{File: file, Scenario: label, Name: fmt.Sprintf("%s#%d.%d", label, i, n),
						Zone: z, Resolver: dnsErrorResolver{z}, IP: ip, Domain: domain, Sender: sender,
						HostStyle: true, Results: []string{status}}
					if exp = strings.TrimSpace(exp); exp != "" {
						c.Explanation = &exp
					}
					cases = append(cases, c)
					n++
				default:
					own = append(own, e)
				}
			}
		}
	}
	return cases, nil
}

// stalwartZone builds the zone of the records block plus a test item's own
// records (which replace the block's SPF record of the same name).
func stalwartZone(records, own []kv) (*dnstest.Zone, error) {
	z := dnstest.NewZone()
	ownSPF := map[string]bool{}
	for _, e := range own {
		if e.k == "spf" {
			n, _, _ := strings.Cut(e.v, " ")
			ownSPF[strings.ToLower(n)] = true
		}
	}
	mx := 0
	for _, list := range [][]kv{records, own} {
		for _, e := range list {
			name, rest, _ := strings.Cut(e.v, " ")
			rest = strings.TrimSpace(rest)
			switch e.k {
			case "spf", "exp":
				if e.k == "spf" && ownSPF[strings.ToLower(name)] && !containsKV(own, e) {
					continue
				}
				z.AddTXT(name, rest)
			case "a", "aaaa":
				for _, s := range strings.Split(rest, ",") {
					ip, err := netip.ParseAddr(strings.TrimSpace(s))
					if err != nil {
						return nil, fmt.Errorf("%s: %v", e.v, err)
					}
					z.AddIP(name, ip)
				}
			case "mx":
				for i, s := range strings.Split(rest, ",") {
					s = strings.TrimSpace(s)
					ip, err := netip.ParseAddr(s)
					if err != nil {
						z.AddMX(name, uint16(i), s)
						continue
					}
					host := fmt.Sprintf("_mx%d.fixture.invalid", mx)
					mx++
					z.AddMX(name, uint16(i), host)
					z.AddIP(host, ip)
				}
			case "ptr":
				ip, err := netip.ParseAddr(name)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", e.v, err)
				}
				for _, s := range strings.Split(rest, ",") {
					z.AddPTR(ip, strings.TrimSpace(s))
				}
			default:
				return nil, fmt.Errorf("unknown record key %q", e.k)
			}
		}
	}
	return z, nil
}

func containsKV(l []kv, e kv) bool {
	for _, x := range l {
		if x == e {
			return true
		}
	}
	return false
}
