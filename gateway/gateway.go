// Package gateway serves aima's OpenAI-compatible API under /v1 on the
// daemon's listener: POST /v1/chat/completions, /v1/completions,
// /v1/embeddings and /v1/responses are forwarded to the service the
// request's model names (see package inference, which routes, starts on
// demand and accounts); GET /v1/models lists the models with their
// services' status. It is a front-end: it maps the wire format (streams
// passed through event by event, OpenAI's error JSON) and nothing else.
package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"aima/errs"
	"aima/inference"
)

// Path is where the gateway is mounted.
const Path = "/v1/"

// forwarded are the endpoints passed to engines.
var forwarded = []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"}

// Handler serves /v1.
type Handler struct {
	gw  *inference.Router
	log *slog.Logger
	mux *http.ServeMux
}

// New builds the /v1 handler over the inference gateway.
func New(gw *inference.Router, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{gw: gw, log: log, mux: http.NewServeMux()}
	for _, p := range forwarded {
		h.mux.HandleFunc("POST "+p, h.forward)
	}
	h.mux.HandleFunc("GET /v1/models", h.models)
	h.mux.HandleFunc("GET /v1/models/{model...}", h.model)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errs.NotFoundf("no route %s %s; aima's gateway serves POST %s and GET /v1/models", r.Method, r.URL.Path, strings.Join(forwarded, ", ")))
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// forward passes one request to its service and the answer back: a
// stream event by event, flushed as each arrives, with SSE comment lines
// (": starting, phase pull") while the service starts or wakes.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.gw.Options().MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeOpenAIError(w, http.StatusRequestEntityTooLarge, apiError{
				Message: fmt.Sprintf("the request body exceeds %d bytes", mbe.Limit), Type: "invalid_request_error", Code: "request_too_large"})
			return
		}
		writeError(w, errs.Invalid("body", "reading the request body: %v", err))
		return
	}
	stream := gjson.GetBytes(body, "stream").Bool()
	f, _ := w.(http.Flusher)
	started := false // a 200 event stream is under way
	startStream := func() {
		if started {
			return
		}
		started = true
		hd := w.Header()
		hd.Set("Content-Type", "text/event-stream; charset=utf-8")
		hd.Set("Cache-Control", "no-cache")
		hd.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
	}
	req := inference.Request{Endpoint: r.URL.Path, Body: body}
	if stream {
		req.OnWait = func(what string) {
			startStream()
			fmt.Fprintf(w, ": %s\n\n", what)
			if f != nil {
				f.Flush()
			}
		}
	}
	resp, err := h.gw.Do(r.Context(), req)
	if err != nil {
		if started {
			// Too late for a status code: the error travels as an event,
			// which OpenAI's SDKs raise as an error.
			_, e := mapError(err)
			b, _ := json.Marshal(errorBody{Error: e})
			fmt.Fprintf(w, "data: %s\n\n", b)
			return
		}
		writeError(w, err)
		return
	}
	defer resp.Close()
	if resp.Stream {
		startStream()
		if f != nil {
			f.Flush()
		}
		// Each event goes out as soon as nothing more has arrived (one
		// write for a burst that arrived together) and the last flush is
		// streamFlushGap old: one event at a time at any engine's pace.
		out := newPacedFlusher(w, f, streamFlushGap)
		for {
			ev, err := resp.Next()
			if errors.Is(err, io.EOF) {
				out.close()
				return
			}
			if err != nil {
				out.close()
				abortStream(w, f, err)
				return // the client went away
			}
			if err := out.write(ev, resp.Buffered()); err != nil {
				out.close()
				return
			}
		}
	}
	if started {
		// The engine refused a stream after the wait comments went out.
		b, _ := io.ReadAll(io.LimitReader(resp, 1<<20))
		b, _ = json.Marshal(errorBody{Error: engineError(resp.Code, b)})
		fmt.Fprintf(w, "data: %s\n\n", b)
		return
	}
	if resp.Code >= http.StatusBadRequest {
		// The engine's own error body, in any engine's dialect, as
		// OpenAI's error object.
		b, _ := io.ReadAll(io.LimitReader(resp, 1<<20))
		writeOpenAIError(w, resp.Code, engineError(resp.Code, b))
		return
	}
	if resp.ContentType != "" {
		w.Header().Set("Content-Type", resp.ContentType)
	}
	w.WriteHeader(resp.Code)
	if _, err := io.Copy(w, resp); err != nil {
		abortBody(err)
	}
}

// abortStream ends a stream the engine did not finish (see
// inference.StreamError): the error goes to the client as an OpenAI error
// event, which the SDKs raise, and the connection is cut without the
// chunked body's end, so even a client that ignores the event sees a
// truncated transfer, never a whole answer. Any other error (the client
// went away) leaves nobody to tell.
func abortStream(w http.ResponseWriter, f http.Flusher, err error) {
	var se *inference.StreamError
	if !errors.As(err, &se) {
		return
	}
	_, e := mapError(err)
	b, _ := json.Marshal(errorBody{Error: e})
	fmt.Fprintf(w, "data: %s\n\n", b)
	if f != nil {
		f.Flush()
	}
	panic(http.ErrAbortHandler)
}

// abortBody cuts the connection under a body the engine broke off: its
// status line went out already, so a cut is the one way left to tell the
// client the body is not whole.
func abortBody(err error) {
	var se *inference.StreamError
	if errors.As(err, &se) {
		panic(http.ErrAbortHandler)
	}
}

// modelObject is OpenAI's model object with aima's extension.
type modelObject struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	OwnedBy string          `json:"owned_by"`
	Aima    inference.Model `json:"aima"`
}

func toObject(m inference.Model) modelObject {
	return modelObject{ID: m.ID, Object: "model", Created: m.Created, OwnedBy: "aima", Aima: m}
}

// models is GET /v1/models: every model name a request may use, with the
// status and phase of the service that answers it.
func (h *Handler) models(w http.ResponseWriter, r *http.Request) {
	list, err := h.gw.Models(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeModelList(w, list)
}

// model is GET /v1/models/{model}.
func (h *Handler) model(w http.ResponseWriter, r *http.Request) {
	m, err := h.gw.Model(r.Context(), r.PathValue("model"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toObject(m))
}
