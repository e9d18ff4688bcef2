package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/client"

	"aima/runtime"
)

// Logs implements runtime.Runtime. Every line carries the engine's
// timestamp (the request asks for timestamps and strips them from Text),
// unless opts.NoTimes. Tail 0 asks for no history (useful with Follow);
// Tail < 0 for all of it. An engine that goes away mid-stream ends it with
// errs.Unavailable, never as a clean end.
//
// The lines are read, split and handed to each in the caller's goroutine:
// one goroutine from Docker's socket to the consumer's output. Handed over
// a channel to another goroutine instead, a log of short lines cost a
// goroutine wake-up every few lines, which made the daemon's share of a
// 200,000-line read several times what reading the socket costs (see
// docs/performance.md).
func (d *Docker) Logs(ctx context.Context, id string, opts runtime.LogOptions, each func(runtime.LogLine) error) error {
	ins, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return classify(err, "logs of container "+id)
	}
	tty := ins.Container.Config != nil && ins.Container.Config.Tty
	lo := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: !opts.NoTimes, Follow: opts.Follow, Tail: "all"}
	if opts.Tail >= 0 {
		lo.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = unixSeconds(opts.Since)
	}
	rc, err := d.c.ContainerLogs(ctx, id, lo)
	if err != nil {
		return classify(err, "logs of container "+id)
	}
	defer rc.Close()
	var r io.Reader = rc
	if opts.OnWait != nil {
		r = &waitNotifier{r: rc, onWait: opts.OnWait}
	}
	if err := demux(r, tty, !opts.NoTimes, each); err != nil {
		return streamEnd(ctx, err, "logs of container "+id)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
	return nil
}

// unixSeconds formats t the way the engine's since/until parameters expect:
// seconds since the epoch with a nanosecond fraction.
func unixSeconds(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// waitNotifier calls onWait before each read from the engine's stream:
// the demultiplexer reads only once it has handed on every complete line
// it holds, so a read is where the stream may wait.
type waitNotifier struct {
	r      io.Reader
	onWait func()
}

func (w *waitNotifier) Read(p []byte) (int, error) {
	w.onWait()
	return w.r.Read(p)
}
