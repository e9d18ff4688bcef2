package gpu

import (
	"aima/models"
)

// maxMetaFile caps what the estimator reads of config.json and
// model.safetensors.index.json.
const maxMetaFile = models.DefaultMetadataLimit

// readModelFile is the one way the estimator reads a small file inside a
// model directory: models.ReadMetadata, which takes regular files only
// (a FIFO or device swapped in is refused, never opened for a blocking
// read) and caps the size.
func readModelFile(path string, limit int64) ([]byte, error) {
	return models.ReadMetadata(path, limit)
}

// regularSize is the size of a regular file (following symlinks, as the
// Hugging Face cache links snapshots to blobs), or false.
func regularSize(path string) (int64, bool) {
	st, err := models.StatRegular(path)
	if err != nil {
		return 0, false
	}
	return st.Size(), true
}
