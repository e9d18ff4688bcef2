package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"net/http"
	"strings"
	"time"
)

// SGLang's and llama-server's own endpoints, error bodies and access logs.
// The OpenAI endpoints (completions.go) and the scheduling behind them
// (metrics.go) are shared by all three personalities.

type routeTable map[string]map[string]http.HandlerFunc

// routes is the personality's route table.
func (s *sim) routes() routeTable {
	switch s.o.Engine {
	case engineSGLang:
		rt := routeTable{
			"/health":                    {"GET": s.handleSGLangHealth},
			"/health_generate":           {"GET": s.handleSGLangHealth},
			"/ping":                      {"GET": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }},
			"/get_model_info":            {"GET": s.handleModelInfo},
			"/get_server_info":           {"GET": s.handleServerInfo},
			"/get_load":                  {"GET": s.handleGetLoad},
			"/flush_cache":               {"GET": s.handleFlushCache, "POST": s.handleFlushCache},
			"/generate":                  {"POST": s.handleGenerate},
			"/v1/models":                 {"GET": s.handleModels},
			"/v1/chat/completions":       {"POST": s.handleChat},
			"/v1/completions":            {"POST": s.handleCompletions},
			"/v1/embeddings":             {"POST": s.handleEmbeddings},
			"/release_memory_occupation": {"GET": s.handleRelease, "POST": s.handleRelease},
			"/resume_memory_occupation":  {"GET": s.handleResume, "POST": s.handleResume},
		}
		if s.o.Metrics {
			rt["/metrics"] = map[string]http.HandlerFunc{"GET": s.handleMetrics}
		}
		return rt
	case engineLlamaCpp:
		return routeTable{
			"/health":              {"GET": s.handleLlamaHealth},
			"/v1/health":           {"GET": s.handleLlamaHealth},
			"/props":               {"GET": s.handleProps},
			"/slots":               {"GET": s.handleSlots},
			"/models":              {"GET": s.handleModels},
			"/v1/models":           {"GET": s.handleModels},
			"/completion":          {"POST": s.handleCompletions},
			"/completions":         {"POST": s.handleCompletions},
			"/v1/completions":      {"POST": s.handleCompletions},
			"/chat/completions":    {"POST": s.handleChat},
			"/v1/chat/completions": {"POST": s.handleChat},
			"/embedding":           {"POST": s.handleEmbeddings},
			"/embeddings":          {"POST": s.handleEmbeddings},
			"/v1/embeddings":       {"POST": s.handleEmbeddings},
			"/metrics":             {"GET": s.handleMetrics},
		}
	}
	rt := routeTable{
		"/health":              {"GET": s.handleHealth},
		"/ping":                {"GET": s.handleHealth, "POST": s.handleHealth},
		"/version":             {"GET": s.handleVersion},
		"/load":                {"GET": s.handleLoad},
		"/v1/models":           {"GET": s.handleModels},
		"/v1/chat/completions": {"POST": s.handleChat},
		"/v1/completions":      {"POST": s.handleCompletions},
		"/metrics":             {"GET": s.handleMetrics},
	}
	if s.o.DevMode {
		rt["/sleep"] = map[string]http.HandlerFunc{"POST": s.handleSleep}
		rt["/wake_up"] = map[string]http.HandlerFunc{"POST": s.handleWakeUp}
		rt["/is_sleeping"] = map[string]http.HandlerFunc{"GET": s.handleIsSleeping}
	}
	return rt
}

// apiError writes the personality's OpenAI-style error body: vLLM's
// {"error":{message,type,param,code}}, SGLang's flat
// {"object":"error",message,type,param,code}, llama-server's
// {"error":{code,message,type}}.
func (s *sim) apiError(w http.ResponseWriter, code int, typ, msg string) {
	switch s.o.Engine {
	case engineSGLang:
		writeJSON(w, code, map[string]any{"object": "error", "message": msg, "type": typ, "param": nil, "code": code})
	case engineLlamaCpp:
		writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg, "type": llamaErrorType(code, typ)}})
	default:
		apiError(w, code, typ, msg)
	}
}

// llamaErrorType is llama-server's error type for a status (server-common.h).
func llamaErrorType(code int, typ string) string {
	if strings.HasSuffix(typ, "_error") {
		return typ
	}
	switch code {
	case 401:
		return "authentication_error"
	case 404:
		return "not_found_error"
	case 501:
		return "not_supported_error"
	case 503:
		return "unavailable_error"
	case 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// notFound answers an unknown path the personality's way.
func (s *sim) notFound(w http.ResponseWriter) {
	if s.o.Engine == engineLlamaCpp {
		s.apiError(w, http.StatusNotFound, "not_found_error", "File Not Found")
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
}

// handleSGLangHealth: 503 while the server warms up or shuts down (empty
// body, as SGLang's Response(status_code=503)); 200 once warm.
func (s *sim) handleSGLangHealth(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-s.stopping:
		s.emit(mainProc, "Health check request received during shutdown. Returning 503.")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	default:
	}
	if (s.loading.Load() && !s.o.LegacyHealth) || s.state.Load() != stateReady {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// handleLlamaHealth: {"status":"ok"} once loaded (loading is answered
// before routing, for every route).
func (s *sim) handleLlamaHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *sim) handleModelInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"model_path": s.o.Model, "tokenizer_path": s.o.Model, "is_generation": true,
		"preferred_sampling_params": nil, "weight_version": "default",
	})
}

func (s *sim) handleServerInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"model_path": s.o.Model, "served_model_name": s.o.servedNames()[0], "host": s.o.Host, "port": s.o.Port,
		"tp_size": s.o.TP, "mem_fraction_static": s.o.GPUMemUtil, "context_length": s.maxLen,
		"max_total_num_tokens": s.kvTokens, "max_running_requests": s.o.MaxNumSeqs,
		"enable_metrics": s.o.Metrics, "enable_memory_saver": s.o.EnableSleepMode, "version": sglangVersion,
	})
}

func (s *sim) handleGetLoad(w http.ResponseWriter, _ *http.Request) {
	s.metrics.mu.Lock()
	running, waiting := s.metrics.running, s.metrics.waiting
	s.metrics.mu.Unlock()
	writeJSON(w, http.StatusOK, []map[string]int{{"dp_rank": 0, "num_reqs": running + waiting, "num_waiting_reqs": waiting}})
}

func (s *sim) handleFlushCache(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)\n"))
}

// handleGenerate is SGLang's native POST /generate (the warmup uses it).
func (s *sim) handleGenerate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text           string `json:"text"`
		SamplingParams struct {
			MaxNewTokens *int `json:"max_new_tokens"`
		} `json:"sampling_params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "Invalid JSON body: "+err.Error())
		return
	}
	prompt := max(1, len(splitPieces(req.Text)))
	g := generate(req.Text, req.SamplingParams.MaxNewTokens)
	s.emit(tp0, fmt.Sprintf("Prefill batch. #new-seq: 1, #new-token: %d, #cached-token: 0, token usage: 0.00, #running-req: 0, #queue-req: 0, ", prompt))
	writeJSON(w, http.StatusOK, map[string]any{
		"text": strings.Join(g.pieces, ""),
		"meta_info": map[string]any{"id": randomID(), "finish_reason": map[string]any{"type": g.reason},
			"prompt_tokens": prompt, "completion_tokens": len(g.pieces), "cached_tokens": 0},
	})
}

// handleRelease is SGLang's POST /release_memory_occupation: with
// --enable-memory-saver the weights and the KV pool leave the GPU and the
// process stays up (SGLang's counterpart of vLLM's sleep mode).
func (s *sim) handleRelease(w http.ResponseWriter, r *http.Request) {
	if !s.o.EnableSleepMode {
		s.emit(tp0, "Memory saver is not enabled: release_memory_occupation does nothing. Start the server with --enable-memory-saver.")
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "release_memory_occupation needs --enable-memory-saver")
		return
	}
	s.sleepMu.Lock()
	defer s.sleepMu.Unlock()
	if s.sleepLevel.Load() != awake {
		writeJSON(w, http.StatusOK, nil)
		return
	}
	began := time.Now()
	if !sleepCtx(r, s.sleepDuration(weightsOffloaded)) {
		return
	}
	freed := s.model.SizeGiB/float64(s.o.TP) + s.kvGiB
	s.emit(tp0, fmt.Sprintf("Release memory occupation end. freed=%.2f GB, avail mem=%.2f GB, elapsed=%.2f s", freed, s.o.GPUMemGiB*0.9899-cudaContextGiB, time.Since(began).Seconds()))
	s.sleepLevel.Store(weightsOffloaded)
	writeJSON(w, http.StatusOK, nil)
}

// handleResume is SGLang's POST /resume_memory_occupation.
func (s *sim) handleResume(w http.ResponseWriter, r *http.Request) {
	s.sleepMu.Lock()
	defer s.sleepMu.Unlock()
	if s.sleepLevel.Load() == awake {
		writeJSON(w, http.StatusOK, nil)
		return
	}
	began := time.Now()
	if !sleepCtx(r, s.wakeDuration(weightsOffloaded)) {
		return
	}
	taken := s.model.SizeGiB/float64(s.o.TP) + s.kvGiB
	s.emit(tp0, fmt.Sprintf("Resume memory occupation end. taken=%.2f GB, avail mem=%.2f GB, elapsed=%.2f s", taken, s.o.GPUMemGiB*0.9899-cudaContextGiB-taken, time.Since(began).Seconds()))
	s.sleepLevel.Store(awake)
	writeJSON(w, http.StatusOK, nil)
}

// handleProps is llama-server's GET /props.
func (s *sim) handleProps(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"default_generation_settings": map[string]any{"n_ctx": s.maxLen, "model": s.o.servedNames()[0]},
		"total_slots":                 max(s.o.MaxNumSeqs, 1), "model_path": s.o.Model, "is_sleeping": false,
		"build_info": "b" + llamaBuild + "-c4abcb24", "modalities": map[string]bool{"vision": false, "audio": false},
	})
}

// handleSlots is llama-server's GET /slots: one entry per -np slot.
func (s *sim) handleSlots(w http.ResponseWriter, _ *http.Request) {
	s.metrics.mu.Lock()
	running := s.metrics.running
	s.metrics.mu.Unlock()
	slots := make([]map[string]any, max(s.o.MaxNumSeqs, 1))
	for i := range slots {
		slots[i] = map[string]any{"id": i, "n_ctx": s.maxLen, "is_processing": i < running}
	}
	writeJSON(w, http.StatusOK, slots)
}

// handleEmbeddings answers OpenAI embeddings with deterministic unit
// vectors (a hash of each input). llama-server needs --embeddings.
func (s *sim) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	if s.o.Engine == engineLlamaCpp && !s.o.Embeddings {
		s.apiError(w, http.StatusNotImplemented, "not_supported_error", "This server does not support embeddings. Start it with `--embeddings`")
		return
	}
	var req struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "Invalid JSON body: "+err.Error())
		return
	}
	inputs, ok := promptTexts(req.Input)
	if !ok {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "input: Field required")
		return
	}
	if req.Model == "" {
		req.Model = s.o.servedNames()[0]
	}
	data := make([]map[string]any, len(inputs))
	tokens := 0
	for i, in := range inputs {
		tokens += max(1, len(splitPieces(in)))
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": embedding(in, 8)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "model": req.Model, "data": data,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens}})
}

// embedding is a deterministic unit vector of dim components for text.
func embedding(text string, dim int) []float64 {
	v := make([]float64, dim)
	norm := 0.0
	for i := range v {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d:%s", i, text)
		v[i] = float64(h.Sum64()%2000)/1000 - 1
		norm += v[i] * v[i]
	}
	for i := range v {
		v[i] /= math.Max(math.Sqrt(norm), 1e-9)
	}
	return v
}

// accessLogFor writes the personality's request log line: uvicorn's (vLLM:
// `(APIServer pid=1) INFO:     ip:port - "GET /health HTTP/1.1" 200 OK`;
// SGLang: `[date] INFO:     ...` on stdout), llama-server's
// `srv  log_server_r: request: GET /props 172.17.0.1 200` (not for health).
func (s *sim) accessLogFor(r *http.Request, code int) {
	client := r.RemoteAddr
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		client = host + ":" + port
	}
	switch s.o.Engine {
	case engineSGLang:
		s.log.write(s.log.out, fmt.Sprintf("[%s] INFO:     %s - \"%s %s %s\" %d %s\n", s.log.now().Format("2006-01-02 15:04:05"),
			client, r.Method, r.URL.RequestURI(), r.Proto, code, http.StatusText(code)))
	case engineLlamaCpp:
		if r.URL.Path == "/health" || r.URL.Path == "/v1/health" {
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		s.emit(raw, fmt.Sprintf("srv  log_server_r: request: %s %s %s %d", r.Method, r.URL.Path, host, code))
	default:
		s.log.uvicorn("INFO", "%s - \"%s %s %s\" %d %s", client, r.Method, r.URL.RequestURI(), r.Proto, code, http.StatusText(code))
	}
}
