package services

import (
	"regexp"
	"strings"

	"aima/engines"
)

var (
	// errorLine matches Python exception lines such as
	// "ValueError: No available memory ..." or "torch.OutOfMemoryError: CUDA ...".
	errorLine = regexp.MustCompile(`\b((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Timeout\w*)): (.+)$`)
	// processPrefix is vLLM's "(APIServer pid=1) " / "(EngineCore_DP0 pid=7) ".
	processPrefix = regexp.MustCompile(`^\([\w ]+pid=\d+\)\s*`)
	// sglangPrefix is SGLang's "[2026-12-07 12:43:49 TP0] " / "[2026-12-07 12:43:49] ".
	sglangPrefix = regexp.MustCompile(`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Z]+\d+)*\]\s*`)
	// logPrefix is "ERROR 10-25 13:08:43 [core.py:708] ".
	logPrefix = regexp.MustCompile(`^(?:INFO|WARNING|ERROR|CRITICAL|DEBUG)\s+\d\d-\d\d \d\d:\d\d:\d\d \[[^\]]*\]\s*`)
)

// wrapperErrors are generic errors that only point at a root cause printed
// earlier; the root cause is the better reason. vLLM's start-up wrapper
// says "Engine core initialization failed. See root cause above."; its
// wrapper for an engine that dies while serving says "EngineDeadError:
// EngineCore encountered an issue. See stack trace (above) for the root
// cause." The phrase "root cause" is matched, so both are.
var wrapperErrors = []string{"root cause", "Engine core initialization failed"}

// EngineFailureLine picks the engine's own error line from the last log
// lines of a failed run: the line the engine's failure rules recognise
// (its prefixes removed; of a Python exception line, the exception), else
// ReasonFromLogs.
func EngineFailureLine(eng engines.Engine, lines []string) (string, *engines.FailureRule) {
	raw, rule := eng.Diagnose(lines)
	if rule == nil {
		return ReasonFromLogs(lines), nil
	}
	l := cleanLine(raw)
	if m := errorLine.FindStringSubmatch(l); m != nil {
		l = m[1] + ": " + m[2]
	}
	return truncate(l, 500), rule
}

// cleanLine removes vLLM's process and logger prefixes and SGLang's
// timestamp prefix from a log line.
func cleanLine(raw string) string {
	l := strings.TrimSpace(processPrefix.ReplaceAllString(strings.TrimSpace(raw), ""))
	l = strings.TrimSpace(sglangPrefix.ReplaceAllString(l, ""))
	return strings.TrimSpace(logPrefix.ReplaceAllString(l, ""))
}

// ReasonFromLogs picks the engine's own error line from the last log lines of
// a failed run: the last exception line that is not a generic wrapper, else
// the last exception line, else the last line that says error or failed,
// else "" (an ordinary last line, such as an access log, explains nothing).
func ReasonFromLogs(lines []string) string {
	var last, lastWrapper string
	for _, raw := range lines {
		l := cleanLine(raw)
		if m := errorLine.FindStringSubmatch(l); m != nil {
			text := truncate(m[1]+": "+m[2], 500)
			if isWrapper(text) {
				lastWrapper = text
			} else {
				last = text
			}
		}
	}
	if last != "" {
		return last
	}
	if lastWrapper != "" {
		return lastWrapper
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); errorWord.MatchString(l) {
			return truncate(l, 300)
		}
	}
	return ""
}

var errorWord = regexp.MustCompile(`(?i)\b(error|failed|fatal|panic)\b`)

// ExitDescription names the signal behind an exit code (137 = SIGKILL ...).
func ExitDescription(code int) string {
	switch code {
	case 137:
		return " (killed: SIGKILL)"
	case 143:
		return " (terminated: SIGTERM)"
	case 139:
		return " (segmentation fault)"
	}
	return ""
}

func isWrapper(s string) bool {
	for _, w := range wrapperErrors {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
