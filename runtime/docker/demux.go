package docker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"aima/runtime"
)

// demux reads a log stream as the engine sends it (with timestamps on when
// times is set: they are taken off each line into its Time) and
// calls emit for every line in arrival order. Non-TTY streams are multiplexed
// (8-byte frame headers naming stdout or stderr, one frame per log message);
// TTY streams are raw bytes and are all reported as stdout. A line may span
// several frames of its stream (long lines are split by the engine); a final
// line without "\n" is emitted at the end. An error from emit stops the read
// and is returned.
func demux(r io.Reader, tty, times bool, emit func(runtime.LogLine) error) error {
	var seq int
	out := &lineWriter{stream: "stdout", emit: emit, seq: &seq, framed: !tty, times: times}
	if tty {
		_, err := io.Copy(out, r)
		return firstErr(err, out.flush())
	}
	errw := &lineWriter{stream: "stderr", emit: emit, seq: &seq, framed: true, times: times}
	err := readFrames(r, out, errw)
	// Flush partial lines in the order they started.
	first, second := out, errw
	if errw.pending && (!out.pending || errw.started < out.started) {
		first, second = errw, out
	}
	return firstErr(err, first.flush(), second.flush())
}

// Stream bytes of the engine's multiplexed format.
const (
	streamStdin  = 0 // reported as stdout, as the engine's own client does
	streamStdout = 1
	streamStderr = 2
	streamSystem = 3 // an error of the engine itself; the payload says what
)

// readFrames splits a multiplexed stream into frames and writes each
// payload to out or errw. A frame that fits the read buffer is handed over
// in place (no copy); the stream may end at any frame boundary, and a frame
// cut short by the end of the stream is dropped, as by the engine's own
// client. Written by hand instead of stdcopy.StdCopy, which moves the rest
// of its buffer to the front after every frame: with ~100-byte log lines it
// spent more time in that copy than in everything else the demultiplexer
// does.
func readFrames(r io.Reader, out, errw io.Writer) error {
	src := &lastErrReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	// ended tells a clean end of the stream (io.EOF from the engine,
	// possibly inside a frame) from a broken one (a cut connection reads as
	// io.ErrUnexpectedEOF from the HTTP body, and is returned).
	ended := func(err error) error {
		if errors.Is(src.err, io.EOF) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil
		}
		return err
	}
	var hdr [8]byte
	var big []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return ended(err)
		}
		size := int(binary.BigEndian.Uint32(hdr[4:]))
		var p []byte
		var err error
		if size <= br.Size() {
			p, err = br.Peek(size)
		} else {
			if cap(big) < size {
				big = make([]byte, size)
			}
			p = big[:size]
			_, err = io.ReadFull(br, p)
		}
		if err != nil {
			return ended(err)
		}
		switch hdr[0] {
		case streamStdin, streamStdout:
			_, err = out.Write(p)
		case streamStderr:
			_, err = errw.Write(p)
		case streamSystem:
			return fmt.Errorf("error from the container engine: %s", p)
		default:
			return fmt.Errorf("unrecognized stream %d in the log stream", hdr[0])
		}
		if err != nil {
			return err
		}
		if size <= br.Size() {
			_, _ = br.Discard(size)
		}
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lineWriter splits one stream into lines. In framed mode every Write is one
// log message that starts with the engine's timestamp; in raw (TTY) mode a
// timestamp is looked for at the start of each line.
type lineWriter struct {
	stream  string
	emit    func(runtime.LogLine) error
	framed  bool
	times   bool // lines start with the engine's timestamp
	seq     *int // shared arrival counter, to order partial-line flushes
	buf     []byte
	pending bool      // buf holds the start of an unfinished line
	started int       // seq value when the pending line began
	when    time.Time // timestamp of the pending line's first fragment
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	var frameTS time.Time
	if w.framed && w.times {
		frameTS, p = splitTimestamp(p)
	}
	for len(p) > 0 {
		if !w.pending {
			w.pending, w.started = true, *w.seq
			*w.seq++
			if w.framed || !w.times {
				w.when = frameTS
			} else if ts, rest := splitTimestamp(p); !ts.IsZero() {
				w.when, p = ts, rest // else keep the time of the chunk's first line
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			break
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush emits the buffered line, if any, without its trailing "\r".
func (w *lineWriter) flush() error {
	if !w.pending {
		return nil
	}
	text := string(bytes.TrimSuffix(w.buf, []byte("\r")))
	w.buf, w.pending = w.buf[:0], false
	return w.emit(runtime.LogLine{Stream: w.stream, Time: w.when, Text: text})
}

// splitTimestamp strips the engine's RFC 3339 timestamp and the space after
// it from the start of p. Without a parsable timestamp p is returned whole.
func splitTimestamp(p []byte) (time.Time, []byte) {
	i := bytes.IndexByte(p, ' ')
	if i < len("2006-01-02T15:04:05Z") || i > len(time.RFC3339Nano)+6 {
		return time.Time{}, p
	}
	t, err := time.Parse(time.RFC3339Nano, string(p[:i]))
	if err != nil {
		return time.Time{}, p
	}
	return t, p[i+1:]
}

// lastErrReader remembers the last error its reader returned.
type lastErrReader struct {
	r   io.Reader
	err error
}

func (l *lastErrReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil {
		l.err = err
	}
	return n, err
}
