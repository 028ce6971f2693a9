// Package spf implements the Sender Policy Framework, RFC 7208: the
// check_host() function that decides whether an IP address may send mail
// for a domain, SPF record parsing, and the Received-SPF header.
//
// A Checker evaluates records through a Resolver (net.DefaultResolver
// works, as does any resolver shaped like *net.Resolver) within the RFC's
// limits: 10 DNS-querying terms, 2 void lookups, 10 names per mx and ptr
// (RFC 7208 §4.6.4), all configurable through Options. CheckMailFrom and
// CheckHELO check the two identities of RFC 7208 §2.3 and §2.4 (a null
// reverse-path is postmaster@HELO); CheckHost is check_host() itself.
//
// A Result carries the status, the explanation (exp=, RFC 7208 §6.2), the
// mechanism that matched, the domain evaluated and a Trace of every lookup
// and term, so a person can see why; it becomes a Received-SPF header
// (RFC 7208 §9.1) or an Authentication-Results entry (RFC 8601).
//
// Parse reads a record into Terms whose String round-trips, for tools that
// count lookups or merge records.
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
// in 2 pyspf-only extensions and 6 stalwart cases that contradict RFC 7208
// (a syntax error after a match, exists matching AAAA, no void-lookup
// limit, MX names looked up past the limit), RFC 7208's result is
// expected. The runner names each of them.
//
// Two choices beyond the RFC text: the void-lookup limit counts terms whose
// own lookup is void (RFC 7208 §4.6.4), not the address lookups of an mx
// mechanism's names as pyspf does; and %{i} of an IPv6 address expands to
// upper-case nibbles, as the suites expect in explanations (DNS names
// compare case-insensitively, so queries are unchanged). An ip6 network
// written as an IPv4-mapped address matches the IPv4 client it maps.
package spf
