//go:build !unix

package models

import "os"

// openNoBlock opens path read-only. Outside Unix there are no FIFOs that
// block in open; StatRegular has refused everything but regular files.
func openNoBlock(path string) (*os.File, error) {
	return os.Open(path)
}
