package models

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"aima/errs"
)

// Every file aima reads from a model path goes through StatRegular,
// OpenRegular or ReadMetadata. Model paths come from clients, and a path can
// name anything: opening a FIFO blocks until a writer appears (pinning an OS
// thread for good; enough of them end the process), reading /dev/zero never
// ends, and a device is not a model. These helpers accept only regular files
// (after resolving symlinks), never block in open, and cap what they read.
// Their errors are errs.InvalidArgument on the field "path" and name the path
// and what it really is, e.g. "model file /m/x.gguf is a FIFO (named pipe),
// not a regular file".

// DefaultMetadataLimit caps ReadMetadata when no limit is given. config.json
// is a few KiB; the largest model.safetensors.index.json files (hundreds of
// shards, about 100,000 tensors) stay under 10 MiB.
const DefaultMetadataLimit = 16 << 20

// configLimit caps config.json, which is a few KiB in practice.
const configLimit = 4 << 20

// StatRegular returns the file information of path, following symlinks, when
// it is a regular file. It opens nothing. Use it before handing a path to a
// library that opens the file itself (the file may still be swapped between
// the check and that open; OpenRegular closes that gap).
func StatRegular(path string) (fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, errs.Invalid("path", "model file %s: %v", path, unwrapPathErr(err))
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(path, st.Mode())
	}
	return st, nil
}

// OpenRegular opens path for reading when it is a regular file (after
// resolving symlinks). It stats the path first and refuses anything else,
// opens it so that the open itself cannot block (O_NONBLOCK, in case the
// file was swapped for a FIFO after the stat) and checks the opened file
// again. The caller closes the file. Reads of a regular file do not block on
// a writer; on a hung network filesystem they can still stall, which callers
// bound (see Registry).
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	if _, err := StatRegular(path); err != nil {
		return nil, nil, err
	}
	f, err := openNoBlock(path)
	if err != nil {
		return nil, nil, errs.Invalid("path", "model file %s is not readable: %v", path, unwrapPathErr(err))
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, errs.Invalid("path", "model file %s: %v", path, unwrapPathErr(err))
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, notRegular(path, st.Mode())
	}
	return f, st, nil
}

// ReadMetadata reads a small metadata file of a model (config.json,
// model.safetensors.index.json, tokenizer_config.json, ...) through
// OpenRegular, refusing files over limit bytes (DefaultMetadataLimit when
// limit <= 0) instead of reading them.
func ReadMetadata(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMetadataLimit
	}
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, tooLarge(path, limit)
	}
	// The size can change after the stat: read at most one byte more than
	// allowed to notice.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, errs.Invalid("path", "model file %s is not readable: %v", path, unwrapPathErr(err))
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(path, limit)
	}
	return b, nil
}

func tooLarge(path string, limit int64) error {
	return errs.Invalid("path", "model file %s is larger than %d MiB, the limit for metadata files", path, limit>>20)
}

// notRegular names what path is instead of a regular file; for a symlink it
// names the target too.
func notRegular(path string, mode fs.FileMode) error {
	shown := path
	if lst, err := os.Lstat(path); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
		if target, err := filepath.EvalSymlinks(path); err == nil {
			shown = fmt.Sprintf("%s (a symlink to %s)", path, target)
		}
	}
	return errs.Invalid("path", "model file %s is %s, not a regular file", shown, describeMode(mode))
}

// describeMode says what kind of file mode describes, with an article.
func describeMode(mode fs.FileMode) string {
	switch {
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "an irregular file"
}

// unwrapPathErr drops the path from an fs error, which the message
// already names.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
