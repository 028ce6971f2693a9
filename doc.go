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
//     (DSNs, bounce texts, feedback reports, auto-replies);
//     relay/natsqueue, the same queue and the API keys and suppressions
//     on NATS JetStream, shared by a fleet of relays; and relay/smtptest,
//     a loopback SMTP server for tests. The programs under
//     examples/ each do one job with the packages above, examples/send
//     submitting a message.
//
// # One message, from end to end
//
// The program examples/demo (go run ./examples/demo) plays the whole story
// in one process on 127.0.0.1, and its code is the longer example of how
// the packages combine:
//
//  1. dnsauth.Request.Plan makes the records of domain authentication: in
//     the delegated mode the return-path subdomain and each DKIM selector
//     are CNAMEs into the provider's zone, the provider's SPF include joins
//     the domain's SPF record (dnsauth.MergeSPF) and a DMARC record is
//     added; dnsauth.Updater pushes them to a dnsauth/dnstest.Server, and
//     dnsauth.Resolver.Verify checks each record on every server and end
//     to end (SPF from the sending address, the DKIM key through its CNAME,
//     DMARC).
//  2. An application submits with relay.Client: STARTTLS, then AUTH with
//     its API key (relay.KeyFile made it) as the password of the user
//     "apikey".
//  3. relay.Server signs the message twice while it spools it, with
//     dkim.Signers for the customer's domain and the provider's
//     (ServerOptions.DomainSigners, ProviderSigner), gives it the return
//     path bounces+ID@ the customer's return-path subdomain (ReturnPaths,
//     recorded by a relay.Tracker) and answers 250 once relay.Spool holds
//     it; a relay.Deliverer delivers it through a relay.MXSender, which
//     finds the recipient's MX through the same resolver.
//  4. The receiving MX checks it with spf.Checker, a dkim.Verifier's
//     streaming writer and dmarc.Evaluator, and prepends msgauth.Header:
//     spf=pass (the return path's SPF includes the provider), dkim=pass
//     twice, dmarc=pass (the customer's signature and the return path
//     align with the From domain). The package Example is this step
//     on a message saved from such a provider.
//  5. A bounce sent later to the return path reaches the provider's
//     relay.BounceServer, the return-path subdomain's MX; relay/bounce
//     reads the DSN, the Tracker maps it to the message, and it becomes a
//     bounced event (relay.Events) and a relay.Suppressions entry, which
//     the Server then refuses at RCPT with 550 5.1.1.
//
// The examples of this package are the tour of README.md: one short
// program per package (Example_dnsauth, Example_dnstest, Example_spf,
// Example_dkim, Example_srs, Example_dmarc, Example_relay), each run by go
// test with its output checked. examples/authcheck is step 4 for a saved
// message, saying why each check passed or failed.
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
