// Package natsqueue puts the relay's queue (relay.Queue) on NATS
// JetStream, so that a fleet of relays shares one queue: any relay takes
// a message, any relay delivers it, and a relay or a JetStream node can
// die or be upgraded without losing mail or holding it back.
//
// A Queue keeps each message in three places:
//
//   - a message on a work-queue stream, published with the queue ID as
//     its message ID (the Nats-Msg-Id header), which holds the content
//     when it fits in one message, or else points to
//   - an object of the object store, in chunks;
//   - a key of a key-value bucket, the queue ID, whose value is the
//     entry (relay.Entry: the envelope, the recipients' states, the next
//     attempt) with the deadline of the lease that holds it, if any.
//
// Stream messages are immutable; the entry is what changes, and every
// change is a write that checks the key's revision, so a worker whose
// lease was taken over cannot overwrite the new holder's states.
//
// Commit writes the object (if any), the entry, then the stream message,
// each acknowledged by JetStream before the next, so that a message on
// the stream always has its entry. A publish that got no answer is
// retried with the same message ID: within the stream's duplicate
// window JetStream stores it once.
//
// All relays pull from one durable consumer with explicit
// acknowledgement. Lease fetches a message, reads its entry and, if it is
// due on the queue's clock (Options.Now) and no live lease holds it,
// writes its own lease into the entry: the lease time is the consumer's
// ack wait. Extend writes the new deadline and sends a progress
// acknowledgement; Retry writes the entry and sends a negative
// acknowledgement delayed until the retry (at most Options.MaxDelay:
// then Lease looks again); Done purges the entry and acknowledges the
// message, which the work-queue stream then deletes. A message fetched
// before it is due goes back with a delay too. The delivery policy
// (backoff, expiry, DSNs) is the relay.Deliverer's, the same on every
// queue.
//
// Everything read back is checked as the spool checks its files: a
// message whose ID, size or entry does not make sense is quarantined
// (terminated, so JetStream does not deliver it again, and logged at
// error level), its entry and content left for an operator: the entry in
// the bucket, the content in the object store under the queue ID (a
// content kept in the stream message is copied there first, since
// terminating deletes the stream message). A message
// without an entry was done already (its acknowledgement was lost) and
// is dropped.
//
// # Operations
//
// New creates or updates, with Prefix "RELAY" by default:
//
//   - stream RELAY_QUEUE, subject RELAY.queue: WorkQueue retention (a
//     message is deleted once acknowledged), file storage, Replicas
//     copies, a duplicate window of 2 minutes (a Commit retried within it
//     is stored once);
//   - consumer RELAY_DELIVER: durable pull, AckExplicit; AckWait is the
//     lease time (Options.AckWait, 5 minutes: longer than most deliveries,
//     which the Deliverer extends anyway, short enough that a dead relay's
//     messages resume soon); MaxDeliver unlimited, since the Deliverer's
//     MaxAge decides when a message expires, not a delivery count;
//     MaxAckPending unlimited, since a message waiting for its retry stays
//     pending with its delay, and a limit would stop all delivery once
//     that many messages are deferred; MaxWaiting left at the server's
//     default (512 pull requests at once), which bounds the workers of
//     the whole fleet (each waiting Lease holds one request);
//   - key-value bucket RELAY_ENTRIES: history 1 (only the current entry
//     matters), markers of purged keys kept one minute;
//   - object store RELAY_CONTENT, for contents over Options.MaxInline (by
//     default the server's max_payload, 1 MiB unless configured, less
//     8 KiB).
//
// Sizing: the stream holds the queued contents (a 10 KiB message is about
// 10 KiB on disk per replica), the bucket a few hundred octets per queued
// message plus about a hundred per recipient. Memory on the servers grows
// with the number of pending messages in the consumer (a few hundred
// octets each), not with their size. Give the account JetStream storage
// for the largest backlog you want to hold (for example a day of mail when
// a destination is down) and set max_payload no lower than the usual
// message.
//
// Durability: Commit returns, and the relay answers 250, once JetStream
// has acknowledged the writes; with Replicas 3, once a majority of the
// replicas has them. A JetStream server writes to its files at once but
// syncs them to disk every sync_interval (2 minutes by default): a single
// server that loses power may lose the last acknowledged messages unless
// it runs with sync_interval: always; in a cluster of three, a message is
// on two machines before it is acknowledged.
//
// A cluster of three nodes with Replicas 3 survives one node down: the
// streams elect new leaders in a few seconds, during which a Commit may
// fail (the client gets a temporary error and sends again) and Lease
// waits; nothing acknowledged is lost, and the node catches up when it
// returns. With two nodes down there is no quorum: Commit fails, nothing
// is delivered, nothing is lost. A relay that dies holds its leases
// until their ack wait runs out; the messages then go to the other
// relays, with the recipient states last saved, so a recipient saved as
// delivered is not delivered again (a crash between a server's 250 and
// the save still delivers twice: at least once).
//
// Every relay decides what is due with its own clock: keep the clocks
// synchronised (NTP); a skew moves retries and lease takeovers by the
// skew, and never loses a message.
//
// References: RFC 5321 §4.5.4.1 (retry strategy) and §6.1 (a message
// accepted is delivered or bounced, never lost); the NATS documentation
// of JetStream streams (work-queue retention, message deduplication),
// consumers (AckWait, AckExplicit, negative acknowledgement with delay,
// AckProgress), the key-value store and the object store, and ADR-8
// (JetStream key-value design).
package natsqueue
