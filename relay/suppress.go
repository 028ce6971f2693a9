package relay

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// SuppressionSource says how a recipient came to be suppressed.
type SuppressionSource string

// The sources of a suppression.
const (
	SuppressedByBounce     SuppressionSource = "bounce"     // a hard bounce came back for it
	SuppressedBySpamReport SuppressionSource = "spamreport" // its owner reported a message as spam (RFC 5965)
	SuppressedByHand       SuppressionSource = "manual"     // an operator added it
)

// SuppressedAction is what a Server does with RCPT of a suppressed
// recipient (ServerOptions.SuppressedAction).
type SuppressedAction string

// The actions on a suppressed recipient.
const (
	// SuppressedRefuse answers RCPT with 550 5.1.1, saying why.
	SuppressedRefuse SuppressedAction = "refuse"
	// SuppressedDrop answers RCPT with 250, leaves the recipient out of
	// the message queued, and emits a dropped event.
	SuppressedDrop SuppressedAction = "drop"
)

// Suppression is a recipient an account must not mail again.
type Suppression struct {
	// Account is the sending account (Account.Name) the suppression is
	// for; Recipient the address, compared without regard to the case of
	// its domain.
	Account   string `json:"account"`
	Recipient string `json:"recipient"`
	// Source says why; Reason gives the details, such as the status and
	// diagnostic of the bounce.
	Source SuppressionSource `json:"source"`
	Reason string            `json:"reason,omitempty"`
	// QueueID is the message whose bounce or report caused it, if any.
	QueueID string    `json:"queue_id,omitempty"`
	Created time.Time `json:"created"`
}

// Suppressions is the list of recipients each account must not mail
// again: hard bounces and spam reports add to it, and a Server refuses
// (or drops) its recipients at RCPT. Implementations are safe for
// concurrent use.
type Suppressions interface {
	// Suppressed returns the suppression of rcpt for account, or nil when
	// there is none.
	Suppressed(ctx context.Context, account, rcpt string) (*Suppression, error)
	// Add adds s, replacing the one for the same account and recipient.
	Add(ctx context.Context, s Suppression) error
	// Remove removes the suppression of rcpt for account; removing one
	// that does not exist is not an error.
	Remove(ctx context.Context, account, rcpt string) error
	// List returns the suppressions of account ("" for every account),
	// oldest first.
	List(ctx context.Context, account string) ([]Suppression, error)
}

// why says in words why a recipient is suppressed, for a reply or an
// event: its source, and its reason when it has one.
func (s *Suppression) why() string {
	w := "added by the operator"
	switch s.Source {
	case SuppressedByBounce:
		w = "a hard bounce"
	case SuppressedBySpamReport:
		w = "a spam report"
	}
	if s.Reason != "" {
		w += ": " + s.Reason
	}
	return w
}

// suppressionKey is the key of a suppression: the account, and the
// recipient with its domain in lower case (RFC 5321 §2.4: the local part
// may be case-sensitive, the domain is not).
func suppressionKey(account, rcpt string) string {
	if at := strings.LastIndexByte(rcpt, '@'); at >= 0 {
		rcpt = rcpt[:at] + strings.ToLower(rcpt[at:])
	}
	return account + "\x00" + rcpt
}

// MemorySuppressions is a Suppressions held in memory, for tests and for
// programs that keep the list elsewhere. The zero value is empty and
// ready.
type MemorySuppressions struct {
	mu sync.Mutex
	m  map[string]Suppression
}

// Suppressed implements Suppressions.
func (s *MemorySuppressions) Suppressed(ctx context.Context, account, rcpt string) (*Suppression, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[suppressionKey(account, rcpt)]; ok {
		return &v, nil
	}
	return nil, nil
}

// Add implements Suppressions.
func (s *MemorySuppressions) Add(ctx context.Context, v Suppression) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]Suppression)
	}
	s.m[suppressionKey(v.Account, v.Recipient)] = v
	return nil
}

// Remove implements Suppressions.
func (s *MemorySuppressions) Remove(ctx context.Context, account, rcpt string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, suppressionKey(account, rcpt))
	return nil
}

// List implements Suppressions.
func (s *MemorySuppressions) List(ctx context.Context, account string) ([]Suppression, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Suppression
	for _, v := range s.m {
		if account == "" || v.Account == account {
			out = append(out, v)
		}
	}
	sortSuppressions(out)
	return out, nil
}

// sortSuppressions orders by Created, then account and recipient.
func sortSuppressions(l []Suppression) {
	slices.SortFunc(l, func(a, b Suppression) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(suppressionKey(a.Account, a.Recipient), suppressionKey(b.Account, b.Recipient))
	})
}
