package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"aima/errs"
	"aima/runtime"
)

// ImageExists reports whether ref is present locally; a missing image is
// (false, nil), not an error.
func (d *Docker) ImageExists(ctx context.Context, ref string) (bool, error) {
	release, err := d.slot(ctx, "inspect image "+ref)
	if err != nil {
		return false, err
	}
	defer release()
	_, err = d.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) && !engineGone(err) {
		return false, nil
	}
	if err != nil {
		return false, classify(err, "inspect image "+ref)
	}
	return true, nil
}

// PullImage pulls ref and calls opts.Progress (if not nil) for every message of
// the engine's pull stream, in order. The engine answers HTTP 200 and then
// reports many failures inside the stream; those are returned as errors too.
// An unknown image or tag is errs.NotFound; a registry that cannot be reached
// is errs.Unavailable.
func (d *Docker) PullImage(ctx context.Context, ref string, opts runtime.PullOptions) error {
	progress := opts.Progress
	resp, err := d.c.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return classifyPull(err, ref)
	}
	defer resp.Close()
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return streamEnd(ctx, err, "pull image "+ref)
		}
		if m.Error != nil {
			return classifyPull(m.Error, ref)
		}
		if progress == nil {
			continue
		}
		p := runtime.PullProgress{Layer: m.ID, Status: m.Status}
		if m.Progress != nil {
			p.Current, p.Total = m.Progress.Current, m.Progress.Total
		}
		progress(p)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	return nil
}

// classifyPull maps pull failures. The engine reports registry-side trouble
// as text (often with HTTP 500), so the text decides: "manifest unknown",
// "not found" or "repository does not exist" mean a missing image; dial and
// DNS failures mean an unreachable registry.
func classifyPull(err error, ref string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || engineGone(err) {
		return classify(err, "pull image "+ref)
	}
	de := daemonError{err}
	msg := strings.ToLower(de.Error())
	switch {
	case cerrdefs.IsNotFound(err), strings.Contains(msg, "not found"),
		strings.Contains(msg, "manifest unknown"), strings.Contains(msg, "repository does not exist"),
		strings.Contains(msg, "name unknown"):
		return errs.Wrap(errs.NotFound, de, "pull image %s: image not found", ref)
	case containsAny(msg, "connection refused", "no such host", "i/o timeout", "network is unreachable",
		"tls handshake timeout", "server misbehaving", "connection reset", "client.timeout exceeded", "eof"):
		return errs.Wrap(errs.Unavailable, de, "pull image %s: registry unreachable", ref)
	case cerrdefs.IsInvalidArgument(err), strings.Contains(msg, "invalid reference format"):
		return errs.Wrap(errs.InvalidArgument, de, "pull image %s", ref)
	}
	return classify(err, "pull image "+ref)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
