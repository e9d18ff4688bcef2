package models

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"aima/errs"
)

// scanTimeout bounds one model scan (the walk and every model it inspects).
const scanTimeout = 2 * time.Minute

// scanDepth is how many directory levels below dir a scan looks.
const scanDepth = 4

// maxSkipped caps the notes a scan returns; the last note counts the rest.
const maxSkipped = 100

// Skipped is a path a scan looked at and did not register, with the reason.
type Skipped struct {
	Path   string `json:"path" jsonschema:"what was not registered"`
	Reason string `json:"reason" jsonschema:"why, e.g. a FIFO named .gguf or a config.json that is not valid JSON"`
}

// ScanResult is what a scan registered and what it skipped.
type ScanResult struct {
	Found   []Model
	Skipped []Skipped
}

// Scan registers every model found under dir (up to 4 levels deep): each
// directory with a config.json, and each .gguf file. Special files (FIFOs,
// devices, sockets) are never opened: they are skipped with a note, as are
// models that cannot be registered. The walk is bounded by ctx and
// scanTimeout; when the bound passes, what was registered so far stays
// registered and the error says the scan stopped.
func (r *Registry) Scan(ctx context.Context, dir string) (ScanResult, error) {
	if strings.TrimSpace(dir) == "" || strings.ContainsRune(dir, 0) {
		return ScanResult{}, errs.Invalid("dir", "dir %q is not a valid path", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ScanResult{}, errs.Invalid("dir", "dir %q is not a valid path", dir)
	}
	return onDisk(ctx, scanTimeout, "scanning "+abs, func(ctx context.Context) (ScanResult, error) {
		st, err := os.Stat(abs)
		if err != nil || !st.IsDir() {
			return ScanResult{}, errs.Invalid("dir", "%s is not a readable directory", abs)
		}
		sc := &scanner{r: r, root: abs}
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return sc.visit(ctx, p, d, err)
		})
		sc.res.Skipped = sc.skipped()
		return sc.res, err
	})
}

// scanner is the state of one Scan walk.
type scanner struct {
	r     *Registry
	root  string
	res   ScanResult
	notes []Skipped
	extra int // notes beyond maxSkipped
}

func (sc *scanner) skip(path, reason string) {
	if len(sc.notes) < maxSkipped {
		sc.notes = append(sc.notes, Skipped{Path: path, Reason: reason})
		return
	}
	sc.extra++
}

func (sc *scanner) skipped() []Skipped {
	out := sc.notes
	if sc.extra > 0 {
		out = append(out, Skipped{Path: sc.root, Reason: fmt.Sprintf("%d more paths skipped", sc.extra)})
	}
	if out == nil {
		out = []Skipped{}
	}
	return out
}

// add inspects and registers one candidate, noting why when it cannot.
func (sc *scanner) add(ctx context.Context, p string) {
	m, err := Inspect(ctx, p)
	if err == nil {
		m, err = sc.r.register(ctx, m, "")
	}
	if err != nil {
		sc.skip(p, err.Error())
		return
	}
	sc.res.Found = append(sc.res.Found, m)
}

// visit is the WalkDir callback: it looks only at directory entries (which
// never opens a file) and hands candidates to add.
func (sc *scanner) visit(ctx context.Context, p string, d fs.DirEntry, err error) error {
	if err != nil {
		sc.skip(p, "not readable: "+unwrapPathErr(err).Error())
		if d != nil && d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	}
	depth := strings.Count(strings.TrimPrefix(p, sc.root), string(filepath.Separator))
	if d.IsDir() {
		if depth > scanDepth || (strings.HasPrefix(d.Name(), ".") && p != sc.root) {
			return filepath.SkipDir
		}
		if _, err := os.Lstat(filepath.Join(p, "config.json")); err == nil {
			sc.add(ctx, p)
			return filepath.SkipDir
		}
		return nil
	}
	if !strings.EqualFold(filepath.Ext(p), ".gguf") {
		return nil
	}
	if t := d.Type(); !t.IsRegular() && t&fs.ModeSymlink == 0 {
		sc.skip(p, fmt.Sprintf("%s is %s, not a regular file", p, describeMode(t)))
		return nil
	}
	sc.add(ctx, p)
	return nil
}
