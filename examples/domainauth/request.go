package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

// request is the flags that describe a dnsauth.Request, shared by every
// command that plans. check looks at their values; plan reads the key
// files they name and plans. Every error names the flag at fault.
type request struct {
	fs *flag.FlagSet

	domain, mode, returnPath, selectors, target, spfInclude string
	mx, subdomain, existingDMARC, ns, reportURI             string
	existingSPF, dkimKeys                                   list
	ttl                                                     uint

	// Set by check.
	sels, nameservers []string
	keyFiles          map[string]string // selector: key file
}

// list is a flag that may be given more than once.
type list []string

func (l *list) String() string     { return strings.Join(*l, " ") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

// modes are the values of -mode.
var modes = []string{string(dnsauth.Delegated), string(dnsauth.SelfHosted), string(dnsauth.Subdomain)}

func (r *request) register(fs *flag.FlagSet) {
	r.fs = fs
	fs.StringVar(&r.domain, "domain", "", "the sending `DOMAIN`, the domain of the From field (required)")
	fs.StringVar(&r.mode, "mode", string(dnsauth.Delegated), "the `MODE`: delegated (CNAMEs to the provider), self-hosted (the\ndomain publishes the keys) or subdomain (NS records hand over\n-subdomain)")
	fs.StringVar(&r.returnPath, "return-path", "", "the return-path subdomain's `LABEL` under -domain, such as em1234\n(required in the delegated and self-hosted modes)")
	fs.StringVar(&r.selectors, "selectors", "", "the DKIM `SELECTORS`, comma-separated, such as s1,s2 (required)")
	fs.StringVar(&r.target, "target", "", "the provider's `HOST` for this domain, which the CNAMEs point at (required\nin the delegated mode)")
	fs.StringVar(&r.spfInclude, "spf-include", "", "the provider's SPF record to include, a `HOST` such as _spf.provider.net\n(required)")
	fs.StringVar(&r.mx, "mx", "", "the provider's `HOST` that receives bounces, the return path's MX\n(required in the self-hosted mode)")
	fs.StringVar(&r.subdomain, "subdomain", "", "the `LABEL` of the subdomain handed to the provider, such as mail\n(required in the subdomain mode)")
	fs.Var(&r.existingSPF, "existing-spf", "an SPF `TXT` record the domain publishes today; repeat for each")
	fs.StringVar(&r.existingDMARC, "existing-dmarc", "", "the DMARC `TXT` record the domain publishes today; it is kept, and no new\none is planned")
	fs.Var(&r.dkimKeys, "dkim-key", "a DKIM key as `SELECTOR:FILE`, a PEM private or public key or a base64\nEd25519 seed (only its public half is used); repeat for each selector\n(required for every selector in the self-hosted mode)")
	fs.StringVar(&r.ns, "ns", "", "the provider's name `SERVERS`, comma-separated (required in the subdomain\nmode)")
	fs.StringVar(&r.reportURI, "report-uri", "", "the rua= `URI` of a new DMARC record (default mailto:dmarc-reports@DOMAIN)")
	fs.UintVar(&r.ttl, "ttl", dnsauth.DefaultTTL, "the TTL of the records, in `SECONDS`")
}

// modeFlags are the flags that apply to some modes only, with those
// modes.
var modeFlags = []struct {
	flag  string
	modes []string
}{
	{"return-path", []string{string(dnsauth.Delegated), string(dnsauth.SelfHosted)}},
	{"target", []string{string(dnsauth.Delegated)}},
	{"subdomain", []string{string(dnsauth.Subdomain)}},
	{"ns", []string{string(dnsauth.Subdomain)}},
}

// check checks the flags' values, before any file is read.
func (r *request) check() error {
	if !slices.Contains(modes, r.mode) {
		return fmt.Errorf("-mode %q: want delegated, self-hosted or subdomain", r.mode)
	}
	set := map[string]bool{}
	r.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, mf := range modeFlags {
		if set[mf.flag] && !slices.Contains(mf.modes, r.mode) {
			return fmt.Errorf("-%s does not apply to the %s mode", mf.flag, r.mode)
		}
	}
	for _, f := range []struct{ flag, value string }{{"domain", r.domain}, {"selectors", r.selectors}, {"spf-include", r.spfInclude}} {
		if f.value == "" {
			return fmt.Errorf("-%s is required", f.flag)
		}
	}
	for _, f := range []struct {
		flag, value string
		needed      bool
	}{
		{"return-path", r.returnPath, r.mode != string(dnsauth.Subdomain)},
		{"target", r.target, r.mode == string(dnsauth.Delegated)},
		{"mx", r.mx, r.mode == string(dnsauth.SelfHosted)},
		{"subdomain", r.subdomain, r.mode == string(dnsauth.Subdomain)},
		{"ns", r.ns, r.mode == string(dnsauth.Subdomain)},
	} {
		if f.needed && f.value == "" {
			return fmt.Errorf("-%s is required in the %s mode", f.flag, r.mode)
		}
	}
	var err error
	if r.sels, err = splitList("selectors", r.selectors); err != nil {
		return err
	}
	if r.ns != "" {
		if r.nameservers, err = splitList("ns", r.ns); err != nil {
			return err
		}
	}
	if r.ttl == 0 || r.ttl > math.MaxInt32 {
		return fmt.Errorf("-ttl %d: want 1 to %d seconds (RFC 2181 §8)", r.ttl, math.MaxInt32)
	}
	r.keyFiles = map[string]string{}
	for _, k := range r.dkimKeys {
		sel, file, ok := strings.Cut(k, ":")
		switch {
		case !ok || sel == "" || file == "":
			return fmt.Errorf("-dkim-key %q: want SELECTOR:FILE", k)
		case !slices.Contains(r.sels, sel):
			return fmt.Errorf("-dkim-key %q: %s is not one of -selectors", k, sel)
		case r.keyFiles[sel] != "":
			return fmt.Errorf("-dkim-key %q: selector %s has a key already", k, sel)
		}
		r.keyFiles[sel] = file
	}
	if r.mode == string(dnsauth.SelfHosted) {
		for _, s := range r.sels {
			if r.keyFiles[s] == "" {
				return fmt.Errorf("-dkim-key is required for selector %s in the self-hosted mode", s)
			}
		}
	}
	return nil
}

// splitList splits the comma-separated value of -name.
func splitList(name, value string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("-%s %q: an empty item", name, value)
		}
		out = append(out, item)
	}
	return out, nil
}

// plan reads the key files and plans the records. Call check first. Its
// errors are usage errors: a file that cannot be read or used, or a value
// that dnsauth refuses.
func (r *request) plan() (*dnsauth.Plan, error) {
	req := &dnsauth.Request{
		Domain: r.domain, Mode: dnsauth.Mode(r.mode), ReturnPath: r.returnPath, Selectors: r.sels,
		Target: r.target, SPFInclude: r.spfInclude, MX: r.mx, Subdomain: r.subdomain, Nameservers: r.nameservers,
		ExistingSPF: r.existingSPF, ExistingDMARC: r.existingDMARC, ReportURI: r.reportURI, TTL: uint32(r.ttl),
		Keys: map[string]crypto.PublicKey{},
	}
	for _, sel := range r.sels {
		file := r.keyFiles[sel]
		if file == "" {
			continue
		}
		pub, err := readPublicKey(file)
		if err != nil {
			return nil, fmt.Errorf("-dkim-key: %v", err)
		}
		req.Keys[sel] = pub
	}
	p, err := req.Plan()
	if err != nil {
		return nil, requestError(err)
	}
	return p, nil
}

// readPublicKey returns the public key of a key file: a private key as
// dkim.ParsePrivateKey reads it (PEM PKCS#1 or PKCS#8, or a base64
// Ed25519 seed), or a PEM public key (PKIX "PUBLIC KEY" or PKCS#1 "RSA
// PUBLIC KEY"). Its errors name the file and never hold key material.
func readPublicKey(file string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "PUBLIC KEY":
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: not a public key", file)
			}
			return pub, nil
		case "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: not an RSA public key", file)
			}
			return pub, nil
		}
	}
	key, err := dkim.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", file, cli.Msg(err))
	}
	return key.Public(), nil
}

// requestFlags are the flags of the fields of dnsauth.Request, which
// the errors of Request.Plan name.
var requestFlags = map[string]string{
	"Domain": "-domain", "Mode": "-mode", "ReturnPath": "-return-path", "Selectors": "-selectors",
	"Target": "-target", "SPFInclude": "-spf-include", "MX": "-mx", "Subdomain": "-subdomain",
	"Nameservers": "-ns", "Keys": "-dkim-key", "ExistingSPF": "-existing-spf",
	"ExistingDMARC": "-existing-dmarc", "ReportURI": "-report-uri", "TTL": "-ttl",
}

// requestError names, in an error of Request.Plan, the flag of the field
// at fault: a RequestError of field Domain becomes "-domain: ...".
func requestError(err error) error {
	var re *dnsauth.RequestError
	if errors.As(err, &re) && requestFlags[re.Field] != "" {
		return fmt.Errorf("%s: %s", requestFlags[re.Field], cli.Msg(re.Err))
	}
	return errors.New(cli.Msg(err))
}
