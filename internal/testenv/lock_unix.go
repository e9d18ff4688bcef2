//go:build unix

package testenv

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path (created if missing),
// waiting for other processes to release it, and returns the unlock func.
// Image builds hold it so that concurrent test processes build an image once
// instead of racing (and leaving the loser's image dangling). The holder's
// work is bounded by buildTimeout, so the wait is bounded too.
func lockFile(path string) (func(), error) { return flockFile(path, syscall.LOCK_EX) }

// tryLockFile is lockFile without the wait: ok is false when another
// holder has the lock (another process, or another open of the file in this
// one).
func tryLockFile(path string) (unlock func(), ok bool, err error) {
	unlock, err = flockFile(path, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, false, nil
	}
	return unlock, err == nil, err
}

func flockFile(path string, how int) (func(), error) {
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
