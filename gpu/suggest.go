package gpu

import (
	"fmt"
	"math"
	"strings"

	"aima/internal/units"
)

// budget is what the engine may use of capacity: its share of the total
// (vLLM), or all of it.
func (e Estimate) budget(capacity int64) int64 {
	if e.Util > 0 {
		return int64(e.Util * float64(capacity))
	}
	return capacity
}

func (e Estimate) perGPU(tp int) int64 {
	return ceilDiv(e.WeightsBytes, int64(tp)) + ceilDiv(e.KVBytes, int64(tp)) + e.OverheadBytes
}

// suggestTooBig fills in what would make a model that is too large for
// capacity fit: a shorter context, more tensor parallelism (on a host with
// gpus GPUs), a larger memory share.
func suggestTooBig(r *Refusal, e Estimate, capacity int64, gpus int) {
	var says []string
	budget := e.budget(capacity)
	tp := max(1, e.TP)
	if e.KVBytesPerToken > 0 && e.maxLenFlag != "" {
		room := budget - ceilDiv(e.WeightsBytes, int64(tp)) - e.OverheadBytes
		if room > 0 {
			l := room * int64(tp) / e.KVBytesPerToken / 256 * 256
			if l >= 512 && l < int64(e.MaxModelLen) {
				says = append(says, fmt.Sprintf("lower %s to %d or less", e.maxLenFlag, l))
				r.SuggestedArgs = append(r.SuggestedArgs, flagArgs(e.maxLenFlag, int(l))...)
			}
		}
	}
	if e.tpFlag != "" {
		for t := tp * 2; t <= gpus && t <= MaxCount; t *= 2 {
			if e.perGPU(t) <= budget {
				says = append(says, fmt.Sprintf("spread it over %d GPUs with %s %d (~%s each)", t, e.tpFlag, t, units.GiB(e.perGPU(t))))
				if len(r.SuggestedArgs) == 0 {
					r.SuggestedArgs = append(r.SuggestedArgs, fmt.Sprintf("%s=%d", e.tpFlag, t))
				}
				break
			}
		}
	}
	if k, need, ok := e.layersThatFit(budget); ok {
		says = append(says, fmt.Sprintf("offload fewer layers with %s %d (~%s on the GPU, the rest in host memory, slower)", e.nglFlag, k, units.GiB(need)))
		if len(r.SuggestedArgs) == 0 {
			r.SuggestedArgs = flagArgs(e.nglFlag, k)
		}
	}
	if e.Util > 0 && e.Util < 0.95 && e.perGPU(tp) <= int64(0.95*float64(capacity)) {
		says = append(says, fmt.Sprintf("raise %s to 0.95", e.utilFlag))
		if len(r.SuggestedArgs) == 0 {
			r.SuggestedArgs = append(r.SuggestedArgs, e.utilFlag+"=0.95")
		}
	}
	if len(says) == 0 {
		says = append(says, "use a smaller or quantized model, or a GPU with more memory")
	}
	r.Suggestion = strings.Join(says, ", or ")
}

// suggestLessShare fills in what would let a service start on a GPU whose
// free memory is below the engine's share: a smaller share, or stopping
// what uses the GPU.
func suggestLessShare(r *Refusal, e Estimate, total, avail int64, u *usage, d Device) {
	var says []string
	share := math.Floor(float64(avail)/float64(total)*100)/100 - 0.01
	if e.utilFlag != "" && share >= 0.05 && e.PerGPUBytes <= int64(share*float64(total)) {
		says = append(says, fmt.Sprintf("lower %s to %.2f or less", e.utilFlag, share))
		r.SuggestedArgs = []string{fmt.Sprintf("%s=%.2f", e.utilFlag, share)}
	}
	switch {
	case u != nil && len(u.holders) > 0:
		says = append(says, "stop "+holdersText(u.holders))
	case len(d.Processes) > 0:
		says = append(says, "stop the processes using it ("+processesText(d.Processes)+")")
	default:
		says = append(says, "free memory on it")
	}
	says = append(says, "or start with force to skip this check")
	r.Suggestion = strings.Join(says, ", or ")
}

// shareSuggestion is the advice for a GPU held by other services.
func shareSuggestion(reserved float64, e Estimate) string {
	left := math.Floor((1-reserved)*100+1e-6) / 100
	s := "stop that service, or choose another GPU"
	if e.utilFlag != "" && left >= 0.05 {
		s += fmt.Sprintf(", or share it: the declared shares must add up to at most 1 (%.2f is left; declare %s %.2f or less)", left, e.utilFlag, left)
	}
	return s
}

func processesText(ps []Process) string {
	var parts []string
	for _, p := range ps {
		s := fmt.Sprintf("pid %d %s", p.PID, p.Name)
		if p.UsedMemoryBytes != nil {
			s += ", " + units.GiB(*p.UsedMemoryBytes)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// layersThatFit is the most llama.cpp layers (-ngl) whose weights and KV
// cache fit in budget, with what they need; false when the engine has no
// such flag, or not even one layer fits, or all already do.
func (e Estimate) layersThatFit(budget int64) (int, int64, bool) {
	if e.nglFlag == "" || e.Layers <= 0 || e.fullWeights <= 0 {
		return 0, 0, false
	}
	total := e.Layers + 1
	for k := min(e.GPULayers, total) - 1; k >= 1; k-- {
		need := e.fullWeights/int64(total)*int64(k) + e.fullKV/int64(e.Layers)*int64(min(k, e.Layers)) + e.OverheadBytes
		if need <= budget {
			return k, need, true
		}
	}
	return 0, 0, false
}

// flagArgs spells a flag with its value the way the engine parses it:
// "--flag=value" for long flags, "-c", "4096" for llama.cpp's short ones.
func flagArgs(flag string, v int) []string {
	if strings.HasPrefix(flag, "--") {
		return []string{fmt.Sprintf("%s=%d", flag, v)}
	}
	return []string{flag, fmt.Sprint(v)}
}
