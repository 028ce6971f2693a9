// Package relay is the smart host: the client that submits mail to one
// (authenticated, TLS only, pooled, failing over), and the relay server
// that signs, rewrites the envelope sender and queues it.
//
// Every delivery path is a Sender: one message, an Envelope and a
// re-readable Message in, each recipient's outcome (a Receipt) out. Replies
// of servers are *Reply values, with the code, the enhanced status code
// (RFC 3463) and the text, and say whether they are temporary.
package relay
