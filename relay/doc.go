// Package relay is the smart host: the client that submits mail to one
// (authenticated, TLS only, pooled, failing over), and the relay server
// that signs, rewrites the envelope sender and queues it.
//
// Every delivery path is a Sender: one message, an Envelope and a
// re-readable Message in, each recipient's outcome (a Receipt) out. Replies
// of servers are *Reply values, with the code, the enhanced status code
// (RFC 3463) and the text, and say whether they are temporary.
//
// # The smart-host client
//
// A Client submits to one server (NewClient): over STARTTLS by default,
// required and verified, or implicit TLS on port 465; opportunistic TLS and
// plaintext only when asked for. It authenticates with the SASL mechanisms
// of package relay/sasl, the strongest both sides have unless one is
// configured, and never before TLS. Providers that authenticate with an API
// key take it as the password of the user "apikey".
//
// Its connections are pooled and reused, and it pipelines (RFC 2920): a
// message on a reused connection costs two round trips, one when the
// server offers CHUNKING (RFC 3030). A refused recipient is reported in the
// Receipt while the others get the message. The context of Send bounds
// every wait; cancelling it never leaves a message half-sent.
//
// # The queue and its delivery
//
// A Queue keeps what the relay accepted until each recipient is delivered
// or bounced: Commit returns only once the message is durable, and workers
// lease messages, save each recipient's outcome, and retry or finish them;
// a lease not extended in time expires and the message is taken over, so
// delivery is at least once. Spool is the default Queue, a directory
// whose files are synced (content, entry and the directory, whose syncs
// concurrent commits share) before Commit returns; package relay/queuetest
// checks any Queue against the contract.
//
// A Deliverer delivers a Queue through any Sender: each recipient is
// retried on its own after a 4xx, with exponential backoff and jitter, up
// to a maximum age (five days); a 5xx, or the end of that age, bounces it
// with a delivery status notification (RFC 3464) to the sender, unless the
// sender is null or the recipient's NOTIFY excludes it (RFC 3461). Every
// outcome is an Event. A shutdown lets the deliveries under way finish for
// a grace period and releases the others for the next start.
//
// # Suppressions
//
// Suppressions is the list of recipients each account must not mail again;
// SuppressionFile keeps it in a JSON file that several processes share,
// MemorySuppressions in memory. A Deliverer given one adds each recipient
// that bounces hard (a 5xx whose status is about the address itself, such
// as 5.1.1, as relay/bounce judges it), and a Server given one refuses
// the recipients suppressed for the authenticated account at RCPT with
// 550 5.1.1, or accepts and drops them with a dropped event.
//
// # What comes back
//
// A Server with a Tracker records, for each message given a return path
// (bounces+ID@ a customer's return-path domain), the ID and the message
// it stands for; FileTracker keeps them in a file for a retention period.
// A BounceServer, the return-path domains' MX on port 25, accepts mail
// only for tracked return paths and for valid SRS addresses: bounces (RFC
// 3464 DSNs and the common non-standard ones, parsed by relay/bounce)
// become bounced events for the message's recipients, feedback reports
// (RFC 5965) spamreport events, hard bounces and spam reports
// Suppressions of the sending account; mail to an SRS address is queued
// to the original sender with the null sender.
//
// # Tracking and monitoring
//
// Events receives each step of a message's life. Webhook is an Events
// that posts them in batches to a receiver, signed with HMAC-SHA256 (RFC
// 2104) over the timestamp and body, which VerifyWebhook checks; a batch
// is on disk from before it is sent until the receiver answers 2xx, so
// that none is lost to a restart. Metrics receives the counts of the
// Server and the Deliverer, and Spool.Stats gives the queue's depth and
// age, for a program to export with the metrics library it uses.
package relay
