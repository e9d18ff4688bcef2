package kubernetes

import (
	"context"

	"aima/runtime"
)

// ImageExists reports true: on a cluster the node the scheduler picks pulls
// the image when the Pod starts (Pulling/Pulled progress events, a pull
// failure fails StartContainer with the kubelet's message), so there is
// nothing to pull beforehand on the daemon's side.
func (k *Kube) ImageExists(ctx context.Context, ref string) (bool, error) { return true, nil }

// PullImage does nothing, for the same reason.
func (k *Kube) PullImage(ctx context.Context, ref string, opts runtime.PullOptions) error {
	return nil
}

// ReportsSteps: the scheduler's and kubelet's steps arrive as
// ActionProgress events while StartContainer waits.
func (k *Kube) ReportsSteps() bool { return true }
