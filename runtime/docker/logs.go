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

// Logs streams the container's output as lines on one channel, stdout and
// stderr interleaved in the order the engine sends them. Every line carries
// the engine's timestamp (the request asks for timestamps and strips them
// from Text), unless opts.NoTimes. Tail 0 asks for no history (useful with Follow); Tail < 0
// for all of it.
//
// The line channel is closed when the output ends: at once without Follow,
// when the container stops with Follow, or when ctx is done. The error
// channel then holds at most one error (a ctx error if ctx ended the stream)
// and is closed, so `for l := range lines {}; err := <-errc` is the idiom.
// The reader must drain lines or cancel ctx: lines are not dropped, so a
// stalled reader stalls the stream. An engine that goes away mid-stream
// ends it with errs.Unavailable, never as a clean end.
func (d *Docker) Logs(ctx context.Context, id string, opts runtime.LogOptions) (<-chan runtime.LogLine, <-chan error) {
	lines := make(chan runtime.LogLine, 512)
	errc := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if err != nil {
				errc <- err
			}
			close(errc)
			close(lines)
		}()
		err = d.streamLogs(ctx, id, opts, func(l runtime.LogLine) error {
			select {
			case lines <- l:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return lines, errc
}

func (d *Docker) streamLogs(ctx context.Context, id string, opts runtime.LogOptions, emit func(runtime.LogLine) error) error {
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
	if err := demux(&coalescingReader{r: rc}, tty, !opts.NoTimes, emit); err != nil {
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

// coalescingReader pauses briefly after a short read, so the next one
// takes what arrived meanwhile. The engine writes (and flushes) every log
// message on its own; read as they come, a fast log costs a system call, a
// poller wake-up and an HTTP chunk per ~100-byte line, more than all else
// the daemon does with the line. After a pause of readPause a read carries
// hundreds of lines at full speed, and a quiet log is read at most
// readPause late.
type coalescingReader struct {
	r io.Reader
}

const (
	readPause = time.Millisecond
	shortRead = 1 << 10
)

func (c *coalescingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == nil && n < shortRead && n < len(p) {
		time.Sleep(readPause)
	}
	return n, err
}
