package kubernetes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/errs"
	"aima/runtime"
)

// maxLine bounds one log line held in memory; the rest of a longer line is
// dropped (an engine printing a megabyte without a newline is not a log).
const maxLine = 256 << 10

// Logs streams the engine container's log from pods/log (the kubelet's
// file, stdout and stderr merged: every line comes as "stdout"). Before the
// container started there is no log: without Follow that is an empty log,
// with Follow the stream waits for the start. Lines are read and handed to
// each in the caller's goroutine, as Docker's are.
func (k *Kube) Logs(ctx context.Context, id string, opts runtime.LogOptions, each func(runtime.LogLine) error) error {
	if err := k.watch(ctx); err != nil {
		return err
	}
	started := func(p *corev1.Pod) bool {
		cs := engineStatus(p)
		return cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil)
	}
	p, err := k.pod(id)
	if err != nil {
		return classify(err, "logs of pod "+id)
	}
	if !started(p) {
		if !opts.Follow {
			return nil
		}
		err := k.waitPod(ctx, id, func(p *corev1.Pod) (bool, error) {
			switch {
			case p == nil:
				return true, errs.New(errs.NotFound, "logs of pod %s: the pod was deleted", id)
			case started(p):
				return true, nil
			case ended(p):
				return true, errNoLog
			}
			return false, nil
		})
		if errors.Is(err, errNoLog) {
			return nil // it ended without ever running: an empty log
		}
		if err != nil {
			return err
		}
	}
	lo := &corev1.PodLogOptions{Container: containerName, Follow: opts.Follow, Timestamps: !opts.NoTimes}
	if opts.Tail >= 0 {
		n := int64(opts.Tail)
		lo.TailLines = &n
	}
	if !opts.Since.IsZero() {
		lo.SinceTime = &metav1.Time{Time: opts.Since}
	}
	rc, err := k.podLog(ctx, id, lo)
	if err != nil {
		return classify(err, "logs of pod "+id)
	}
	defer rc.Close()
	if err := readLines(rc, !opts.NoTimes, opts.OnWait, each); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("logs of pod %s: %w", id, ctx.Err())
		}
		var ce callbackError
		if errors.As(err, &ce) {
			return ce.err
		}
		return errs.Wrap(errs.Unavailable, err, "kubernetes API unavailable: logs of pod %s ended", id)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("logs of pod %s: %w", id, err)
	}
	return nil
}

var errNoLog = errors.New("no log")

// callbackError carries each's error out of readLines unchanged.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// readLines splits the log stream into lines; with times, each starts with
// the kubelet's RFC 3339 timestamp and a space. onWait runs before a read
// that may wait for more output.
func readLines(r io.Reader, times bool, onWait func(), each func(runtime.LogLine) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		if onWait != nil && br.Buffered() == 0 {
			onWait()
		}
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long) < maxLine {
				long = append(long, chunk[:min(len(chunk), maxLine-len(long))]...)
			}
			continue
		}
		if len(chunk) > 0 || len(long) > 0 {
			line := chunk
			if len(long) > 0 {
				if len(long) < maxLine {
					long = append(long, chunk[:min(len(chunk), maxLine-len(long))]...)
				}
				line, long = long, nil
			}
			if cbErr := each(parseLine(line, times)); cbErr != nil {
				return callbackError{cbErr}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func parseLine(b []byte, times bool) runtime.LogLine {
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	l := runtime.LogLine{Stream: "stdout", Text: s}
	if !times {
		return l
	}
	if ts, rest, ok := strings.Cut(s, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Text = t, rest
		}
	} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		l.Time, l.Text = t, ""
	}
	return l
}
