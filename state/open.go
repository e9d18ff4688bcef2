package state

import (
	"os"
	"path/filepath"
	"strings"

	gokvfile "github.com/philippgille/gokv/file"

	"aima/errs"
)

// Backend names accepted by Open. They are configuration values (e.g. a
// --state flag), so they are part of aima's user-facing surface.
const (
	BackendBolt     = "bolt"      // default: embedded, durable, single file
	BackendMemory   = "memory"    // nothing persists; tests and demos
	BackendGokvFile = "gokv-file" // gokv's file store: one JSON file per key
)

// Backends lists the names Open accepts, default first, for help texts and
// validation messages.
func Backends() []string {
	return []string{BackendBolt, BackendMemory, BackendGokvFile}
}

// Open returns the Store named by kind ("" means bolt), keeping its files
// under dataDir: bolt uses <dataDir>/aima.db, gokv-file the directory
// <dataDir>/kv/. Both refuse, with errs.Unavailable, to open a data dir that
// another aima process holds. An unknown kind is errs.InvalidArgument.
func Open(kind, dataDir string) (Store, error) {
	switch kind {
	case "", BackendBolt:
		return OpenBolt(filepath.Join(dataDir, "aima.db"))
	case BackendMemory:
		return NewMemory(), nil
	case BackendGokvFile:
		return openGokvFile(dataDir)
	}
	return nil, errs.New(errs.InvalidArgument, "unknown state store %q (want one of %s)",
		kind, strings.Join(Backends(), ", "))
}

// openGokvFile opens gokv's file store under <dataDir>/kv/. Because the
// gokv adapter is only safe for one process per backing store, it first
// takes an exclusive lock on <dataDir>/kv.lock (where the OS supports it).
// The gokv file store writes without fsync and not atomically: it suits
// inspection and experiments, not crash-safe production use.
func openGokvFile(dataDir string) (Store, error) {
	dir := filepath.Join(dataDir, "kv")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "state store %s: create directory", dir)
	}
	unlock, err := lockDir(filepath.Join(dataDir, "kv.lock"), dir)
	if err != nil {
		return nil, err
	}
	kv, err := gokvfile.NewStore(gokvfile.Options{Directory: dir})
	if err != nil {
		_ = unlock()
		return nil, errs.Wrap(errs.Unavailable, err, "open state store %s", dir)
	}
	return &gokvStore{kv: kv, onClose: unlock}, nil
}
