package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrs "go.etcd.io/bbolt/errors"
)

// The health of a bbolt store file, found out without writing to it. bbolt
// trusts its file: opened on a truncated or corrupt one it panics (e.g.
// "invalid freelist page") or faults on memory past the end of the file,
// and opened read-write it may write to it. So the daemon inspects the file
// first (InspectBolt) and opens it for writing only when it is sound;
// `aima store check` shows the same report.

// File statuses of a FileReport.
const (
	FileOK        = "ok"        // sound (records that are not JSON are listed in Damaged)
	FileMissing   = "missing"   // no such file
	FileEmpty     = "empty"     // 0 bytes: whatever it held is gone
	FileTruncated = "truncated" // shorter than its own header says
	FileCorrupt   = "corrupt"   // headers or pages are damaged
	FileLocked    = "locked"    // another process holds it open for writing
)

// FileReport is what InspectBolt found out about a store file.
type FileReport struct {
	Path      string    `json:"path"`
	Status    string    `json:"status" jsonschema:"ok, missing, empty, truncated, corrupt or locked"`
	Problem   string    `json:"problem,omitempty" jsonschema:"what is wrong, in words"`
	SizeBytes int64     `json:"size_bytes"`
	Modified  time.Time `json:"modified,omitzero"`
	// Records counts the records by the first segment of their key
	// (services, models, events, meta).
	Records map[string]int `json:"records,omitempty"`
	// Damaged lists records that are stored but cannot be read.
	Damaged []DamagedKey `json:"damaged,omitempty"`
}

// DamagedKey is a stored value that is not what aima writes (an 8-byte
// revision and a JSON object), found by InspectBolt.
type DamagedKey struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// OK reports whether the file is sound.
func (r FileReport) OK() bool { return r.Status == FileOK }

// bbolt's on-disk header (go.etcd.io/bbolt/internal/common: page and meta),
// little-endian on every platform aima runs on. Pages 0 and 1 are the two
// meta pages; the one with the higher transaction id that validates wins.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	boltPageHeader  = 16 // id u64, flags u16, count u16, overflow u32
	boltMetaSumSpan = 56 // meta bytes covered by the checksum
	boltMetaFlag    = 0x04
)

// boltMeta is the part of a meta page InspectBolt needs.
type boltMeta struct {
	pageSize uint32
	pgid     uint64 // high water mark: pages [0, pgid) make the file
	txid     uint64
}

// parseBoltMeta validates one meta page (buf holds at least its first 80
// bytes) as bbolt does: flags, magic, version and checksum.
func parseBoltMeta(buf []byte) (boltMeta, bool) {
	if len(buf) < boltPageHeader+boltMetaSumSpan+8 {
		return boltMeta{}, false
	}
	le := binary.LittleEndian
	meta := buf[boltPageHeader:]
	if le.Uint16(buf[8:])&boltMetaFlag == 0 || le.Uint32(meta[0:]) != boltMagic || le.Uint32(meta[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	_, _ = h.Write(meta[:boltMetaSumSpan])
	if h.Sum64() != le.Uint64(meta[boltMetaSumSpan:]) {
		return boltMeta{}, false
	}
	m := boltMeta{pageSize: le.Uint32(meta[8:]), pgid: le.Uint64(meta[40:]), txid: le.Uint64(meta[48:])}
	if m.pageSize < 512 || m.pageSize > 1<<24 {
		return boltMeta{}, false
	}
	return m, true
}

// readBoltMeta returns the meta page bbolt would use: meta 0 at offset 0,
// meta 1 one page further (the page size is tried from 1 KiB up, as bbolt
// does when meta 0 is unreadable).
func readBoltMeta(f *os.File) (boltMeta, bool) {
	buf := make([]byte, 4096)
	read := func(off int64) (boltMeta, bool) {
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return boltMeta{}, false
		}
		return parseBoltMeta(buf[:n])
	}
	m0, ok0 := read(0)
	var m1 boltMeta
	var ok1 bool
	if ok0 {
		m1, ok1 = read(int64(m0.pageSize))
	} else {
		for size := int64(1024); size <= 1<<24 && !ok1; size *= 2 {
			if m1, ok1 = read(size); ok1 && int64(m1.pageSize) != size {
				ok1 = false
			}
		}
	}
	switch {
	case ok0 && ok1 && m1.txid > m0.txid:
		return m1, true
	case ok0:
		return m0, true
	}
	return m1, ok1
}

// InspectBolt reports on the bbolt store file at path without writing to
// it: present and non-empty, headers valid, as long as its header says,
// every page reachable and consistent (bbolt's own check) and every record
// aima's format. A panic or memory fault inside bbolt while reading a bad
// file becomes a "corrupt" report, never a crash. A file another process
// holds open for writing is reported "locked" after boltLockTimeout.
func InspectBolt(path string) FileReport {
	r := FileReport{Path: path}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.Status, r.Problem = FileMissing, "the file does not exist"
		return r
	case err != nil:
		r.Status, r.Problem = FileCorrupt, err.Error()
		return r
	case !st.Mode().IsRegular():
		r.Status, r.Problem = FileCorrupt, "not a regular file"
		return r
	}
	r.SizeBytes, r.Modified = st.Size(), st.ModTime().UTC()
	if st.Size() == 0 {
		r.Status, r.Problem = FileEmpty, "the file is empty (0 bytes): every record it held is gone"
		return r
	}
	f, err := os.Open(path)
	if err != nil {
		r.Status, r.Problem = FileCorrupt, err.Error()
		return r
	}
	meta, ok := readBoltMeta(f)
	_ = f.Close()
	if !ok {
		r.Status, r.Problem = FileCorrupt, "neither header page is valid: not a bbolt database, or its first pages are damaged"
		return r
	}
	if want := int64(meta.pgid) * int64(meta.pageSize); st.Size() < want {
		r.Status = FileTruncated
		r.Problem = fmt.Sprintf("the file has %d bytes, but its header says it holds %d (%d pages of %d bytes): it was cut short",
			st.Size(), want, meta.pgid, meta.pageSize)
		return r
	}
	walkBolt(path, &r)
	return r
}

// walkBolt opens the file read-only and reads every record, then runs
// bbolt's consistency check. Panics and memory faults are caught: this
// goroutine turns faults into panics, and the freelist is loaded here, at
// open, rather than in the checker's goroutine; the walk touches every page
// the checker will, so a bad page pointer faults here first.
func walkBolt(path string, r *FileReport) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var db *bolt.DB
	defer func() {
		if p := recover(); p != nil {
			r.Status, r.Problem = FileCorrupt, fmt.Sprintf("reading the file failed: %v", p)
		}
		if db != nil {
			_ = db.Close()
		}
	}()
	var err error
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: boltLockTimeout})
	if errors.Is(err, bolterrs.ErrTimeout) {
		r.Status, r.Problem = FileLocked, "another aima process holds it open"
		return
	}
	if err != nil {
		r.Status, r.Problem = FileCorrupt, err.Error()
		return
	}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if b == nil {
			return errors.New("it has no aima bucket: not an aima store")
		}
		r.Records = map[string]int{}
		err := b.ForEach(func(k, v []byte) error {
			group, _, _ := strings.Cut(string(k), "/")
			r.Records[group]++
			if why := recordProblem(v); why != "" {
				r.Damaged = append(r.Damaged, DamagedKey{Key: string(k), Error: why})
			}
			return nil
		})
		if err != nil {
			return err
		}
		var problems []string
		for err := range tx.Check() {
			if len(problems) < 5 {
				problems = append(problems, err.Error())
			}
		}
		if len(problems) > 0 {
			return errors.New("bbolt's consistency check failed: " + strings.Join(problems, "; "))
		}
		return nil
	})
	if err != nil {
		r.Status, r.Problem = FileCorrupt, err.Error()
		return
	}
	r.Status = FileOK
}

// recordProblem says why a stored value is not aima's format (an 8-byte
// revision, then a JSON object), or "".
func recordProblem(v []byte) string {
	if len(v) < 8 {
		return fmt.Sprintf("%d bytes, shorter than the revision header", len(v))
	}
	return valueProblem(v[8:])
}
