//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package state

// lockDir is a no-op where flock is unavailable: there, keeping a single
// aima process per gokv data dir is the operator's job.
func lockDir(lockPath, what string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
