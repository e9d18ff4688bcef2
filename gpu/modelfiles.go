package gpu

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// maxMetaFile caps what the estimator reads of config.json and
// model.safetensors.index.json.
const maxMetaFile = 8 << 20

// readModelFile is the one way the estimator reads a small file inside a
// model directory: regular files only (a FIFO or device swapped in is
// refused, never opened for a blocking read), at most limit bytes.
func readModelFile(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes; more than the %d read for an estimate", path, st.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// regularSize is the size of a regular file (following symlinks, as the
// Hugging Face cache links snapshots to blobs), or false.
func regularSize(path string) (int64, bool) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return 0, false
	}
	return st.Size(), true
}
