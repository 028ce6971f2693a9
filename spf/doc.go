// Package spf implements the Sender Policy Framework, RFC 7208: the
// check_host() function that decides whether an IP address may send mail
// for a domain, SPF record parsing, and the Received-SPF header.
//
// A Checker evaluates records through a Resolver (net.DefaultResolver
// works) within the RFC's limits: 10 DNS-querying terms, 2 void lookups,
// 10 names per mx and ptr (RFC 7208 §4.6.4), all configurable through
// Options. A Result carries the status, the explanation, the mechanism that
// matched and a Trace of every lookup and term, so a person can see why.
package spf
