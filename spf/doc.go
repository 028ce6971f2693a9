// Package spf implements the Sender Policy Framework, RFC 7208: the
// check_host() function that decides whether an IP address may send mail
// for a domain, SPF record parsing, and the Received-SPF header.
//
// A Checker, made by NewChecker, evaluates records through a Resolver
// (net.DefaultResolver works, as does any resolver shaped like
// *net.Resolver) within the RFC's limits: 10 DNS-querying terms, 2 void
// lookups, 10 names per mx and ptr (RFC 7208 §4.6.4), all configurable
// through Options. CheckMailFrom and CheckHELO check the two identities of
// RFC 7208 §2.3 and §2.4 (a null reverse-path is postmaster@HELO);
// CheckHost is check_host() itself. The package-level CheckHost makes one
// check with net.DefaultResolver and the default Options.
//
// A Result carries the status, an Err saying why for every status but
// pass, the explanation (exp=, RFC 7208 §6.2), the mechanism that matched,
// the domain evaluated and a Trace of every lookup and term, so a person
// can see why; it becomes a Received-SPF header (RFC 7208 §9.1) or an
// Authentication-Results entry (RFC 8601 §2.7.2).
//
// Parse reads a record into Terms whose String round-trips, and
// Record.DNSTerms counts the terms that query DNS, for tools that check
// or rewrite records.
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
//
// # Conformance
//
// The package passes every case of these suites (TestConformance):
//
//   - openspf RFC 7208 suite (2019.08): 203 of 203 cases;
//   - openspf RFC 4408 suite: 191 of 191 cases;
//   - pyspf's own cases: 16 of 16;
//   - stalwart mail-auth v0.11.2 SPF cases: 163 of 163 expectations.
//
// Where a case allows several results, the suite's preferred one is
// returned, except in 12 cases where RFC 4408 and RFC 7208 differ (type SPF
// records are no longer queried, mx-limit is permerror, ...); there, and
// in 2 pyspf-only extensions and 5 stalwart cases that contradict RFC 7208
// (a syntax error after a match, exists matching AAAA, no void-lookup
// limit, MX names looked up past the limit), RFC 7208's result is
// expected. The runner names each of them.
//
// Choices beyond the RFC text: the void-lookup limit counts terms whose
// own lookup is void (RFC 7208 §4.6.4), not the address lookups of an mx
// mechanism's names as pyspf does; and %{i} of an IPv6 address expands to
// upper-case nibbles, as the suites expect in explanations (DNS names
// compare case-insensitively, so queries are unchanged). An ip6 network
// written as an IPv4-mapped address matches the IPv4 client it maps.
package spf
