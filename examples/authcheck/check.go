package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/netip"
	"strings"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/spf"
)

// report is everything authcheck found, in the order it prints it; -json
// prints it as it is.
type report struct {
	AuthenticationResults string       `json:"authentication_results"`
	Client                client       `json:"client"`
	SPF                   spfReport    `json:"spf"`
	DKIM                  []dkimReport `json:"dkim"`
	DMARC                 dmarcReport  `json:"dmarc"`
	Received              []chainHop   `json:"received"`
	// ReceivedOmitted counts the Received fields below the first maxHops,
	// left out of Received.
	ReceivedOmitted int            `json:"received_omitted,omitempty"`
	Status          msgauth.Status `json:"-"`
}

// client is the SMTP session the message came in by: the connecting
// address, its HELO name and the MAIL FROM address, and where each came
// from.
type client struct {
	IP       netip.Addr `json:"ip"`
	HELO     string     `json:"helo"`
	MailFrom string     `json:"mail_from"`
	// Source says where they were read: "flags", or "Received field N"
	// and "Return-Path".
	Source string `json:"source"`
}

type spfReport struct {
	Result        spf.Status `json:"result"`
	Reason        string     `json:"reason,omitempty"`
	Identity      string     `json:"identity"` // "mailfrom" or "helo" (RFC 7208 §2.3, §2.4)
	Domain        string     `json:"domain"`
	Mechanism     string     `json:"mechanism,omitempty"`
	MatchedDomain string     `json:"matched_domain,omitempty"`
	Explanation   string     `json:"explanation,omitempty"`
	ReceivedSPF   string     `json:"received_spf"` // the field's value (RFC 7208 §9.1)
	Trace         []string   `json:"trace"`
	Lookups       []lookup   `json:"lookups"`
}

type dkimReport struct {
	Result     dkim.Status `json:"result"`
	Reason     string      `json:"reason,omitempty"`
	Domain     string      `json:"domain"`
	Selector   string      `json:"selector"`
	Algorithm  string      `json:"algorithm"`
	Canon      string      `json:"canonicalization"`
	Identifier string      `json:"identifier"`
	Headers    []string    `json:"signed_headers"`
	Time       time.Time   `json:"signed_at,omitzero"`
	Expiration time.Time   `json:"expires_at,omitzero"`
	// KeyName is the name of the key record (RFC 6376 §3.6.2.1) and
	// KeyLookups the lookups made for it.
	KeyName    string   `json:"key_name"`
	KeyLookups []lookup `json:"key_lookups"`
	// KeyCNAME is where a CNAME at KeyName leads (a key delegated to a
	// provider), found by a lookup of authcheck's own.
	KeyCNAME string `json:"key_cname,omitempty"`
	// BodyHash is bh= as signed; ComputedBodyHash the hash of the body as
	// it arrived, in the signature's body canonicalization (sha256; empty
	// when it cannot be computed); BodyLength is l=, -1 when absent.
	BodyHash         string `json:"body_hash"`
	ComputedBodyHash string `json:"computed_body_hash,omitempty"`
	BodyLength       int64  `json:"body_length"`
}

type dmarcReport struct {
	Result       dmarc.Status `json:"result"`
	Reason       string       `json:"reason,omitempty"`
	AuthorDomain string       `json:"author_domain"`
	Record       string       `json:"record,omitempty"`
	PolicyDomain string       `json:"policy_domain,omitempty"`
	OrgDomain    string       `json:"org_domain,omitempty"`
	Policy       string       `json:"policy,omitempty"`
	PolicyTag    string       `json:"policy_tag,omitempty"`
	Disposition  string       `json:"disposition"`
	// SPF and DKIM are "pass" for an aligned pass, "fail" for a pass that
	// did not align and "none" for no pass (RFC 7489 §3.1).
	SPF         dmarc.Status `json:"spf_alignment"`
	SPFDomain   string       `json:"spf_domain,omitempty"`
	DKIM        dmarc.Status `json:"dkim_alignment"`
	DKIMDomains []string     `json:"dkim_domains,omitempty"`
	Lookups     []lookup     `json:"lookups"`
}

// checker runs the three checks with one resolver.
type checker struct {
	resolver cli.Resolver
	authserv string
	rules    dmarc.Rules
	now      func() time.Time // nil: the clock
}

// check authenticates msg as a receiver would that took it from c: SPF
// for c (RFC 7208), every DKIM signature (RFC 6376), DMARC on both (RFC
// 7489, RFC 9989). The hops of its Received chain are rep.Received
// already. The error is a refused message (a header block dkim cannot
// read).
func (k *checker) check(ctx context.Context, msg []byte, rep *report) error {
	c := rep.Client

	spfLog := &recorder{r: k.resolver}
	spfOpts := &spf.Options{Hostname: k.authserv, Now: k.now}
	sc, err := spf.NewChecker(spfLog, spfOpts)
	if err != nil {
		return err
	}
	spfRes := sc.CheckMailFrom(ctx, c.IP, c.MailFrom, c.HELO)
	rep.SPF = spfReport{
		Result: spfRes.Status, Reason: errText(spfRes.Err), Identity: string(spfRes.Identity), Domain: spfRes.Domain,
		Mechanism: spfRes.Mechanism, MatchedDomain: spfRes.MatchedDomain, Explanation: spfRes.Explanation,
		ReceivedSPF: strings.TrimPrefix(strings.ReplaceAll(spfRes.ReceivedSPF(k.authserv), "\r\n", ""), "Received-SPF: "),
		Trace:       lines(spfRes.Trace.String()), Lookups: spfLog.lookups(),
	}

	dkimLog := &recorder{r: k.resolver}
	v, err := dkim.NewVerifier(dkimLog, &dkim.VerifyOptions{Now: k.now})
	if err != nil {
		return err
	}
	w := v.NewWriter(ctx)
	if _, err := w.Write(msg); err != nil {
		return err
	}
	dkimRes, err := w.Results()
	if err != nil {
		return err
	}
	header := w.Header()
	computed := bodyHashes(ctx, msg, header["Dkim-Signature"])
	keyLookups := dkimLog.lookups()
	rep.DKIM = []dkimReport{}
	for i, r := range dkimRes {
		d := dkimReport{
			Result: r.Status, Reason: errText(r.Err), Domain: r.Domain, Selector: r.Selector, Algorithm: r.Algorithm,
			Identifier: r.Identifier, Headers: r.HeaderKeys, Time: r.Time, Expiration: r.Expiration,
			BodyLength: r.BodyLength, KeyName: dkim.RecordName(r.Selector, r.Domain), KeyLookups: []lookup{},
		}
		if tags := sigTags(header["Dkim-Signature"], i, r.Signature); tags != nil {
			d.Canon = tags["c"]
			if d.Canon == "" {
				d.Canon = "simple/simple"
			}
			d.BodyHash = stripSpace(tags["bh"])
			if strings.HasSuffix(r.Algorithm, "-sha256") {
				d.ComputedBodyHash = computed[bodyCanon(tags["c"])]
			}
		}
		if r.Domain != "" && r.Selector != "" {
			d.KeyCNAME = canonical(ctx, k.resolver, d.KeyName)
		}
		for _, l := range keyLookups {
			if strings.EqualFold(l.Name, d.KeyName) {
				d.KeyLookups = append(d.KeyLookups, l)
			}
		}
		rep.DKIM = append(rep.DKIM, d)
	}

	dmarcLog := &recorder{r: k.resolver}
	ev, err := dmarc.NewEvaluator(dmarcLog, &dmarc.Options{Rules: k.rules})
	if err != nil {
		return err
	}
	dr := ev.Evaluate(ctx, header, spfRes, dkimRes)
	rep.DMARC = dmarcReport{
		Result: dr.Status, Reason: errText(dr.Err), AuthorDomain: dr.AuthorDomain, PolicyDomain: dr.PolicyDomain,
		OrgDomain: dr.OrgDomain, Policy: string(dr.Policy), PolicyTag: dr.PolicyTag, Disposition: string(dr.Disposition),
		SPF: dr.SPF, SPFDomain: dr.SPFDomain, DKIM: dr.DKIM, DKIMDomains: dr.DKIMDomains, Lookups: dmarcLog.lookups(),
	}
	if dr.Record != nil {
		rep.DMARC.Record = dr.Record.String()
	}
	rep.Status = dr.Status
	rep.AuthenticationResults = msgauth.Format(k.authserv, spfRes, dkimRes, dr)
	return nil
}

// errText is err's text without the package prefix, or "".
func errText(err error) string {
	if err == nil {
		return ""
	}
	return cli.Msg(err)
}

func lines(s string) []string {
	out := []string{}
	for l := range strings.Lines(s) {
		if l = strings.TrimRight(l, "\r\n"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// sigTags returns the tags of the DKIM-Signature field of result i: the
// field whose b= is the result's, else the i-th field (results are in
// the order of the fields), or nil.
func sigTags(fields []string, i int, b string) map[string]string {
	for _, f := range fields {
		if tags := parseTags(f); b != "" && stripSpace(tags["b"]) == b {
			return tags
		}
	}
	if i < len(fields) {
		return parseTags(fields[i])
	}
	return nil
}

// parseTags reads a tag-list (RFC 6376 §3.2) loosely, for display: names
// lower-cased, values trimmed; a malformed tag is skipped (the verifier
// has already judged the signature).
func parseTags(s string) map[string]string {
	tags := map[string]string{}
	for t := range strings.SplitSeq(s, ";") {
		name, value, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if _, dup := tags[name]; !dup && name != "" {
			tags[name] = strings.TrimSpace(value)
		}
	}
	return tags
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// bodyCanon is the body half of a c= value (RFC 6376 §3.5; default simple).
func bodyCanon(c string) dkim.Canonicalization {
	_, body, err := dkim.ParseCanonicalization(strings.TrimSpace(c))
	if err != nil || body == "" {
		return dkim.Simple
	}
	return body
}

// bodyHashes computes the sha256 body hash of msg in each body
// canonicalization that a signature of sigs names, by signing msg with a
// throwaway key and reading the bh= of that signature: what the body
// hashes to as received, beside what its signers signed. A message
// without a From field cannot be signed, and gets none.
func bodyHashes(ctx context.Context, msg []byte, sigs []string) map[dkim.Canonicalization]string {
	out := map[dkim.Canonicalization]string{}
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	for _, sig := range sigs {
		canon := bodyCanon(parseTags(sig)["c"])
		if _, done := out[canon]; done {
			continue
		}
		s, err := dkim.NewSigner("bodyhash.invalid", "x", key, &dkim.SignOptions{
			BodyCanonicalization: canon, Headers: []string{"From"}, NoTimestamp: true,
		})
		if err != nil {
			continue
		}
		var head headWriter
		if err := dkim.Sign(ctx, &head, bytes.NewReader(msg), s); err != nil {
			continue
		}
		field := strings.TrimPrefix(firstField(string(head.b)), "DKIM-Signature:")
		if bh := stripSpace(parseTags(field)["bh"]); bh != "" {
			out[canon] = bh
		}
	}
	return out
}

// firstField returns the first header field of s, unfolded (RFC 5322
// §2.2.3).
func firstField(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\r\n") {
		if i > 0 && (l == "" || (l[0] != ' ' && l[0] != '\t')) {
			break
		}
		b.WriteString(l)
	}
	return b.String()
}

// headWriter keeps the first 8 KiB written to it, enough for the
// DKIM-Signature field that Sign writes first, and discards the rest.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := 8<<10 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
