package docker

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"aima/runtime"
)

// benchStream is a multiplexed, timestamped log stream of n lines of about
// size bytes, as the engine sends `docker logs --timestamps`.
func benchStream(n, size int) []byte {
	var b bytes.Buffer
	t := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	pad := strings.Repeat("x", size)
	for i := 0; i < n; i++ {
		line := fmt.Sprintf("%s line %08d %s\n", t.Add(time.Duration(i)*time.Microsecond).Format(time.RFC3339Nano), i, pad[:size-15])
		b.Write(frame(1, line))
	}
	return b.Bytes()
}

// BenchmarkDemux measures the demultiplexer alone on a 200,000-line stream
// (per-line cost: frame parsing, timestamp parsing, line splitting).
func BenchmarkDemux(b *testing.B) {
	stream := benchStream(200000, 100)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := demux(bytes.NewReader(stream), false, true, func(runtime.LogLine) error { n++; return nil }); err != nil || n != 200000 {
			b.Fatalf("%d lines, %v", n, err)
		}
	}
}
