package daemon

import (
	"context"
	"time"
)

// reportStore logs, loudly, what the operator must know about the state
// store once the daemon has reconciled: damaged records, containers labelled
// as aima's that this store did not create (the engines of a lost store, or
// another daemon's), a failed backup. doctor shows the same warnings.
func (d *Daemon) reportStore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	orphans, err := d.manager.Orphans(ctx)
	if err != nil {
		orphans = nil // Docker unreachable: the watcher says so
	}
	h, err := d.manager.StoreHealth(ctx, orphans)
	if err != nil {
		d.log.Error("state store", "err", err)
		return
	}
	for _, w := range h.Warnings {
		d.log.Error("state store: " + w)
	}
	if h.Info.BackupAt != nil {
		d.log.Info("state store backed up", "store", h.Info.Path, "backup", h.Info.Backup)
	}
}
