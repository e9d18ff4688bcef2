package docker

import (
	"context"
	"syscall"
	"time"
	"testing"

	"aima/runtime"
)

func BenchmarkTmpLogs(b *testing.B) {
	d, err := New()
	if err != nil {
		b.Fatal(err)
	}
	var r0, r1 syscall.Rusage
	syscall.Getrusage(0, &r0)
	defer func() {
		syscall.Getrusage(0, &r1)
		cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano())
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	}()
	for b.Loop() {
		lines, errc := d.Logs(context.Background(), "4fe612f065b0eabf530c9f88ada851de407ffe4a86f7b5ef631c8b9c60b27746", runtime.LogOptions{Tail: -1})
		n := 0
		for range lines {
			n++
		}
		if err := <-errc; err != nil || n != 200000 {
			b.Fatal(n, err)
		}
	}
}
