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
//   - relay composes them: the client submits to a smart host, the server
//     signs, rewrites the envelope sender and queues durably.
//
// This package holds documentation only.
package smarthost
