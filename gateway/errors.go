package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"aima/errs"
	"aima/inference"
	"aima/services"
)

// errorBody is OpenAI's error JSON: {"error":{"message","type","param","code"}}.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    any     `json:"code"`
	// Similar lists a few model names that look like the one asked for
	// (model_not_found only); GET /v1/models lists them all.
	Similar []string `json:"similar_models,omitempty"`
}

// retryAfterSeconds is what a 503 for a model that cannot be reached yet
// tells clients to wait before trying again.
const retryAfterSeconds = 5

// mapError turns an error into its HTTP status and OpenAI error object.
// This is the one place the gateway maps error kinds.
func mapError(err error) (int, apiError) {
	var nf *inference.ModelNotFoundError
	if errors.As(err, &nf) {
		p := "model"
		return http.StatusNotFound, apiError{Message: nf.Error(), Type: "invalid_request_error", Param: &p, Code: "model_not_found", Similar: nf.Similar}
	}
	var se *inference.StreamError
	if errors.As(err, &se) {
		return http.StatusBadGateway, apiError{Message: se.Error(), Type: "server_error", Code: string(se.Reason)}
	}
	e := apiError{Message: err.Error()}
	if f := errs.FieldOf(err); f != "" {
		e.Param = &f
	}
	switch errs.KindOf(err) {
	case errs.InvalidArgument:
		e.Type, e.Code = "invalid_request_error", "invalid_argument"
		return http.StatusBadRequest, e
	case errs.NotFound:
		e.Type, e.Code = "invalid_request_error", "not_found"
		return http.StatusNotFound, e
	case errs.Conflict:
		e.Type, e.Code = "invalid_request_error", "conflict"
		return http.StatusConflict, e
	case errs.Unavailable:
		e.Type, e.Code = "server_error", "service_unavailable"
		return http.StatusServiceUnavailable, e
	case errs.DeadlineExceeded:
		e.Type, e.Code = "server_error", "timeout"
		return http.StatusGatewayTimeout, e
	case errs.Canceled:
		e.Type, e.Code = "invalid_request_error", "canceled"
		return 499, e
	}
	e.Type, e.Code = "server_error", "internal_error"
	return http.StatusInternalServerError, e
}

// writeError answers with the error's status and OpenAI error JSON; a
// refusal that may pass later (the service is starting, waking, or its
// queue is full) carries Retry-After.
func writeError(w http.ResponseWriter, err error) {
	status, e := mapError(err)
	var nr *services.NotReadyError
	if errors.As(err, &nr) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	writeOpenAIError(w, status, e)
}

func writeOpenAIError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, errorBody{Error: e})
}

// writeJSON encodes v before the status goes out, so a value that cannot
// be encoded is a 500 internal error, never a 200 with an empty body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		_, e := mapError(errs.Wrap(errs.Internal, err, "encoding the response"))
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: e})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
