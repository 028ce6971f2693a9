// Package smtptest provides SMTP fixtures for tests, as net/http/httptest
// does for HTTP: a Server on 127.0.0.1 that keeps every message it
// receives, and a latency Proxy.
//
// A Server is built on github.com/emersion/go-smtp's server. It has a
// self-signed certificate made at start, which TLSConfig and CertPool give
// to clients; it offers STARTTLS, implicit TLS or none (Options.TLS); AUTH
// with the mechanisms of package relay/sasl, after TLS only unless
// Options.AllowInsecureAuth; and PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8,
// DSN, REQUIRETLS, BINARYMIME and SIZE, each of which Options.Disable can
// withdraw to test a client's fallbacks.
//
// Every message is kept with its envelope (a relay.Envelope with its DSN,
// SMTPUTF8, BODY and REQUIRETLS options), its bytes, the TLS state, the
// authenticated user, and the client's EHLO name and address: see Messages
// and WaitMessages. Stats counts connections, commands by verb,
// transactions and messages, so that a test or a benchmark can assert how
// many round trips a client made and whether it reused its connection.
//
// Faults are scripted while the server runs: a reply of one's choosing to
// a given command for the next n occurrences or always (Fail), a hang-up
// in the middle of the message content, a delay before every reply
// (SetDelay).
//
// A Proxy forwards TCP to a server adding a fixed latency each way, to
// make round trips visible in benchmarks.
package smtptest
