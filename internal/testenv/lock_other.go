//go:build !unix

package testenv

// lockFile is a no-op where flock is missing: concurrent builds then race,
// which is harmless apart from a dangling image.
func lockFile(string) (func(), error) { return func() {}, nil }

// tryLockFile always succeeds where flock is missing: concurrent test
// processes may then share a port range.
func tryLockFile(string) (func(), bool, error) { return func() {}, true, nil }
