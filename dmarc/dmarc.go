// Package dmarc implements DMARC: Domain-based Message Authentication,
// Reporting, and Conformance, as specified by RFC 7489 and by its successor
// RFC 9989 (DMARCbis, which obsoletes RFC 7489 and RFC 9091), with the
// aggregate reports of RFC 7489 §7.2 and Appendix C.
//
// The package covers the four jobs of a DMARC receiver and report consumer:
//
//   - policy records: Parse (lenient, as receivers must be; RFC 9989 §4.8),
//     Check (strict, lists every problem; for linters) and Record.String;
//   - policy discovery and organizational domains: Evaluator.Lookup and
//     Evaluator.OrganizationalDomain, by the RFC 9989 §4.10 DNS Tree Walk
//     (at most 8 queries, psd= honoured) or the RFC 7489 §3.2 public
//     suffix list, chosen by Options.Rules;
//   - evaluation: Evaluator.Evaluate (or Evaluate, on net.DefaultResolver)
//     takes the message header and the SPF and DKIM results as
//     msgauth.Result values, and gives a Result with a Status, the aligned
//     identifiers, the record and where it was found, the disposition, and
//     the results it evaluated;
//   - aggregate reports: a Reporter that gathers evaluations and writes RFC
//     7489 Appendix C XML in a report message (§7.2.1.1), the §7.1 check of
//     external destinations (Evaluator.ReportDestinations), and
//     ParseReport, a lenient reader of received reports (XML, gzip, zip or
//     a whole report e-mail), with Summarize.
//
// # Which rules by default
//
// The default is RFC9989: DMARCbis is the Standards Track successor of the
// Informational RFC 7489 and obsoletes it. Its DNS Tree Walk asks the DNS
// itself instead of a public suffix list compiled into the binary (which goes
// stale between releases and differs between receivers), it lets public
// suffix operators and large organizations mark boundaries with psd=, and it
// adds np= for non-existent subdomains. The cost is more DNS queries (at
// most 8 per walk, answers are shared within one evaluation). RFC7489 keeps
// the older behaviour for receivers that must match it exactly: public
// suffix list, pct= sampling, no np=, psd= or t=.
//
// RFC 9989 is cited by the section numbers of draft-ietf-dmarc-dmarcbis-41,
// the last draft, whose text this package follows.
//
// # Where the SPF and DKIM results come from
//
// The package imports neither the spf nor the dkim package of this module.
// Evaluate reads the SPF and DKIM results from the Authentication-Results
// entries (RFC 8601) of the msgauth.Result values it is given, as
// OpenDMARC reads the Authentication-Results fields that upstream filters
// add: the results of spf and dkim pass straight in, and msgauth.Entries
// carries go-msgauth authres entries from any other verifier or from a
// header field written by a trusted host.
//
// # Conventions
//
// The packages of this module share one set of conventions. A dependency a
// value cannot work without (a resolver) is a constructor argument;
// everything optional is an Options struct, where nil means every default;
// constructors check what they are given and return an error. A package
// function using net.DefaultResolver may sit beside a configured type for
// one-off use. Results are *Result values: Status is an RFC 8601 result
// keyword (msgauth.Status, with the same constant names, Pass, Fail, None
// and so on, in every package), Err is nil exactly on pass and says why for
// every other status, and AuthResult gives the Authentication-Results
// entry; msgauth.Header writes any mix of results as one header field.
// Errors begin with the package name and wrap sentinel errors whose names
// are shared (ErrNoRecord, ErrMultipleRecords, ErrDNS, ErrSyntax). Every
// call that may do I/O takes a context.Context first. Logging goes to the
// *slog.Logger of the options, at debug level, one record per operation;
// nothing is global, and clocks and randomness are fields of the options.
package dmarc

import (
	"context"
	"errors"
	"fmt"
)

// Resolver is the DNS interface the package consumes; *net.Resolver
// satisfies it. Not found (NXDOMAIN or no TXT records) must be a
// *net.DNSError with IsNotFound set; any other error is treated as a
// temporary failure.
//
// For the RFC 9989 np= tag, Evaluate must know whether the author domain
// exists. If the Resolver also has the LookupNetIP and LookupMX methods of
// *net.Resolver (see HostResolver), a domain with no A, AAAA, MX or TXT
// records is taken to be non-existent; otherwise np= is not applied and sp=
// governs existing and non-existent subdomains alike.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Sentinel errors, shared in name with the other packages of this module.
var (
	// ErrNoRecord: no DMARC policy record applies.
	ErrNoRecord = errors.New("dmarc: no DMARC record")
	// ErrMultipleRecords: more than one DMARC record at a name; they are all
	// discarded (RFC 7489 §6.6.3 step 5, RFC 9989 §4.10 step 2).
	ErrMultipleRecords = errors.New("dmarc: multiple DMARC records")
	// ErrDNS: a DNS lookup failed temporarily.
	ErrDNS = errors.New("dmarc: DNS failure")
	// ErrSyntax: a record, header field or report could not be parsed.
	ErrSyntax = errors.New("dmarc: syntax error")
	// ErrFrom: the message has no usable RFC5322.From (none, several
	// fields, or a malformed one); wraps ErrSyntax.
	ErrFrom = fmt.Errorf("dmarc: no usable RFC5322.From: %w", ErrSyntax)
	// ErrTooLarge: a report is larger than allowed once decompressed.
	ErrTooLarge = errors.New("dmarc: report too large")
)
