package smtptest

import (
	"fmt"
	"strings"

	"github.com/smarthost-go/smarthost/relay"
)

// Command names the point of a session where a Fault applies.
type Command string

// The points where a Fault may apply.
const (
	Greeting  Command = "greeting" // the 220 banner (RFC 5321 §4.3.1)
	EHLO      Command = "EHLO"     // EHLO or HELO
	STARTTLS  Command = "STARTTLS" // the STARTTLS command, before the 220 and the handshake
	AUTH      Command = "AUTH"     // the AUTH command, before any challenge
	MAIL      Command = "MAIL"
	RCPT      Command = "RCPT"
	DATA      Command = "DATA"    // the DATA command, before the 354
	Content   Command = "content" // the message content after DATA or BDAT: Hangup only
	EndOfData Command = "end"     // the reply to the final "." or to BDAT LAST
	BDAT      Command = "BDAT"    // a BDAT command and its chunk
	RSET      Command = "RSET"
)

// Fault is a scripted misbehaviour: the server answers the command On with
// Reply instead of its own answer, or hangs up. It applies to the next
// Times occurrences (0: always), across connections, and then is spent.
type Fault struct {
	// On is where the fault applies.
	On Command
	// Rcpt limits a RCPT fault to that recipient (compared without regard
	// to case); "" is every recipient.
	Rcpt string
	// Reply is the answer, a 4xx or 5xx code (RFC 5321 §4.2.1) with an
	// optional enhanced code (RFC 3463) and text (lines joined by "\n").
	// After a 421 the server closes the connection (§3.8).
	//
	// A refused command does not reach the server's session: a refused
	// STARTTLS (454 4.7.0, RFC 3207 §4) leaves the session in plaintext,
	// a refused MAIL starts no transaction, a refused RCPT adds no
	// recipient. A
	// refused BDAT ends the transaction (RFC 3030 §2): its chunk and any
	// before it are discarded. A refused EndOfData keeps no message.
	// After a refused Greeting the server answers 503 to everything but
	// QUIT (RFC 5321 §3.1).
	Reply relay.Reply
	// Hangup closes the connection instead of replying; Reply is then
	// unused.
	Hangup bool
	// After, for On == Content, is the number of octets of the message
	// content passed on before the server hangs up.
	After int64
	// Times is how many occurrences the fault answers, 0 for all.
	Times int
}

func (f Fault) validate() error {
	switch f.On {
	case Greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, EndOfData, BDAT, RSET:
	case Content:
		if !f.Hangup {
			return fmt.Errorf("smtptest: a %s fault hangs up, it cannot reply", f.On)
		}
	default:
		return fmt.Errorf("smtptest: no command %q for a fault", f.On)
	}
	if f.Rcpt != "" && f.On != RCPT {
		return fmt.Errorf("smtptest: Rcpt is for RCPT faults, not %s", f.On)
	}
	if f.After != 0 && f.On != Content || f.After < 0 {
		return fmt.Errorf("smtptest: After is a positive count for Content faults")
	}
	if !f.Hangup && (f.Reply.Code < 400 || f.Reply.Code > 599) {
		return fmt.Errorf("smtptest: fault reply code %d is not 4xx or 5xx", f.Reply.Code)
	}
	if f.Times < 0 {
		return fmt.Errorf("smtptest: Times %d is negative", f.Times)
	}
	return nil
}

// fault is a Fault with its remaining count (-1: always).
type fault struct {
	Fault
	left int
}

// Fail adds a fault. Faults are kept in the order added; the first that
// matches a command answers it. It may be called while clients are
// connected.
func (s *Server) Fail(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	left := f.Times
	if left == 0 {
		left = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f, left: left})
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// take returns the fault that answers this occurrence of cmd, counting it,
// or nil.
func (s *Server) take(cmd Command, rcpt string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.On != cmd || f.Rcpt != "" && !strings.EqualFold(f.Rcpt, rcpt) {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		out := f.Fault
		return &out
	}
	return nil
}

// commandOf maps a verb to the Command a fault names, "" for the verbs
// faults do not apply to (NOOP, QUIT, VRFY, ...).
func commandOf(verb string) Command {
	switch verb {
	case "EHLO", "HELO":
		return EHLO
	case "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET":
		return Command(verb)
	}
	return ""
}
