package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// vllmVersion is the vLLM release whose log dialect, routes and /version the
// simulator reproduces (the ~0.10.2–0.17 dialect: `Starting vLLM API server 0
// on ...`, `(EngineCore_DP0 pid=N)` prefixes).
const vllmVersion = "0.11.0"

// proc names which vLLM process a line comes from; vLLM decorates both
// stdout and stderr of each process with this prefix.
type proc int

const (
	procNone   proc = iota // before the prefix is installed (first platform line)
	procAPI                // (APIServer pid=1)
	procEngine             // (EngineCore_DP0 pid=N)
)

// logger writes vLLM's dialect: logger lines `(APIServer pid=1) INFO MM-DD
// HH:MM:SS [file.py:NNN] msg` on stdout, uvicorn lines `(APIServer pid=1)
// INFO:     msg` on stdout, tqdm bars and tracebacks on stderr. Every call is
// one Write under a mutex, with no buffering, so `docker logs` sees each line
// as it happens and concurrent request logs never interleave mid-line.
type logger struct {
	mu        sync.Mutex
	out, err  io.Writer
	apiPID    int
	enginePID int
	now       func() time.Time
}

func newLogger(out, errw io.Writer, apiPID int) *logger {
	return &logger{out: out, err: errw, apiPID: apiPID, enginePID: apiPID + 282, now: time.Now}
}

func (l *logger) prefix(p proc) string {
	switch p {
	case procAPI:
		return fmt.Sprintf("(APIServer pid=%d) ", l.apiPID)
	case procEngine:
		return fmt.Sprintf("(EngineCore_DP0 pid=%d) ", l.enginePID)
	}
	return ""
}

// log writes a Python logging record. Like vLLM's NewLineFormatter, every
// line of a multi-line message (tracebacks logged with logger.exception)
// repeats the full prefix.
func (l *logger) log(p proc, level, src, msg string) {
	head := fmt.Sprintf("%s%s %s [%s] ", l.prefix(p), level, l.now().Format("01-02 15:04:05"), src)
	var b strings.Builder
	for _, line := range strings.Split(msg, "\n") {
		b.WriteString(head + line + "\n")
	}
	l.write(l.out, b.String())
}

func (l *logger) api(level, src, format string, args ...any) {
	l.log(procAPI, level, src, fmt.Sprintf(format, args...))
}

func (l *logger) engine(level, src, format string, args ...any) {
	l.log(procEngine, level, src, fmt.Sprintf(format, args...))
}

// uvicorn writes uvicorn's own format (level, colon, padding to 9 columns).
func (l *logger) uvicorn(level, format string, args ...any) {
	l.write(l.out, fmt.Sprintf("%s%-9s %s\n", l.prefix(procAPI), level+":", fmt.Sprintf(format, args...)))
}

// stderr writes text (tracebacks, tqdm bars) to stderr, prefixing each line
// with the process decoration. Text may contain '\r' (tqdm redraws).
func (l *logger) stderr(p proc, text string) {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		b.WriteString(l.prefix(p) + line + "\n")
	}
	l.write(l.err, b.String())
}

// rawStderr writes text as is (C++ warnings from torch that bypass Python).
func (l *logger) rawStderr(text string) { l.write(l.err, text) }

func (l *logger) write(w io.Writer, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(w, s) // nowhere to report a broken stdout
}

// tqdmBar renders a default-format tqdm bar: `desc: 100%|██████████| 51/51 [00:01<00:00, 33.44it/s]`.
func tqdmBar(desc string, n, total int, elapsed time.Duration) string {
	pct := 0
	if total > 0 {
		pct = n * 100 / total
	}
	filled := pct / 10
	bar := strings.Repeat("█", filled) + strings.Repeat(" ", 10-filled)
	return fmt.Sprintf("%s: %3d%%|%s| %d/%d [%s<%s, %s]", desc, pct, bar, n, total,
		tqdmClock(elapsed), remaining(n, total, elapsed), rate(n, elapsed, "it/s"))
}

// vllmShardBar renders vLLM's custom weight-loading bar format
// "{desc}: {percentage:3.0f}% Completed | {n}/{total} [{elapsed}<{remaining}, {rate}]".
func vllmShardBar(n, total int, elapsed time.Duration) string {
	pct := 0
	if total > 0 {
		pct = n * 100 / total
	}
	return fmt.Sprintf("Loading safetensors checkpoint shards: %3d%% Completed | %d/%d [%s<%s, %s]",
		pct, n, total, tqdmClock(elapsed), remaining(n, total, elapsed), rate(n, elapsed, "it/s"))
}

func tqdmClock(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

func remaining(n, total int, elapsed time.Duration) string {
	if n == 0 {
		return "?"
	}
	return tqdmClock(elapsed * time.Duration(total-n) / time.Duration(n))
}

// rate prints tqdm's rate: N it/s, or s/it when slower than one per second.
func rate(n int, elapsed time.Duration, unit string) string {
	if n == 0 || elapsed <= 0 {
		return "?" + unit
	}
	r := float64(n) / elapsed.Seconds()
	if r < 1 {
		return fmt.Sprintf("%5.2fs/it", 1/r)
	}
	return fmt.Sprintf("%5.2f%s", r, unit)
}

// commas formats n with thousands separators, like Python's f"{n:,}".
func commas(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
