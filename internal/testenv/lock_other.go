//go:build !unix

package testenv

// lockFile is a no-op where flock is missing: concurrent builds then race,
// which is harmless apart from a dangling image.
func lockFile(string) (func(), error) { return func() {}, nil }
