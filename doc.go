// Package smarthost is the root of an SDK for sending mail through an
// authenticated smart host, signed and aligned for the sender's own domain,
// and for checking mail the way receiving mailbox providers do.
//
// The packages combine like this:
//
//   - dnsauth asks DNS questions (a resolver built on miekg/dns with a cache)
//     and knows the records a domain publishes so that a relay may speak for
//     it; dnsauth/dnstest answers the same questions from memory or from a
//     loopback DNS server, for tests.
//   - spf (RFC 7208), dkim (RFC 6376, RFC 8463), srs (the Sender Rewriting
//     Scheme) and dmarc (RFC 7489, RFC 9989) implement one standard each.
//     They import none of each other; each needs only a resolver shaped like
//     *net.Resolver, so net.DefaultResolver, a dnsauth.Resolver and a
//     dnstest.Zone all serve.
//   - msgauth is what spf, dkim and dmarc share: the RFC 8601 result
//     keywords, and the Authentication-Results header field that any mix of
//     their results becomes. The results of spf and dkim are also the input
//     of dmarc, so a receiver checks a message in one pass (see the example).
//   - relay composes them. It holds the types every delivery path shares
//     (Envelope, Message, Sender, Receipt, Reply); the Client that submits
//     to a smart host (TLS, SASL from relay/sasl, pooled and pipelined
//     connections, a reply for each recipient) and the Senders that stack
//     on it (SigningSender, Failover, RateLimiter, MXSender); the Server
//     that takes submissions with API keys, signs each message twice with
//     DKIM and rewrites its envelope sender as it spools it; the durable
//     Spool and the Deliverer that delivers from it with retries and
//     DSNs; relay/bounce, which reads what comes back to a return path
//     (DSNs, bounce texts, feedback reports, auto-replies); and
//     relay/smtptest, a loopback SMTP server for tests. The programs under
//     examples/ each do one job with the packages above, examples/send
//     submitting a message.
//
// This package holds documentation only.
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
package smarthost
