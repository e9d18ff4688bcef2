//go:build unix

// Package filelock takes advisory locks on files (flock), across processes:
// the tests use them to build an image once and to hand out host ports no
// other test process holds.
package filelock

import (
	"errors"
	"os"
	"syscall"
)

// Lock takes an exclusive lock on path (created if missing), waiting for
// other holders to release it, and returns the unlock func.
func Lock(path string) (func(), error) { return flock(path, syscall.LOCK_EX) }

// TryLock is Lock without the wait: ok is false when another holder has the
// lock (another process, or another open of the file in this one).
func TryLock(path string) (unlock func(), ok bool, err error) {
	unlock, err = flock(path, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, false, nil
	}
	return unlock, err == nil, err
}

func flock(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
