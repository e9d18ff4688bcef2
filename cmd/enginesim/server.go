package main

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
)

// handler routes like vLLM's FastAPI app: exact paths, 404 `{"detail":"Not
// Found"}` for unknown paths, 405 for a wrong method, the API-key check on
// /v1/* only, and a uvicorn access-log line per request.
func (s *sim) handler() http.Handler {
	routes := s.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, s: s, r: r}
		defer rec.finish()
		if s.o.Engine == engineLlamaCpp && s.loading.Load() {
			// llama-server answers every route this way until the model is loaded.
			s.apiError(rec, http.StatusServiceUnavailable, "unavailable_error", "Loading model")
			return
		}
		methods, ok := routes[r.URL.Path]
		if !ok {
			s.notFound(rec)
			return
		}
		h, ok := methods[r.Method]
		if !ok {
			writeJSON(rec, http.StatusMethodNotAllowed, map[string]string{"detail": "Method Not Allowed"})
			return
		}
		if s.o.APIKey != "" && strings.HasPrefix(r.URL.Path, "/v1") && !s.authorized(r) {
			if s.o.Engine == engineLlamaCpp {
				s.apiError(rec, http.StatusUnauthorized, "authentication_error", "Invalid API Key")
				return
			}
			writeJSON(rec, http.StatusUnauthorized, map[string]string{"error": "Unauthorized"})
			return
		}
		h(rec, r)
	})
}

// authorized mirrors vLLM's AuthenticationMiddleware: `Authorization: Bearer <key>`.
func (s *sim) authorized(r *http.Request) bool {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "bearer") &&
		subtle.ConstantTimeCompare([]byte(token), []byte(s.o.APIKey)) == 1
}

// handleHealth: 200 with an empty body while the engine is alive, 503 (also
// empty) once it is dead or wedged. There is no "loading" state: before
// ready the port is not even listening.
func (s *sim) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if s.state.Load() != stateReady {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *sim) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": vllmVersion})
}

func (s *sim) handleLoad(w http.ResponseWriter, _ *http.Request) {
	s.metrics.mu.Lock()
	n := s.metrics.running
	s.metrics.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]int{"server_load": n})
}

func (s *sim) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	if s.o.Engine == engineLlamaCpp && !s.o.Metrics {
		s.apiError(w, http.StatusNotImplemented, "not_supported_error", "This server does not support metrics endpoint. Start it with `--metrics`")
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	switch s.o.Engine {
	case engineSGLang:
		s.metrics.renderSGLang(w)
		return
	case engineLlamaCpp:
		s.metrics.renderLlama(w)
		return
	}
	s.metrics.render(w)
	if s.o.EnableSleepMode {
		_, _ = io.WriteString(w, s.sleepStateMetric())
	}
}

// modelCard is vLLM's ModelCard (protocol.py), field order included.
type modelCard struct {
	ID          string            `json:"id"`
	Object      string            `json:"object"`
	Created     int64             `json:"created"`
	OwnedBy     string            `json:"owned_by"`
	Root        string            `json:"root"`
	Parent      *string           `json:"parent"`
	MaxModelLen int               `json:"max_model_len"`
	Permission  []modelPermission `json:"permission"`
}

type modelPermission struct {
	ID                 string  `json:"id"`
	Object             string  `json:"object"`
	Created            int64   `json:"created"`
	AllowCreateEngine  bool    `json:"allow_create_engine"`
	AllowSampling      bool    `json:"allow_sampling"`
	AllowLogprobs      bool    `json:"allow_logprobs"`
	AllowSearchIndices bool    `json:"allow_search_indices"`
	AllowView          bool    `json:"allow_view"`
	AllowFineTuning    bool    `json:"allow_fine_tuning"`
	Organization       string  `json:"organization"`
	Group              *string `json:"group"`
	IsBlocking         bool    `json:"is_blocking"`
}

func (s *sim) handleModels(w http.ResponseWriter, _ *http.Request) {
	if s.o.Engine != engineVLLM {
		owner := map[string]string{engineSGLang: "sglang", engineLlamaCpp: "llamacpp"}[s.o.Engine]
		var data []map[string]any
		for _, name := range s.o.servedNames() {
			data = append(data, map[string]any{"id": name, "object": "model", "created": s.created, "owned_by": owner,
				"root": s.o.Model, "max_model_len": s.maxLen})
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
		return
	}
	var cards []modelCard
	for _, name := range s.o.servedNames() {
		cards = append(cards, modelCard{
			ID: name, Object: "model", Created: s.created, OwnedBy: "vllm", Root: s.o.Model,
			MaxModelLen: s.maxLen,
			Permission: []modelPermission{{
				ID: "modelperm-" + randomID(), Object: "model_permission", Created: s.created,
				AllowSampling: true, AllowLogprobs: true, AllowView: true, Organization: "*",
			}},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": cards})
}

// apiError is vLLM's ErrorResponse: {"error":{"message","type","param","code"}}.
func apiError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": code,
	}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"detail":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

// recorder captures the status for the uvicorn access line, which uvicorn
// writes when the response starts (so a long SSE stream is logged at once).
type recorder struct {
	http.ResponseWriter
	s      *sim
	r      *http.Request
	logged bool
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.logged {
		rec.logged = true
		rec.s.accessLog(rec.r, code)
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.logged {
		rec.WriteHeader(http.StatusOK)
	}
	return rec.ResponseWriter.Write(b)
}

func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is unused by the simulator but keeps the wrapper transparent.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := rec.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

func (rec *recorder) finish() {
	if !rec.logged {
		rec.WriteHeader(http.StatusOK)
	}
}

// accessLog writes `(APIServer pid=1) INFO:     172.17.0.1:41774 - "GET /health HTTP/1.1" 200 OK`.
func (s *sim) accessLog(r *http.Request, code int) {
	if s.o.DisableAccessLog {
		return
	}
	s.accessLogFor(r, code)
}
