// Command testprog is a tiny, deterministic container program for runtime
// tests that need exact output, exit codes or timing (the engine simulator
// is the realistic stand-in for an inference engine; this is the scalpel).
// testenv.TestProgImage packs it into a FROM scratch image.
//
// Each argument is one step, run in order:
//
//	out:TEXT     print TEXT and "\n" to stdout      err:TEXT  the same on stderr
//	outraw:TEXT  print TEXT to stdout, no newline   (\n, \r and \t are unescaped)
//	sleep:DUR    sleep for a Go duration
//	listen:PORT  serve HTTP 200 "ok" on 0.0.0.0:PORT in the background
//	flood:N:SIZE print N numbered lines of SIZE bytes (newline included) to
//	             stdout as fast as it can, through a 64 KiB buffer
//	exit:N       exit with code N at once
//	wait         block until SIGTERM or SIGINT, then exit 0
//
// Without an exit or wait step it exits 0 after the last step. SIGTERM ends
// it promptly at any time (exit 0), as PID 1 must handle it itself.
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		fmt.Println("testprog: terminated")
		os.Exit(0)
	}()
	unescape := strings.NewReplacer(`\n`, "\n", `\r`, "\r", `\t`, "\t")
	for _, step := range os.Args[1:] {
		verb, arg, _ := strings.Cut(step, ":")
		switch verb {
		case "out":
			fmt.Fprintln(os.Stdout, unescape.Replace(arg))
		case "err":
			fmt.Fprintln(os.Stderr, unescape.Replace(arg))
		case "outraw":
			fmt.Fprint(os.Stdout, unescape.Replace(arg))
		case "flood":
			n, size, err := floodArgs(arg)
			if err != nil {
				fail(err)
			}
			flood(n, size)
		case "sleep":
			d, err := time.ParseDuration(arg)
			if err != nil {
				fail(err)
			}
			time.Sleep(d)
		case "listen":
			srv := &http.Server{Addr: ":" + arg, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, "ok")
			})}
			go func() { fail(srv.ListenAndServe()) }()
		case "exit":
			code, err := strconv.Atoi(arg)
			if err != nil {
				fail(err)
			}
			os.Exit(code)
		case "wait":
			select {}
		default:
			fail(fmt.Errorf("unknown step %q", step))
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "testprog:", err)
	os.Exit(2)
}

func floodArgs(arg string) (n, size int, err error) {
	a, b, _ := strings.Cut(arg, ":")
	if n, err = strconv.Atoi(a); err != nil {
		return 0, 0, err
	}
	if size, err = strconv.Atoi(b); err != nil || size < 16 {
		return 0, 0, fmt.Errorf("flood: SIZE %q must be an integer >= 16", b)
	}
	return n, size, nil
}

// flood writes n lines "line 00000042 xxx...\n" of size bytes each.
func flood(n, size int) {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	line := []byte(strings.Repeat("x", size-1) + "\n")
	for i := 0; i < n; i++ {
		copy(line, fmt.Sprintf("line %08d ", i))
		if _, err := w.Write(line); err != nil {
			fail(err)
		}
	}
	if err := w.Flush(); err != nil {
		fail(err)
	}
}
