package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Value parsers and setters for the flags in flags.go. Errors are worded
// like argparse's, because they end up after `vllm serve: error: argument --x:`.

// pyStr quotes s like Python's repr of a str.
func pyStr(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// looksBool guesses that an unknown flag takes no value: vLLM's boolean flags
// are BooleanOptionalAction (`--x`/`--no-x`) or named enable-/disable-. A
// wrong guess would swallow the positional model, so err on "boolean" only
// for these names.
func looksBool(name string) bool {
	for _, p := range []string{"no-", "enable-", "disable-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	switch name {
	case "trust-remote-code", "headless", "async-scheduling", "skip-tokenizer-init",
		"return-tokens-as-token-ids", "allow-credentials", "use-tqdm-on-load",
		"kv-sharing-fast-prefill", "calculate-kv-scales", "fully-sharded-loras":
		return true
	}
	return false
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// parseHumanInt accepts vLLM's human-readable ints: 32768, 32k (×1000), 32K (×1024), 1m, 1M.
func parseHumanInt(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"):
		mult = 1000
	case strings.HasSuffix(s, "K"):
		mult = 1024
	case strings.HasSuffix(s, "m"):
		mult = 1000 * 1000
	case strings.HasSuffix(s, "M"):
		mult = 1024 * 1024
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad int %q", s)
	}
	return int(f * float64(mult)), nil
}

func intSetter(f func(*options, int)) func(*options, string) error {
	return func(o *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("invalid int value: '%s'", v)
		}
		f(o, n)
		return nil
	}
}

// parseDuration accepts Go durations ("20s", "1m30s") and bare seconds ("20", "0.5").
func parseDuration(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration value: '%s'", v)
	}
	return d, nil
}

func durSetter(f func(*options, time.Duration)) func(*options, string) error {
	return func(o *options, v string) error {
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		f(o, d)
		return nil
	}
}

// gibSetter accepts "16", "16GiB", "16G" or "512MiB" (GiB when no unit).
func gibSetter(f func(*options, float64)) func(*options, string) error {
	return func(o *options, v string) error {
		s, div := strings.TrimSpace(v), 1.0
		for _, u := range []struct {
			suffix string
			div    float64
		}{{"GiB", 1}, {"GB", 1}, {"G", 1}, {"MiB", 1024}, {"MB", 1024}, {"M", 1024}} {
			if strings.HasSuffix(s, u.suffix) {
				s, div = strings.TrimSuffix(s, u.suffix), u.div
				break
			}
		}
		g, err := strconv.ParseFloat(s, 64)
		if err != nil || g < 0 {
			return fmt.Errorf("invalid size value: '%s'", v)
		}
		f(o, g/div)
		return nil
	}
}

func (o *options) setFail(v string) error {
	if v == "none" || v == "" {
		o.Fail = ""
		return nil
	}
	for _, m := range failModes {
		if v == m {
			o.Fail = v
			return nil
		}
	}
	return fmt.Errorf("invalid choice: '%s' (choose from '%s')", v, strings.Join(failModes, "', '"))
}

func (o *options) setTimeScale(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("invalid float value: '%s'", v)
	}
	o.TimeScale = f
	return nil
}

func (o *options) setExitCode(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 255 {
		return fmt.Errorf("invalid exit code: '%s'", v)
	}
	o.ExitCode = n
	return nil
}

func (o *options) setModelCheck(v string) error {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		o.ModelCheck = true
	case "off", "false", "0", "no":
		o.ModelCheck = false
	default:
		return fmt.Errorf("invalid choice: '%s' (choose from 'on', 'off')", v)
	}
	return nil
}

// setPhases parses "load=8s,compile=20s": absolute (unscaled) durations that
// replace a phase's share of --sim-startup.
func (o *options) setPhases(v string) error {
	if o.PhaseOverride == nil {
		o.PhaseOverride = map[string]time.Duration{}
	}
	for _, part := range strings.Split(v, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		names := phaseNames()
		if p := personalityOf(o.Engine); p != nil {
			names = names[:0:0]
			for _, ph := range p.phases {
				names = append(names, ph.name)
			}
		}
		if !ok || !slices.Contains(names, name) {
			return fmt.Errorf("invalid phase override: '%s' (want NAME=DURATION, NAME one of %s)", part, strings.Join(names, ", "))
		}
		d, err := parseDuration(val)
		if err != nil {
			return err
		}
		o.PhaseOverride[name] = d
	}
	return nil
}

// scale applies --sim-time-scale to a simulated duration.
func (o *options) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * o.TimeScale)
}

// servedNames returns the names clients must use; vLLM defaults to the model string.
func (o *options) servedNames() []string {
	if len(o.ServedNames) > 0 {
		return o.ServedNames
	}
	return []string{o.Model}
}

// displayHost is the host printed in the ready line (vLLM prints 0.0.0.0 for None).
func (o *options) displayHost() string {
	if o.Host == "" {
		return "0.0.0.0"
	}
	if strings.Contains(o.Host, ":") {
		return "[" + o.Host + "]"
	}
	return o.Host
}
