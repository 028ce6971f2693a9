//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos)

package relay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockFile takes the lock by creating the file at path with O_EXCL, on
// systems without flock(2), and returns the function that removes it. A
// process that dies holding it leaves it behind: the error on waiting says
// which file to remove.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	delay := time.Millisecond
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("relay: lock file: %w", err)
		}
		if err := sleepCtx(ctx, delay); err != nil {
			return nil, fmt.Errorf("relay: waiting for the lock %s (remove it if no process is writing the key file): %w", path, err)
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// syncDir syncs a directory where the system can; where it cannot
// (Windows), a rename is as durable as the system makes it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // not supported on every system
	return nil
}

// sleepCtx waits for d or the end of ctx, whose cause it returns.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
