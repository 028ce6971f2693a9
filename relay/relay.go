package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Envelope is the SMTP envelope of one message (RFC 5321 §2.3.1): the
// reverse-path, the forward-paths and the options of MAIL FROM and RCPT TO.
type Envelope struct {
	// From is the reverse-path (RFC 5321 §4.1.1.2), an address without
	// angle brackets; "" is the null sender of bounces (§4.5.5).
	From string
	// To are the forward-paths, in order.
	To []Recipient
	// SMTPUTF8 says the envelope or the header holds UTF-8 (RFC 6531
	// §3.4); the server must offer SMTPUTF8.
	SMTPUTF8 bool
	// Body is the BODY= of RFC 6152 §2: "" (7BIT, not sent), BodyEightBit
	// or BodyBinary (RFC 3030, which needs CHUNKING).
	Body BodyType
	// RequireTLS asks every hop to use TLS (RFC 8689 §4); the server must
	// offer REQUIRETLS.
	RequireTLS bool
	// Return is the RET= of a DSN request (RFC 3461 §4.3): ReturnFull or
	// ReturnHeaders; "" for none.
	Return DSNReturn
	// EnvID is the ENVID= of a DSN request (RFC 3461 §4.4), "" for none.
	EnvID string
}

// Recipient is one forward-path with the DSN options of its RCPT TO
// command (RFC 3461 §4.1, §4.2).
type Recipient struct {
	Addr string
	// Notify is NOTIFY=: NotifyNever alone, or any of NotifySuccess,
	// NotifyFailure, NotifyDelay. Empty: not sent.
	Notify []DSNNotify
	// ORcpt is ORCPT=, the original recipient as "rfc822;addr" (an
	// addr-type, ";" and the address). Empty: not sent.
	ORcpt string
}

// To makes recipients of addresses without DSN options.
func To(addrs ...string) []Recipient {
	out := make([]Recipient, len(addrs))
	for i, a := range addrs {
		out[i].Addr = a
	}
	return out
}

// BodyType is the BODY= parameter of MAIL FROM.
type BodyType string

// The body types of RFC 6152 and RFC 3030.
const (
	BodyEightBit BodyType = "8BITMIME"
	BodyBinary   BodyType = "BINARYMIME"
)

// DSNReturn is the RET= parameter of MAIL FROM (RFC 3461 §4.3).
type DSNReturn string

// The values of RET=.
const (
	ReturnFull    DSNReturn = "FULL"
	ReturnHeaders DSNReturn = "HDRS"
)

// DSNNotify is one value of the NOTIFY= parameter of RCPT TO (RFC 3461
// §4.1).
type DSNNotify string

// The values of NOTIFY=.
const (
	NotifyNever   DSNNotify = "NEVER"
	NotifySuccess DSNNotify = "SUCCESS"
	NotifyFailure DSNNotify = "FAILURE"
	NotifyDelay   DSNNotify = "DELAY"
)

// Message is a message body (header and content, RFC 5322) that can be
// read more than once, for retries and failover.
type Message interface {
	// Open returns a new reader of the whole message from its start.
	Open() (io.ReadCloser, error)
	// Size is the length of the message in octets.
	Size() int64
}

// Bytes is a Message held in memory.
type Bytes []byte

// Open returns a reader of b.
func (b Bytes) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

// Size returns len(b).
func (b Bytes) Size() int64 { return int64(len(b)) }

// File is a Message in a file, opened anew for each reading.
type File string

// Open opens the file.
func (f File) Open() (io.ReadCloser, error) { return os.Open(string(f)) }

// Size returns the size of the file, or -1 when it cannot be read.
func (f File) Size() int64 {
	fi, err := os.Stat(string(f))
	if err != nil {
		return -1
	}
	return fi.Size()
}

// Sender delivers one message and reports each recipient's outcome. The
// smart-host client, a failover list, a rate limiter, a DKIM signer and the
// queue are all Senders, and stack like http.Handler middleware.
//
// Send returns a Receipt with one RcptResult per recipient of env.To, in
// order: those the server accepted got the message, the others say why
// not. When the server refused every recipient, that is the Receipt, and
// the error is nil: each recipient has its own reason.
//
// Send returns an error when the transaction as a whole failed (no
// connection, a refused MAIL FROM or DATA, a cancelled context): no
// recipient got the message. errors.As finds a *Reply in it when a server
// said so. If the failure came after the recipients were answered, the
// Receipt comes with the error, so that a refused recipient keeps its own
// reply: the recipients the server had accepted hold the reply of the
// failure, or none when there was no reply (the connection failed).
type Sender interface {
	Send(ctx context.Context, env *Envelope, msg Message) (*Receipt, error)
}

// SenderFunc adapts a function to the Sender interface.
type SenderFunc func(ctx context.Context, env *Envelope, msg Message) (*Receipt, error)

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, env *Envelope, msg Message) (*Receipt, error) {
	return f(ctx, env, msg)
}

// Receipt is the outcome of one Send.
type Receipt struct {
	// Host is the server that took the message, as host:port.
	Host string
	// Rcpts are the recipients' outcomes, in the order of Envelope.To.
	Rcpts []RcptResult
	// TLS is the state of the connection's TLS, nil when the message went
	// in plaintext. VerifiedChains is empty when the server's certificate
	// was not verified, which only opportunistic TLS (RFC 7435) or a
	// TLSConfig with InsecureSkipVerify allows.
	TLS *tls.ConnectionState
	// DSN reports that the server offered DSN (RFC 3461), so that the
	// envelope's DSN options went with the message. Without it they were
	// left out, and the relay answers for them: a recipient that asked
	// NOTIFY=SUCCESS is owed a "relayed" DSN (RFC 3461 §5.2.2).
	DSN bool
}

// RcptResult is one recipient's outcome.
type RcptResult struct {
	Addr string
	// Reply is the server's reply for this recipient: to RCPT TO when it
	// refused the recipient, else to the end of DATA (or the BDAT LAST),
	// or the reply that failed the transaction after RCPT; nil when the
	// transaction failed without a reply (see Sender).
	Reply *Reply
}

// Accepted reports whether the recipient got the message (a 2xx reply).
func (r RcptResult) Accepted() bool { return r.Reply != nil && r.Reply.Code/100 == 2 }

// Accepted returns the addresses that got the message.
func (r *Receipt) Accepted() []string {
	var out []string
	for _, x := range r.Rcpts {
		if x.Accepted() {
			out = append(out, x.Addr)
		}
	}
	return out
}

// Reply is an SMTP reply (RFC 5321 §4.2) with its enhanced status code
// (RFC 3463). It is the error type of this package for what a server said.
type Reply struct {
	// Code is the three-digit reply code.
	Code int
	// Enhanced is the enhanced status code (class.subject.detail), zero
	// when the server gave none.
	Enhanced EnhancedCode
	// Message is the text, the lines of a multi-line reply joined by
	// "\n", without the code and enhanced code.
	Message string
}

// EnhancedCode is an enhanced mail system status code (RFC 3463 §2):
// class (2, 4 or 5), subject and detail.
type EnhancedCode [3]int

// String writes the code as "class.subject.detail", "" for the zero code.
func (c EnhancedCode) String() string {
	if c == (EnhancedCode{}) {
		return ""
	}
	return strconv.Itoa(c[0]) + "." + strconv.Itoa(c[1]) + "." + strconv.Itoa(c[2])
}

// ParseEnhancedCode reads "class.subject.detail" (RFC 3463 §2: class 2,
// 4 or 5; subject and detail of at most three digits).
func ParseEnhancedCode(s string) (EnhancedCode, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return EnhancedCode{}, fmt.Errorf("relay: enhanced status code %q is not class.subject.detail", s)
	}
	var c EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || p == "" || len(p) > 3 || p[0] == '+' || p[0] == '-' {
			return EnhancedCode{}, fmt.Errorf("relay: enhanced status code %q is not class.subject.detail", s)
		}
		c[i] = n
	}
	if c[0] != 2 && c[0] != 4 && c[0] != 5 {
		return EnhancedCode{}, fmt.Errorf("relay: enhanced status code %q has class %d, not 2, 4 or 5", s, c[0])
	}
	return c, nil
}

// Error writes the reply as a server would send it, on one line.
func (r *Reply) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if e := r.Enhanced.String(); e != "" {
		b.WriteByte(' ')
		b.WriteString(e)
	}
	if r.Message != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ReplaceAll(r.Message, "\n", " "))
	}
	return b.String()
}

// Temporary reports a transient failure (4xx, RFC 5321 §4.2.1): the same
// command may succeed later.
func (r *Reply) Temporary() bool { return r.Code/100 == 4 }

// Permanent reports a permanent failure (5xx): trying again will not help.
func (r *Reply) Permanent() bool { return r.Code/100 == 5 }
