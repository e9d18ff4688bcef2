package docker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"
	"time"

	"aima/runtime"
)

// frame builds one multiplexed log frame: stream byte, three zero bytes,
// big-endian payload length, payload.
func frame(stream byte, payload string) []byte {
	h := make([]byte, 8, 8+len(payload))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

const (
	ts1 = "2026-11-26T10:00:00.000000001Z"
	ts2 = "2026-11-26T10:00:01.5Z"
	ts3 = "2026-11-26T10:00:02.123456789Z"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func collect(t *testing.T, stream []byte, tty bool) []runtime.LogLine {
	t.Helper()
	var got []runtime.LogLine
	err := demux(bytes.NewReader(stream), tty, true, func(l runtime.LogLine) error {
		got = append(got, l)
		return nil
	})
	if err != nil {
		t.Fatalf("demux: %v", err)
	}
	return got
}

func TestDemux(t *testing.T) {
	t.Parallel()
	var zero time.Time
	tests := []struct {
		name   string
		tty    bool
		stream [][]byte
		want   []runtime.LogLine
	}{{
		name: "interleaving preserved",
		stream: [][]byte{
			frame(1, ts1+" out one\n"), frame(2, ts2+" err one\n"), frame(1, ts3+" out two\n"), frame(2, ts3+" err two\n"),
		},
		want: []runtime.LogLine{
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "out one"},
			{Stream: "stderr", Time: mustTime(t, ts2), Text: "err one"},
			{Stream: "stdout", Time: mustTime(t, ts3), Text: "out two"},
			{Stream: "stderr", Time: mustTime(t, ts3), Text: "err two"},
		},
	}, {
		name:   "line split across frames keeps the first fragment's time",
		stream: [][]byte{frame(1, ts1+" hel"), frame(2, ts2+" boom\n"), frame(1, ts3+" lo\n")},
		want: []runtime.LogLine{
			{Stream: "stderr", Time: mustTime(t, ts2), Text: "boom"},
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "hello"},
		},
	}, {
		name:   "several lines in one frame",
		stream: [][]byte{frame(1, ts1+" a\nb\n\nc\n")},
		want: []runtime.LogLine{
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "a"},
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "b"},
			{Stream: "stdout", Time: mustTime(t, ts1), Text: ""},
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "c"},
		},
	}, {
		name:   "partial last lines flushed in start order",
		stream: [][]byte{frame(2, ts1+" err tail"), frame(1, ts2+" out tail")},
		want: []runtime.LogLine{
			{Stream: "stderr", Time: mustTime(t, ts1), Text: "err tail"},
			{Stream: "stdout", Time: mustTime(t, ts2), Text: "out tail"},
		},
	}, {
		name:   "CRLF",
		stream: [][]byte{frame(1, ts1+" windows\r\n"), frame(2, ts2+" bare\r\r\n")},
		want: []runtime.LogLine{
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "windows"},
			{Stream: "stderr", Time: mustTime(t, ts2), Text: "bare\r"},
		},
	}, {
		name:   "no timestamp",
		stream: [][]byte{frame(1, "plain text here\n"), frame(1, "2026-13-99T00:00:00Z not a time\n")},
		want: []runtime.LogLine{
			{Stream: "stdout", Time: zero, Text: "plain text here"},
			{Stream: "stdout", Time: zero, Text: "2026-13-99T00:00:00Z not a time"},
		},
	}, {
		name:   "tty raw stream",
		tty:    true,
		stream: [][]byte{[]byte(ts1 + " first\r\nsecond\r\n" + ts2 + " th"), []byte("ird\r\n" + ts3 + " last")},
		want: []runtime.LogLine{
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "first"},
			{Stream: "stdout", Time: mustTime(t, ts1), Text: "second"},
			{Stream: "stdout", Time: mustTime(t, ts2), Text: "third"},
			{Stream: "stdout", Time: mustTime(t, ts3), Text: "last"},
		},
	}, {
		name: "empty stream",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := collect(t, bytes.Join(tc.stream, nil), tc.tty)
			if !slices.EqualFunc(got, tc.want, func(a, b runtime.LogLine) bool {
				return a.Stream == b.Stream && a.Text == b.Text && a.Time.Equal(b.Time)
			}) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDemuxFrameSplitAcrossReads(t *testing.T) {
	t.Parallel()
	// One byte per Read: frame headers and payloads arrive in pieces.
	stream := append(frame(1, ts1+" slow\n"), frame(2, ts2+" reader\n")...)
	var got []string
	err := demux(&oneByteReader{b: stream}, false, true, func(l runtime.LogLine) error {
		got = append(got, l.Stream+":"+l.Text)
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"stdout:slow", "stderr:reader"}) {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestDemuxEmitErrorStops(t *testing.T) {
	t.Parallel()
	stop := errors.New("consumer gone")
	n := 0
	err := demux(bytes.NewReader(bytes.Repeat(frame(1, ts1+" x\n"), 5)), false, true, func(runtime.LogLine) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err=%v after %d lines, want %v after 1", err, n, stop)
	}
}

func TestDemuxSystemError(t *testing.T) {
	t.Parallel()
	err := demux(bytes.NewReader(frame(3, "daemon broke")), false, true, func(runtime.LogLine) error { return nil })
	if err == nil {
		t.Fatal("want the engine's in-stream error")
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

func TestDemuxWithoutTimes(t *testing.T) {
	t.Parallel()
	stream := append(frame(1, ts1+" looks like a time\n"), frame(2, "plain\n")...)
	var got []runtime.LogLine
	if err := demux(bytes.NewReader(stream), false, false, func(l runtime.LogLine) error {
		got = append(got, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"stdout:" + ts1 + " looks like a time", "stderr:plain"}
	if len(got) != 2 || got[0].Stream+":"+got[0].Text != want[0] || got[1].Stream+":"+got[1].Text != want[1] || !got[0].Time.IsZero() {
		t.Fatalf("got %q, want %q without times", got, want)
	}
}

// A stream that breaks (the connection to the engine was cut) is an error,
// also in the middle of a frame; one that ends is not.
func TestDemuxBrokenStream(t *testing.T) {
	t.Parallel()
	whole := append(frame(1, ts1+" one\n"), frame(1, ts2+" two\n")...)
	for _, cut := range []int{len(whole), len(whole) - 3, 4} {
		r := io.MultiReader(bytes.NewReader(whole[:cut]), iotest.ErrReader(io.ErrUnexpectedEOF))
		if err := demux(r, false, true, func(runtime.LogLine) error { return nil }); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("stream cut after %d bytes: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
	if err := demux(bytes.NewReader(whole[:len(whole)-3]), false, true, func(runtime.LogLine) error { return nil }); err != nil {
		t.Errorf("stream ending inside a frame: %v, want a clean end", err)
	}
}
