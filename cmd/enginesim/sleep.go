package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// vLLM's sleep mode (--enable-sleep-mode; the endpoints exist only with
// VLLM_SERVER_DEV_MODE=1, as in vLLM's api_server.py). Level 1 offloads
// the weights to CPU memory and discards the KV cache; level 2 discards
// both, so its wake-up reloads the weights. Durations follow the memory
// moved (pinned host copies at ~12 GiB/s, a reload from disk at ~2 GiB/s)
// and are scaled by SIM_TIME_SCALE; the memory figures are the ones the
// start-up log printed.

// Sleep levels (the engine_sleep_state metric's sleep_state label).
const (
	awake = iota
	weightsOffloaded
	discardAll
)

var sleepStateNames = []string{"awake", "weights_offloaded", "discard_all"}

// cudaContextGiB is what stays on the GPU while asleep (CUDA context,
// NCCL buffers, the memory pool's reserve).
const cudaContextGiB = 0.62

func (s *sim) sleepDuration(level int) time.Duration {
	if level == weightsOffloaded {
		return s.o.scale(time.Duration((0.25 + s.model.SizeGiB/12) * float64(time.Second)))
	}
	return s.o.scale(150 * time.Millisecond)
}

func (s *sim) wakeDuration(level int) time.Duration {
	if level == weightsOffloaded {
		return s.o.scale(time.Duration((0.4 + s.model.SizeGiB/12) * float64(time.Second)))
	}
	return s.o.scale(time.Duration((0.8 + s.model.SizeGiB/2) * float64(time.Second)))
}

// handleSleep is POST /sleep?level=1|2. The request returns once the engine
// sleeps. Sleeping while asleep only warns, as vLLM's executor does.
func (s *sim) handleSleep(w http.ResponseWriter, r *http.Request) {
	level, err := strconv.Atoi(r.URL.Query().Get("level"))
	if r.URL.Query().Get("level") == "" {
		level, err = 1, nil
	}
	if err != nil || level < 1 || level > 2 {
		// vLLM passes int(level) into the engine; anything else is a 500.
		s.log.api("ERROR", "api_server.py:1024", "Exception in /sleep: invalid level %q", r.URL.Query().Get("level"))
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	if !s.o.EnableSleepMode {
		s.log.engine("ERROR", "core.py:710", "AssertionError: Sleep mode is not enabled. Enable it by passing `--enable-sleep-mode`.")
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	s.sleepMu.Lock()
	defer s.sleepMu.Unlock()
	if s.sleepLevel.Load() != awake {
		s.log.engine("WARNING", "abstract.py:214", "Executor is already sleeping.")
		w.WriteHeader(http.StatusOK)
		return
	}
	began := time.Now()
	if !sleepCtx(r, s.sleepDuration(level)) {
		return
	}
	freed := s.model.SizeGiB + s.kvGiB
	s.log.engine("INFO", "gpu_worker.py:108", "Sleep mode freed %.2f GiB memory, %.2f GiB memory is still in use.", freed, cudaContextGiB)
	s.log.engine("INFO", "abstract.py:222", "It took %.6f seconds to fall asleep.", time.Since(began).Seconds())
	s.sleepLevel.Store(int32(level))
	w.WriteHeader(http.StatusOK)
}

// handleWakeUp is POST /wake_up[?tags=weights&tags=kv_cache].
func (s *sim) handleWakeUp(w http.ResponseWriter, r *http.Request) {
	tags := r.URL.Query()["tags"]
	if len(tags) == 0 {
		s.log.api("INFO", "api_server.py:1040", "wake up the engine with tags: None")
	} else {
		s.log.api("INFO", "api_server.py:1040", "wake up the engine with tags: %s", pyList(tags))
	}
	s.sleepMu.Lock()
	defer s.sleepMu.Unlock()
	level := int(s.sleepLevel.Load())
	if level == awake {
		s.log.engine("WARNING", "abstract.py:229", "Executor is not sleeping.")
		w.WriteHeader(http.StatusOK)
		return
	}
	began := time.Now()
	if !sleepCtx(r, s.wakeDuration(level)) {
		return
	}
	if len(tags) == 0 {
		tags = []string{"weights", "kv_cache"}
	}
	s.log.engine("INFO", "abstract.py:243", "It took %.6f seconds to wake up tags %s.", time.Since(began).Seconds(), pySet(tags))
	s.sleepLevel.Store(awake)
	w.WriteHeader(http.StatusOK)
}

// handleIsSleeping is GET /is_sleeping.
func (s *sim) handleIsSleeping(w http.ResponseWriter, _ *http.Request) {
	s.log.api("INFO", "api_server.py:1050", "check whether the engine is sleeping")
	writeJSON(w, http.StatusOK, map[string]bool{"is_sleeping": s.sleepLevel.Load() != awake})
}

// sleepCtx waits d unless the client goes away first.
func sleepCtx(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func pyList(v []string) string {
	out := "["
	for i, s := range v {
		if i > 0 {
			out += ", "
		}
		out += pyStr(s)
	}
	return out + "]"
}

func pySet(v []string) string {
	l := pyList(v)
	return "{" + l[1:len(l)-1] + "}"
}

// sleepStateMetric renders vllm:engine_sleep_state (1 for the current state).
func (s *sim) sleepStateMetric() string {
	cur := int(s.sleepLevel.Load())
	out := "# HELP vllm:engine_sleep_state Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.\n# TYPE vllm:engine_sleep_state gauge\n"
	for i, name := range sleepStateNames {
		v := 0.0
		if (i == awake && cur == awake) || (i != awake && i == cur) {
			v = 1
		}
		out += fmt.Sprintf("vllm:engine_sleep_state{engine=\"0\",model_name=%q,sleep_state=%q} %s\n", s.metrics.model, name, pyFloat(v))
	}
	return out
}
