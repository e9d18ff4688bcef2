// Package modroot finds the module's root directory (the nearest go.mod
// up from the working directory), for the tools and test harnesses that
// read or build the repository's own files.
package modroot

import (
	"errors"
	"os"
	"path/filepath"
)

// Find returns the nearest directory up from the working one that holds
// a go.mod.
func Find() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
