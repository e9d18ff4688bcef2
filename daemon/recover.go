package daemon

import "context"

// Recover reconciles the store with Docker at start-up (see
// services.Manager.Reconcile).
func (d *Daemon) Recover(ctx context.Context) error {
	return d.manager.Reconcile(ctx)
}
