// Package dnsauth is the DNS side of domain authentication: a resolver
// built on github.com/miekg/dns that every package of the module can ask,
// and the records a domain publishes so that a smart host may send, sign and
// bounce for it: Request.Plan makes them, as a Plan of Records with zone
// text, JSON and a table, the Changes to make, a Revoke and a key Rotation;
// Resolver.Verify checks a Plan against what the DNS publishes, and
// Resolver.Lint checks a domain's SPF, DMARC, DKIM and reverse DNS; an
// Updater (RFC 2136 UPDATE signed with TSIG) or a LibdnsUpdater (any libdns
// provider) applies the Changes; MergeSPF adds a provider's include to an
// existing SPF record; QuoteTXT writes a TXT record's data as a zone file
// holds it.
//
// # Resolver
//
// A Resolver has the methods of *net.Resolver that the mail-authentication
// packages consume (LookupTXT, LookupMX, LookupNetIP, LookupAddr, plus
// LookupCNAME and LookupNS), so it satisfies their small Resolver
// interfaces without adapters. It talks to the configured servers (default:
// those of /etc/resolv.conf) over UDP with EDNS0 (RFC 6891), retries over
// TCP when an answer is truncated (RFC 7766 §5), retries and fails over
// between servers, follows CNAME chains (at most 8 links, loops detected),
// and caches answers, negative ones for the time the zone's SOA allows (RFC
// 2308 §5). Identical lookups in flight at the same time make one query.
//
// Errors follow one contract across the module: a name that does not exist
// (NXDOMAIN) or has no records of the type asked (NODATA) gives a
// *net.DNSError with IsNotFound; SERVFAIL, REFUSED, a timeout or an answer
// that cannot be used give a *net.DNSError with IsTemporary, whose text says
// which. A name over 253 octets or with a label over 63 is refused before
// any query, as not found, and errors.Is(err, ErrInvalidName) holds.
//
// Lookup returns the whole Answer, with the AD bit of a validating
// resolver (RFC 4035 §3.2.3), and LookupAt asks one named server directly,
// without the cache, as the checks of a domain's authoritative servers need.
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
package dnsauth
