//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package state

import (
	"errors"
	"os"
	"syscall"

	"aima/errs"
)

// lockDir takes a non-blocking exclusive flock on lockPath so that a second
// aima process on the same store (named by what, for the message) fails
// immediately with errs.Unavailable. The lock dies with the process, so a
// crash never leaves a stale lock behind. The returned func releases it.
func lockDir(lockPath, what string) (unlock func() error, err error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "state store %s: open lock file", what)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errs.New(errs.Unavailable, "state store %s is locked by another aima process", what)
		}
		return nil, errs.Wrap(errs.Unavailable, err, "state store %s: lock", what)
	}
	return f.Close, nil // closing the descriptor releases the flock
}
