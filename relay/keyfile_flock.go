//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos

package relay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on the file at path, creating it,
// and returns the function that releases it. The lock is released when
// the process ends, however it ends, so a crash leaves no stale lock; the
// file stays, since removing it would let two writers lock two files.
//
// It waits in the kernel, which wakes it when the lock is released, rather
// than polling: a poller would lose the lock to a writer that releases it
// and takes it again at once. When ctx ends first, the waiting goroutine
// releases the lock as soon as it has it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("relay: lock file: %w", err)
	}
	fd := int(f.Fd())
	release := func() { f.Close() } // closing releases the lock
	err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return release, nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("relay: lock file %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() {
		for {
			err := syscall.Flock(fd, syscall.LOCK_EX)
			if !errors.Is(err, syscall.EINTR) {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("relay: lock file %s: %w", path, err)
		}
		return release, nil
	case <-ctx.Done():
		go func() {
			<-done
			f.Close()
		}()
		return nil, fmt.Errorf("relay: waiting for the lock %s: %w", path, context.Cause(ctx))
	}
}

// syncDir syncs a directory, so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
