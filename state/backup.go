package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"aima/errs"
)

// backupInterval is how often an open bolt store looks whether it changed
// since its last backup, and writes a new one if it did.
var backupInterval = time.Hour

// BackupPath is where the store at path keeps its backup: path + ".bak".
func BackupPath(path string) string { return path + ".bak" }

// backups keeps a consistent copy of an open bolt store next to it. bbolt
// copies itself consistently inside a read transaction (tx.WriteTo) while
// writes go on; the copy is written to a temporary file, fsynced, checked
// with InspectBolt and only then renamed over the previous backup, so the
// backup is always a sound store.
type backups struct {
	s    *boltStore
	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	lastTx int       // transaction the last backup copied
	at     time.Time // when it was written
	err    error     // the last attempt's failure
}

// startBackups writes the on-open backup, then keeps one up to date every
// backupInterval until stop, which writes the last one.
func startBackups(s *boltStore) *backups {
	b := &backups{s: s, done: make(chan struct{}), lastTx: -1}
	b.run()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(backupInterval)
		defer t.Stop()
		for {
			select {
			case <-b.done:
				return
			case <-t.C:
				b.run()
			}
		}
	}()
	return b
}

// stop ends the loop and writes a last backup if the store changed, so
// after a clean shutdown the backup holds everything.
func (b *backups) stop() {
	select {
	case <-b.done:
		return
	default:
		close(b.done)
	}
	b.wg.Wait()
	b.run()
}

// run writes a backup if the store changed since the last one.
func (b *backups) run() {
	b.mu.Lock()
	defer b.mu.Unlock()
	tx, err := b.write(b.lastTx)
	b.err = err
	if err == nil && tx != b.lastTx {
		b.lastTx, b.at = tx, time.Now().UTC()
	}
}

// status returns when the last backup was written and the last failure.
func (b *backups) status() (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.at, b.err
}

// write copies the store to its backup path unless the store is still at
// transaction skipTx, and returns the transaction it copied.
func (b *backups) write(skipTx int) (int, error) {
	dst := BackupPath(b.s.path)
	var txid int
	_ = b.s.db.View(func(tx *bolt.Tx) error { txid = tx.ID(); return nil })
	if txid == skipTx {
		return txid, nil
	}
	tmp := dst + ".tmp"
	if err := writeSynced(tmp, func(w io.Writer) error {
		return b.s.db.View(func(tx *bolt.Tx) error {
			txid = tx.ID()
			_, err := tx.WriteTo(w)
			return err
		})
	}); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("write backup %s: %w", dst, err)
	}
	if rep := InspectBolt(tmp); !rep.OK() {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("backup copy %s failed its check (%s): %s", tmp, rep.Status, rep.Problem)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("write backup %s: %w", dst, err)
	}
	return txid, syncDir(filepath.Dir(dst))
}

// writeSynced creates path (mode 0600, truncating it), fills it with fill
// and fsyncs it.
func writeSynced(path string, fill func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory so a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// RestoreResult says what RestoreBolt did.
type RestoreResult struct {
	Restored   string         `json:"restored" jsonschema:"the store file now holding the backup's contents"`
	From       string         `json:"from" jsonschema:"the backup it was copied from"`
	BackupTime time.Time      `json:"backup_time" jsonschema:"when that backup was written"`
	MovedAside string         `json:"moved_aside,omitempty" jsonschema:"where the replaced store file was kept"`
	Records    map[string]int `json:"records,omitempty" jsonschema:"records restored, by kind"`
}

// RestoreBolt replaces the store file at path with its backup: the backup
// must be sound; the current file, if any, is kept beside it as
// path.damaged-<UTC time>. A sound current file is replaced only with
// force (the changes made since the backup would be lost), and never while
// a daemon holds it (errs.Conflict).
func RestoreBolt(path string, force bool) (RestoreResult, error) {
	bakPath := BackupPath(path)
	bak := InspectBolt(bakPath)
	if !bak.OK() {
		return RestoreResult{}, errs.New(errs.Unavailable, "cannot restore %s: its backup %s is %s: %s", path, bakPath, bak.Status, bak.Problem)
	}
	cur := InspectBolt(path)
	switch {
	case cur.Status == FileLocked:
		return RestoreResult{}, errs.New(errs.Conflict, "cannot restore %s: a running aima daemon holds it; stop the daemon first", path)
	case cur.OK() && !force:
		return RestoreResult{}, errs.New(errs.Conflict, "%s is sound; restoring the backup from %s would lose every change made since then (pass force to do it anyway)",
			path, bak.Modified.Format(time.RFC3339))
	}
	res := RestoreResult{Restored: path, From: bakPath, BackupTime: bak.Modified, Records: bak.Records}
	if cur.Status != FileMissing {
		unlock, err := lockDir(path, path)
		if err != nil {
			return RestoreResult{}, errs.New(errs.Conflict, "cannot restore %s: a running aima daemon holds it; stop the daemon first", path)
		}
		defer unlock()
		res.MovedAside = fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, res.MovedAside); err != nil {
			return RestoreResult{}, errs.Wrap(errs.Unavailable, err, "restore %s: move the current file aside", path)
		}
	}
	tmp := path + ".restore.tmp"
	err := writeSynced(tmp, func(w io.Writer) error {
		src, err := os.Open(bakPath)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return res, errs.Wrap(errs.Unavailable, err, "restore %s from %s", path, bakPath)
	}
	return res, syncDir(filepath.Dir(path))
}

// damagedStoreError is OpenBolt's refusal of a damaged store file: what is
// wrong, and what to do given the state of the backup.
func damagedStoreError(rep, bak FileReport) error {
	return errs.New(errs.Unavailable, "state store %s is damaged (%s): %s. %s", rep.Path, rep.Status, rep.Problem, recoveryAdvice(rep, bak))
}

// vanishedStoreError is OpenBolt's refusal to start empty when the store
// file is gone but its backup is not: starting would overwrite the backup
// with an empty store.
func vanishedStoreError(rep, bak FileReport) error {
	return errs.New(errs.Unavailable, "state store %s is missing, but its backup %s exists: the store was deleted or lost. %s",
		rep.Path, bak.Path, recoveryAdvice(rep, bak))
}

// recoveryAdvice tells the operator how to get a working store back, given
// the store file (rep) and its backup (bak).
func recoveryAdvice(rep, bak FileReport) string {
	dir := filepath.Dir(rep.Path)
	if bak.OK() {
		return fmt.Sprintf("Its backup %s from %s is sound (services: %d, models: %d). Restore it with `aima store restore --data-dir %s` "+
			"(a damaged file is kept as %s.damaged-<time>); records written after the backup are lost. `aima store check --data-dir %s` shows both files",
			bak.Path, bak.Modified.Format(time.RFC3339), bak.Records["services"], bak.Records["models"], dir, filepath.Base(rep.Path), dir)
	}
	var move []string
	if rep.Status != FileMissing {
		move = append(move, fmt.Sprintf("mv %s %s.damaged", rep.Path, rep.Path))
	}
	backup := bak.Path + " does not exist"
	if bak.Status != FileMissing {
		backup = fmt.Sprintf("%s is %s: %s", bak.Path, bak.Status, bak.Problem)
		move = append(move, fmt.Sprintf("mv %s %s.damaged", bak.Path, bak.Path))
	}
	return fmt.Sprintf("There is no sound backup (%s). To start with an empty store, move the damaged files aside (%s); "+
		"engine containers keep running, and `aima doctor` then lists them as containers of another store, which `aima service prune` removes only with force",
		backup, strings.Join(move, "; "))
}
