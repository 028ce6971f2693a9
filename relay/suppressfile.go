package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	suppressionFileVersion = 1
	// maxSuppressionFile bounds what a SuppressionFile reads: 256 MiB is
	// some two million suppressions.
	maxSuppressionFile = 256 << 20
)

// SuppressionFileOptions configures OpenSuppressionFile. A nil
// *SuppressionFileOptions means the defaults.
type SuppressionFileOptions struct {
	// Logger receives a debug record of each Add and Remove, and of each
	// reading of the file after another writer changed it. Default: none.
	Logger *slog.Logger
	// Now is the clock of Suppression.Created when Add is given none.
	// Default time.Now.
	Now func() time.Time
}

// SuppressionFile is a Suppressions kept in a JSON file. It is safe for
// concurrent use, and several SuppressionFiles, in one process or in
// several (the relay and the command that manages its list), may share a
// file.
//
// # Seeing changes at once
//
// As KeyFile does, each Suppressed and List stats the file and reads it
// again when it is another file (a new inode: every writer of this
// package renames a new file over it) or its size or modification time
// changed. A suppression added or removed by any SuppressionFile is thus
// seen by the next Suppressed of every other, with no delay and no file
// watcher. When the file has changed and cannot be read (malformed JSON,
// an unknown field or version, a suppression twice, or it is gone),
// Suppressed and List return the error, so that a Server answers 451 and
// the client tries again later, rather than mail a recipient the list may
// hold; Add and Remove refuse to change such a file. OpenSuppressionFile
// refuses one from the start.
//
// # Writing
//
// Add and Remove hold an exclusive lock (flock(2) on the file's path with
// ".lock" appended; see KeyFile for systems without it), read the file
// afresh, change it, write the whole of it to a new file in the same
// directory (mode 0600), fsync it, rename it over the old one and fsync
// the directory. A crash leaves the old file or the new one, never a mix,
// and writers at once all keep their change. Each change rewrites the
// whole file: the cost grows with the list.
//
// # Format
//
// A JSON object (RFC 8259) of version 1, its suppressions oldest first:
//
//	{
//	  "version": 1,
//	  "suppressions": [
//	    {
//	      "account": "shop",
//	      "recipient": "bob@example.org",
//	      "source": "bounce",
//	      "reason": "550 5.1.1 user unknown",
//	      "queue_id": "Q0001",
//	      "created": "2026-01-02T15:04:05Z"
//	    }
//	  ]
//	}
//
// Unknown fields are refused, so that a misspelt one in a hand edit is an
// error rather than ignored.
type SuppressionFile struct {
	path     string
	lockPath string
	log      *slog.Logger
	now      func() time.Time
	// writing serializes this SuppressionFile's writers before the file
	// lock.
	writing chan struct{}

	mu  sync.Mutex
	cur *suppressionSnapshot // nil once closed
}

// suppressionSnapshot is one version of the file, as read.
type suppressionSnapshot struct {
	fi    fs.FileInfo
	f     *os.File // the file read, held open so its inode is not reused
	list  []Suppression
	byKey map[string]int // suppressionKey to index in list
}

// suppressionFileData is the JSON of a suppression file.
type suppressionFileData struct {
	Version      int           `json:"version"`
	Suppressions []Suppression `json:"suppressions"`
}

var errSuppressionFileClosed = errors.New("relay: suppression file closed")

// OpenSuppressionFile opens the suppression file at path, creating it
// empty when it does not exist. It refuses a file it cannot read. ctx
// bounds the wait for the file lock, taken only to create the file.
func OpenSuppressionFile(ctx context.Context, path string, opts *SuppressionFileOptions) (*SuppressionFile, error) {
	var o SuppressionFileOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &SuppressionFile{path: path, lockPath: path + ".lock", log: o.Logger, now: o.Now, writing: make(chan struct{}, 1)}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		unlock, err := lockFile(ctx, s.lockPath)
		if err != nil {
			return nil, err
		}
		_, err = os.Stat(path) // again: another process may have been first
		if errors.Is(err, fs.ErrNotExist) {
			err = s.write(nil)
		}
		unlock()
		if err != nil {
			return nil, fmt.Errorf("relay: suppression file: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("relay: suppression file: %w", err)
	}
	snap, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur = snap
	return s, nil
}

// load reads the file as it is now.
func (s *SuppressionFile) load() (*suppressionSnapshot, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("relay: suppression file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("relay: suppression file: %w", err)
	}
	text, err := io.ReadAll(io.LimitReader(f, maxSuppressionFile+1))
	if err == nil && len(text) > maxSuppressionFile {
		err = fmt.Errorf("over %d octets", maxSuppressionFile)
	}
	var snap *suppressionSnapshot
	if err == nil {
		snap, err = parseSuppressionFile(text)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("relay: suppression file %s: %w", s.path, err)
	}
	snap.fi, snap.f = fi, f
	return snap, nil
}

// parseSuppressionFile reads and checks the JSON of a suppression file.
func parseSuppressionFile(text []byte) (*suppressionSnapshot, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var d suppressionFileData
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	if d.Version != suppressionFileVersion {
		return nil, fmt.Errorf("version %d, not %d", d.Version, suppressionFileVersion)
	}
	snap := &suppressionSnapshot{list: d.Suppressions, byKey: make(map[string]int, len(d.Suppressions))}
	for i, v := range d.Suppressions {
		if err := checkSuppression(&v); err != nil {
			return nil, fmt.Errorf("suppression %d: %w", i+1, err)
		}
		k := suppressionKey(v.Account, v.Recipient)
		if _, dup := snap.byKey[k]; dup {
			return nil, fmt.Errorf("suppression %d: %q for account %q twice", i+1, v.Recipient, v.Account)
		}
		snap.byKey[k] = i
	}
	return snap, nil
}

// checkSuppression checks what a file or Add may hold: an account, an
// address with a domain, a known source.
func checkSuppression(v *Suppression) error {
	switch {
	case v.Account == "":
		return errors.New("no account")
	case strings.LastIndexByte(v.Recipient, '@') <= 0 || strings.HasSuffix(v.Recipient, "@"):
		return fmt.Errorf("recipient %q is not local-part@domain", v.Recipient)
	case strings.ContainsAny(v.Account+v.Recipient, "\x00\r\n"):
		return errors.New("a control character in the account or recipient")
	}
	switch v.Source {
	case SuppressedByBounce, SuppressedBySpamReport, SuppressedByHand:
	default:
		return fmt.Errorf("source %q is not %s, %s or %s", v.Source, SuppressedByBounce, SuppressedBySpamReport, SuppressedByHand)
	}
	return nil
}

// current returns the file as it is now, read again if it changed, or
// the error that keeps it from being read.
func (s *SuppressionFile) current() (*suppressionSnapshot, error) {
	fi, statErr := os.Stat(s.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.cur
	switch {
	case snap == nil:
		return nil, errSuppressionFileClosed
	case statErr != nil:
		return nil, fmt.Errorf("relay: suppression file: %w", statErr)
	case sameVersion(fi, snap.fi):
		return snap, nil
	}
	next, err := s.load()
	if err != nil {
		return nil, err
	}
	snap.f.Close()
	s.cur = next
	s.log.Debug("relay: suppression file read again", "path", s.path, "suppressions", len(next.list))
	return next, nil
}

// Suppressed implements Suppressions.
func (s *SuppressionFile) Suppressed(ctx context.Context, account, rcpt string) (*Suppression, error) {
	snap, err := s.current()
	if err != nil {
		return nil, err
	}
	if i, ok := snap.byKey[suppressionKey(account, rcpt)]; ok {
		v := snap.list[i]
		return &v, nil
	}
	return nil, nil
}

// List implements Suppressions.
func (s *SuppressionFile) List(ctx context.Context, account string) ([]Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap, err := s.current()
	if err != nil {
		return nil, err
	}
	var out []Suppression
	for _, v := range snap.list {
		if account == "" || v.Account == account {
			out = append(out, v)
		}
	}
	sortSuppressions(out)
	return out, nil
}

// Add implements Suppressions. A zero Created is set to now. ctx bounds
// the wait for the file lock.
func (s *SuppressionFile) Add(ctx context.Context, v Suppression) error {
	if v.Created.IsZero() {
		v.Created = s.now()
	}
	v.Created = v.Created.UTC()
	if err := checkSuppression(&v); err != nil {
		return fmt.Errorf("relay: suppression: %w", err)
	}
	k := suppressionKey(v.Account, v.Recipient)
	err := s.update(ctx, func(l []Suppression) []Suppression {
		l = slices.DeleteFunc(l, func(o Suppression) bool { return suppressionKey(o.Account, o.Recipient) == k })
		return append(l, v)
	})
	if err != nil {
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "relay: suppression added", slog.String("account", v.Account),
		slog.String("rcpt", v.Recipient), slog.String("source", string(v.Source)))
	return nil
}

// Remove implements Suppressions. ctx bounds the wait for the file lock.
func (s *SuppressionFile) Remove(ctx context.Context, account, rcpt string) error {
	k := suppressionKey(account, rcpt)
	err := s.update(ctx, func(l []Suppression) []Suppression {
		return slices.DeleteFunc(l, func(o Suppression) bool { return suppressionKey(o.Account, o.Recipient) == k })
	})
	if err != nil {
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "relay: suppression removed", slog.String("account", account), slog.String("rcpt", rcpt))
	return nil
}

// update changes the list with change, holding the locks, and takes the
// version it wrote as the current one.
func (s *SuppressionFile) update(ctx context.Context, change func([]Suppression) []Suppression) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("relay: waiting to write the suppression file: %w", context.Cause(ctx))
	}
	select {
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("relay: waiting to write the suppression file: %w", context.Cause(ctx))
	}
	defer func() { <-s.writing }()
	s.mu.Lock()
	closed := s.cur == nil
	s.mu.Unlock()
	if closed {
		return errSuppressionFileClosed
	}
	unlock, err := lockFile(ctx, s.lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	// Read afresh under the lock: the change of another writer a moment
	// ago is kept.
	snap, err := s.load()
	if err != nil {
		return err
	}
	snap.f.Close()
	l := change(slices.Clone(snap.list))
	sortSuppressions(l)
	if err := s.write(l); err != nil {
		return fmt.Errorf("relay: writing the suppression file: %w", err)
	}
	next, err := s.load()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		next.f.Close()
		return errSuppressionFileClosed
	}
	s.cur.f.Close()
	s.cur = next
	return nil
}

// write replaces the file with l.
func (s *SuppressionFile) write(l []Suppression) error {
	if l == nil {
		l = []Suppression{}
	}
	text, err := json.MarshalIndent(suppressionFileData{Version: suppressionFileVersion, Suppressions: l}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, append(text, '\n'))
}

// Close releases the file. Every method fails after it.
func (s *SuppressionFile) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	err := s.cur.f.Close()
	s.cur = nil
	return err
}

// String names the file.
func (s *SuppressionFile) String() string { return "relay.SuppressionFile(" + s.path + ")" }
