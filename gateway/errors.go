package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"aima/errs"
	"aima/httperr"
	"aima/inference"
	"aima/serving"
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

// mapError turns an error into its HTTP status (httperr.Status) and
// OpenAI error object. This is the one place the gateway names error kinds.
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
	k := errs.KindOf(err)
	v, ok := openAIVocabulary[k]
	if !ok {
		k, v = errs.Internal, openAIVocabulary[errs.Internal]
	}
	e.Type, e.Code = v.typ, v.code
	return httperr.Status(k), e
}

// openAIVocabulary names each error kind in OpenAI's terms (its error
// "type" and "code"); the HTTP status comes from httperr's table, the one
// every HTTP layer of aima uses.
var openAIVocabulary = map[errs.Kind]struct{ typ, code string }{
	errs.InvalidArgument:  {"invalid_request_error", "invalid_argument"},
	errs.NotFound:         {"invalid_request_error", "not_found"},
	errs.Conflict:         {"invalid_request_error", "conflict"},
	errs.Unavailable:      {"server_error", "service_unavailable"},
	errs.DeadlineExceeded: {"server_error", "timeout"},
	errs.Canceled:         {"invalid_request_error", "canceled"},
	errs.Unauthenticated:  {"invalid_request_error", "unauthenticated"},
	errs.PermissionDenied: {"invalid_request_error", "permission_denied"},
	errs.Internal:         {"server_error", "internal_error"},
}

// writeError answers with the error's status and OpenAI error JSON; a
// refusal that may pass later (the service is starting, waking, or its
// queue is full) carries Retry-After.
func writeError(w http.ResponseWriter, err error) {
	status, e := mapError(err)
	var nr *serving.NotReadyError
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
