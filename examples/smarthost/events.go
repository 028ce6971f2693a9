package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sync"

	"github.com/smarthost-go/smarthost/relay"
)

// eventLog writes the events of message tracking to a file as JSON lines
// (one relay.Event per line, RFC 8259), appending: the file of -events.
// Each line goes to the file in one write, so that a reader never sees
// half of one, and a crash leaves at most the last one cut.
type eventLog struct {
	mu     sync.Mutex
	f      *os.File
	logger *slog.Logger
	failed bool
}

// openEventLog opens (or creates, mode 0640) the file to append to.
func openEventLog(path string, logger *slog.Logger) (*eventLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &eventLog{f: f, logger: logger}, nil
}

// Emit writes e as one line. A failed write is logged once; events are
// not the record of delivery (the spool is), so the relay goes on.
func (l *eventLog) Emit(ctx context.Context, e *relay.Event) {
	b, err := json.Marshal(e)
	if err == nil {
		b = append(b, '\n')
		l.mu.Lock()
		_, err = l.f.Write(b)
		l.mu.Unlock()
	}
	if err != nil {
		l.mu.Lock()
		first := !l.failed
		l.failed = true
		l.mu.Unlock()
		if first {
			l.logger.ErrorContext(ctx, "cannot write the events", "file", l.f.Name(), "err", err)
		}
	}
}

// Close closes the file.
func (l *eventLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
