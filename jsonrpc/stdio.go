package jsonrpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"aima/tools"
)

// Serve speaks JSON-RPC over a byte stream: one JSON value per line in r,
// one per line on w (newline-delimited JSON, as `aima rpc` does on stdio).
//
// Requests run concurrently, so a long service.start does not hold up the
// requests after it; writes are serialized, one whole line at a time, and a
// call's notifications always precede its response. A line that is not
// JSON is answered with -32700 and the connection stays usable; so does a
// line longer than Options.MaxLineBytes (-32600, the line is discarded).
//
// Serve returns nil when r reaches EOF, after every in-flight call has
// finished and its response was written. When ctx ends, in-flight calls are
// canceled, their responses (-32800) are still written, and Serve returns
// ctx's error. When w fails, Serve cancels the calls and returns the write
// error. Serve never closes r or w; if it returns while a Read on r blocks,
// that Read's goroutine exits once the Read returns.
func Serve(ctx context.Context, r io.Reader, w io.Writer, caller tools.Caller, opts Options) error {
	d := newDispatcher(caller, opts)
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &lineWriter{w: w, onError: cancel}

	done := make(chan struct{})
	defer close(done)
	lines := make(chan line)
	readErr := make(chan error, 1)
	go readLines(r, opts.maxLine(), lines, readErr, done)

	// sem bounds the messages being handled (and so the goroutines);
	// slots bounds the calls running, batch elements included.
	sem := make(chan struct{}, opts.maxInFlight())
	slots := make(chan struct{}, opts.maxInFlight())
	var wg sync.WaitGroup
	var err error
loop:
	for {
		select {
		case <-callCtx.Done():
			break loop
		case l, ok := <-lines:
			if !ok {
				err = <-readErr
				break loop
			}
			if l.tooLong {
				out.write(errorResponse(nil, protocolError(CodeInvalidRequest, "invalid request: line exceeds %d bytes; it was discarded", opts.maxLine())))
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-callCtx.Done():
				break loop
			}
			wg.Go(func() {
				defer func() { <-sem }()
				if reply := d.run(callCtx, d.parse(l.data), out.write, slots); reply != nil {
					out.write(reply)
				}
			})
		}
	}
	wg.Wait()
	if werr := out.failed(); werr != nil {
		return werr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// line is one input line without its line ending.
type line struct {
	data    []byte
	tooLong bool // the line was longer than the cap and was discarded
}

// readLines sends r's non-blank lines until r ends or done is closed, then
// reports the read error (nil at EOF) and closes lines.
func readLines(r io.Reader, max int, lines chan<- line, readErr chan<- error, done <-chan struct{}) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		l, err := readLine(br, max)
		if l.tooLong || len(bytes.TrimSpace(l.data)) > 0 {
			select {
			case lines <- l:
			case <-done:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			readErr <- err
			close(lines)
			return
		}
	}
}

// readLine reads up to the next '\n' (or EOF), keeping at most max bytes
// in memory: the rest of a longer line is read and dropped.
func readLine(br *bufio.Reader, max int) (line, error) {
	var l line
	for {
		frag, err := br.ReadSlice('\n')
		if !l.tooLong {
			if len(l.data)+len(frag) > max+2 { // +2: room for "\r\n"
				l.tooLong, l.data = true, nil
			} else {
				l.data = append(l.data, frag...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		l.data = bytes.TrimRight(l.data, "\r\n")
		if len(l.data) > max {
			l.tooLong, l.data = true, nil
		}
		return l, err
	}
}

// lineWriter serializes whole lines onto w; after the first write error it
// drops everything and reports the error once through onError.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	err     error
	onError func()
}

func (lw *lineWriter) write(msg []byte) {
	buf := make([]byte, len(msg)+1)
	copy(buf, msg)
	buf[len(msg)] = '\n'
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return
	}
	if _, err := lw.w.Write(buf); err != nil {
		lw.err = err
		lw.onError()
	}
}

func (lw *lineWriter) failed() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.err
}
