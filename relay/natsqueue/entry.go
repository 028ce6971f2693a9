package natsqueue

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// record is the value of a message's key in the bucket: its entry, and
// until when a worker holds it.
type record struct {
	Entry *relay.Entry `json:"entry"`
	// Until is the deadline of the lease that holds the message, on the
	// clock of the queue that leased it; zero when no lease holds it.
	Until time.Time `json:"until,omitzero"`
}

// maxRecord bounds the size of a record read back: an entry is a few
// hundred octets per recipient, and the relay takes at most a few
// thousand recipients.
const maxRecord = 4 << 20

func encodeRecord(r *record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("natsqueue: entry: %w", err)
	}
	return b, nil
}

// errCorrupt is wrapped by the errors of a record that cannot be read.
var errCorrupt = errors.New("natsqueue: corrupt entry")

// decodeRecord reads and checks the record of the message id.
func decodeRecord(id string, b []byte) (*record, error) {
	if len(b) > maxRecord {
		return nil, fmt.Errorf("%w: %d octets", errCorrupt, len(b))
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if r.Entry == nil {
		return nil, fmt.Errorf("%w: no entry", errCorrupt)
	}
	if err := checkEntry(id, r.Entry); err != nil {
		return nil, err
	}
	return &r, nil
}

// validID reports whether id has the form of the IDs a Queue makes (the
// base32 of crypto/rand.Text), so that no header read back names another
// key or object.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// checkEntry checks an entry read back, as the spool checks its files
// (relay.Entry.Check), and that it is the entry of id.
func checkEntry(id string, e *relay.Entry) error {
	if e.ID != id {
		return fmt.Errorf("%w: ID %q in the entry of %s", errCorrupt, e.ID, id)
	}
	if err := e.Check(); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return nil
}
