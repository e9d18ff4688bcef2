package gpu

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Retuning a start that ran out of memory: the engines name the cause with
// their own figures (vLLM's estimated maximum model length, its free
// memory at start-up, SGLang's mem_fraction_static, llama.cpp's buffer
// sizes and offloaded layers), so the adjustment is computed from them, not
// guessed. Weights that do not fit on vLLM or SGLang are never retried: no
// argument but more GPUs cures them.

// OOMCause is the class of a start's memory failure.
type OOMCause string

// The causes.
const (
	// OOMMaxLen: the KV cache cannot hold the context length asked for.
	OOMMaxLen OOMCause = "kv_cannot_hold_max_len"
	// OOMKVPool: the KV pool does not fit the memory fraction.
	OOMKVPool OOMCause = "kv_pool_does_not_fit"
	// OOMFreeBelowShare: another process took memory, so less is free
	// than the engine's share asks.
	OOMFreeBelowShare OOMCause = "free_below_share"
	// OOMWeights: the weights do not fit.
	OOMWeights OOMCause = "weights_do_not_fit"
)

// Adjustment is one engine argument a retune changed.
type Adjustment struct {
	Cause OOMCause `json:"cause" jsonschema:"why: kv_cannot_hold_max_len, kv_pool_does_not_fit, free_below_share or weights_do_not_fit"`
	Flag  string   `json:"flag" jsonschema:"the engine flag changed"`
	From  string   `json:"from" jsonschema:"its value before (the engine's default when the args did not set it)"`
	To    string   `json:"to" jsonschema:"its value for the next start"`
	Why   string   `json:"why" jsonschema:"the engine's figures the new value comes from, in a sentence"`
}

// OOMContext is what the planner knows besides the engine's lines.
type OOMContext struct {
	Engine string   // engine type: vllm, sglang, llamacpp
	Args   []string // the catalog's args, then the service's
	// FreeShare is the smallest free/total memory share among the
	// service's GPUs read after the failure (-1: unknown).
	FreeShare float64
	// FreeMiB is the smallest free memory among them in MiB (-1: unknown).
	FreeMiB float64
}

// OOMPlan is what to do about a memory failure: Adjust set means start
// again with it; otherwise Reason says why not.
type OOMPlan struct {
	Cause  OOMCause
	Adjust *Adjustment
	Reason string
}

var (
	// vLLM V1 and V0: the KV cache cannot hold max_model_len.
	vllmMaxLenV1 = regexp.MustCompile(`max seq len \((\d+)\), \(([\d.]+) GiB KV cache is needed, which is larger than the available KV cache memory \(([\d.]+) GiB\)\. Based on the available memory, the estimated maximum model length is (\d+)`)
	vllmMaxLenV0 = regexp.MustCompile(`max seq len \((\d+)\) is larger than the maximum number of tokens that can be stored in KV cache \((\d+)\)`)
	// vLLM: less free than the share at start-up.
	vllmFree = regexp.MustCompile(`Free memory on device \(([\d.]+)/([\d.]+) GiB\) on startup is less than desired GPU memory utilization \(([\d.]+), ([\d.]+) GiB\)`)
	// vLLM: no KV blocks at all within the share.
	vllmNoCache = regexp.MustCompile(`No available memory for the cache blocks`)
	// SGLang: the KV pool does not fit mem_fraction_static.
	sglangNotEnough = regexp.MustCompile(`Not enough memory\. Please try to increase --mem-fraction-static\.(?:\s*Current value: mem_fraction_static=([\d.]+))?`)
	// llama.cpp: the KV cache buffer; the weights' buffer and the layers.
	llamaKV      = regexp.MustCompile(`failed to allocate buffer for kv cache`)
	llamaAlloc   = regexp.MustCompile(`allocating ([\d.]+) MiB on device (\d+): cudaMalloc failed: out of memory`)
	llamaLayers  = regexp.MustCompile(`offloaded (\d+)/(\d+) layers to GPU`)
	torchWeights = regexp.MustCompile(`CUDA out of memory|OutOfMemoryError`)
)

// maxShare is the most of a GPU a retune gives an engine.
const maxShare = 0.95

// PlanOOM reads an engine's log lines (the failed start's tail, the error
// line last) and says how to start again, if a retune can cure it.
func PlanOOM(c OOMContext, lines []string) OOMPlan {
	prof := ProfileFor(c.Engine)
	ea, _ := prof.Parse(c.Args)
	find := func(re *regexp.Regexp) []string {
		for i := len(lines) - 1; i >= 0; i-- {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				return m
			}
		}
		return nil
	}
	util := ea.Util
	if util == 0 {
		util = prof.DefaultUtil
	}
	first := func(flags []string) string {
		if len(flags) == 0 {
			return ""
		}
		return flags[0]
	}
	switch {
	case find(vllmMaxLenV1) != nil:
		m := find(vllmMaxLenV1)
		return OOMPlan{Cause: OOMMaxLen, Adjust: &Adjustment{Cause: OOMMaxLen, Flag: first(prof.MaxLenFlags), From: m[1], To: m[4],
			Why: fmt.Sprintf("the engine's KV cache holds %s GiB and %s tokens need %s GiB; it estimated the longest context that fits at %s tokens", m[3], m[1], m[2], m[4])}}
	case find(vllmMaxLenV0) != nil:
		m := find(vllmMaxLenV0)
		return OOMPlan{Cause: OOMMaxLen, Adjust: &Adjustment{Cause: OOMMaxLen, Flag: first(prof.MaxLenFlags), From: m[1], To: m[2],
			Why: fmt.Sprintf("the engine's KV cache holds %s tokens, fewer than the %s asked for", m[2], m[1])}}
	case find(vllmFree) != nil:
		m := find(vllmFree)
		free, _ := strconv.ParseFloat(m[1], 64)
		total, _ := strconv.ParseFloat(m[2], 64)
		if total <= 0 {
			break
		}
		to := floor2(free/total - 0.01)
		if to < 0.05 {
			return OOMPlan{Cause: OOMFreeBelowShare, Reason: fmt.Sprintf("only %s of %s GiB is free on the GPU: other processes hold it; stop them or use another GPU", m[1], m[2])}
		}
		return OOMPlan{Cause: OOMFreeBelowShare, Adjust: &Adjustment{Cause: OOMFreeBelowShare, Flag: first(prof.UtilFlags), From: m[3], To: fmtShare(to),
			Why: fmt.Sprintf("the engine found %s of %s GiB free (another process holds the rest), less than the %s GiB its share %s asks; %s fits what is free", m[1], m[2], m[4], m[3], fmtShare(to))}}
	case find(vllmNoCache) != nil:
		return raiseShare(OOMKVPool, first(prof.UtilFlags), util, c.FreeShare, "the engine found no memory left for KV cache blocks within its share")
	case find(sglangNotEnough) != nil:
		if m := find(sglangNotEnough); m[1] != "" {
			util, _ = strconv.ParseFloat(m[1], 64)
		}
		return raiseShare(OOMKVPool, first(prof.UtilFlags), util, c.FreeShare, "the engine's KV pool does not fit mem_fraction_static")
	case find(llamaKV) != nil:
		ctx := ea.MaxModelLen
		if ctx == 0 {
			ctx = prof.DefaultMaxLen
		}
		if ctx/2 < 512 {
			return OOMPlan{Cause: OOMMaxLen, Reason: fmt.Sprintf("the KV cache of a %d-token context does not fit; offload fewer layers (-ngl) or use a larger GPU", ctx)}
		}
		return OOMPlan{Cause: OOMMaxLen, Adjust: &Adjustment{Cause: OOMMaxLen, Flag: "-c", From: strconv.Itoa(ctx), To: strconv.Itoa(ctx / 2),
			Why: fmt.Sprintf("llama.cpp could not allocate the KV cache of a %d-token context; half of it needs half the memory", ctx)}}
	case find(llamaAlloc) != nil:
		m := find(llamaAlloc)
		need, _ := strconv.ParseFloat(m[1], 64)
		layers := find(llamaLayers)
		if layers == nil || c.FreeMiB <= 0 || need <= 0 {
			return OOMPlan{Cause: OOMWeights, Reason: fmt.Sprintf("the weights need %s MiB on GPU %s; offload fewer layers (-ngl), use a smaller quantization or a larger GPU", m[1], m[2])}
		}
		n, _ := strconv.Atoi(layers[1])
		to := int(math.Floor(float64(n) * 0.9 * c.FreeMiB / need))
		if to < 1 || to >= n {
			return OOMPlan{Cause: OOMWeights, Reason: fmt.Sprintf("the weights need %s MiB on GPU %s and %.0f MiB is free; use a smaller quantization or a larger GPU", m[1], m[2], c.FreeMiB)}
		}
		return OOMPlan{Cause: OOMWeights, Adjust: &Adjustment{Cause: OOMWeights, Flag: "-ngl", From: layers[1], To: strconv.Itoa(to),
			Why: fmt.Sprintf("%s layers need %s MiB on GPU %s and %.0f MiB is free: %d layers fit with a tenth to spare, the rest run on the CPU", layers[1], m[1], m[2], c.FreeMiB, to)}}
	case find(torchWeights) != nil:
		return OOMPlan{Cause: OOMWeights, Reason: "the weights do not fit on the GPU: not retried; spread them with --tensor-parallel-size, use a quantized model or a larger GPU"}
	}
	return OOMPlan{Reason: "no memory failure aima can retune"}
}

// raiseShare is the retune of a KV pool that does not fit the share: a
// larger share, up to what is free (or maxShare).
func raiseShare(cause OOMCause, flag string, util, freeShare float64, what string) OOMPlan {
	ceiling := maxShare
	if freeShare > 0 {
		ceiling = min(ceiling, floor2(freeShare-0.01))
	}
	to := min(floor2(util+0.05), ceiling)
	if flag == "" || to <= util+1e-9 {
		return OOMPlan{Cause: cause, Reason: fmt.Sprintf("%s and no larger share fits (%s now, at most %s): lower the context length or spread the model with tensor parallelism", what, fmtShare(util), fmtShare(ceiling))}
	}
	return OOMPlan{Cause: cause, Adjust: &Adjustment{Cause: cause, Flag: flag, From: fmtShare(util), To: fmtShare(to),
		Why: fmt.Sprintf("%s at %s; %s is free on the GPU, so the share goes to %s", what, fmtShare(util), freeText(freeShare), fmtShare(to))}}
}

func freeText(share float64) string {
	if share <= 0 {
		return "an unknown share"
	}
	return fmtShare(share)
}

func floor2(f float64) float64 { return math.Floor(f*100+1e-6) / 100 }

func fmtShare(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// WithFlag returns args with every occurrence of flag (either form) removed
// and flag=value appended.
func WithFlag(args []string, flag, value string) []string {
	out := make([]string, 0, len(args)+1)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == flag {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
			}
			continue
		}
		if strings.HasPrefix(a, flag+"=") {
			continue
		}
		out = append(out, a)
	}
	return append(out, flag+"="+value)
}
