package inference

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/tidwall/gjson"
)

// The usage of a body that is not a stream is read from its last bytes
// (Response.tail) with these, the number as written, then checked like a
// stream's (takeUsage).
var (
	promptTokensRE     = regexp.MustCompile(`"prompt_tokens"\s*:\s*(-?[0-9][0-9.eE+-]*)`)
	completionTokensRE = regexp.MustCompile(`"completion_tokens"\s*:\s*(-?[0-9][0-9.eE+-]*)`)
)

// rawNumber is a usage field's JSON text when it is a number, else "".
func rawNumber(v gjson.Result) string {
	if v.Type != gjson.Number {
		return ""
	}
	return v.Raw
}

// maxReportedTokens bounds a token count taken from an engine: no model's
// context comes within a thousandth of it, and the daemon's sums of such
// counts (the service's figures, the metrics) cannot overflow.
const maxReportedTokens = 1 << 32

// tokenCount reads a token count an engine reported: a whole number from 0
// to maxReportedTokens.
func tokenCount(raw string) (int, bool) {
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 || n > maxReportedTokens {
		return 0, false
	}
	return int(n), true
}

// takeUsage records the engine's own counts, or, when either is not a
// token count (negative, fractional, absurd, not a number), ignores both
// and notes why: an engine's numbers reach the service's figures, the
// metrics and the event bus, and none of them may be corrupted (or, as a
// negative count once did, make a Prometheus counter panic) by what an
// engine sends.
func (r *Response) takeUsage(in, out string) {
	ti, okIn := tokenCount(in)
	to, okOut := tokenCount(out)
	if !okIn || !okOut {
		r.note = fmt.Sprintf("usage ignored: the engine reported prompt_tokens %s and completion_tokens %s, and a token count is a whole number from 0 to %d",
			shortRaw(in), shortRaw(out), maxReportedTokens)
		return
	}
	r.usageSeen = true
	r.tokensIn, r.tokensOut = ti, to
}

// shortRaw quotes a reported value for a note, cut short.
func shortRaw(raw string) string {
	if raw == "" {
		return "(not a number)"
	}
	if len(raw) > 24 {
		return raw[:24] + "…"
	}
	return raw
}
