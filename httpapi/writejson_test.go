package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"aima/httperr"

	"aima/errs"
)

type failingMarshaler struct{}

func (failingMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("cannot") }

// failingWriter is a streamed document that fails after writing part of
// itself (after bytes), or before anything (0).
type failingWriter struct{ after int }

func (f failingWriter) WriteJSON(w io.Writer) error {
	if f.after > 0 {
		_, _ = w.Write([]byte(strings.Repeat(" ", f.after)))
	}
	return errors.New("cannot")
}

// A response that cannot be encoded is never a 200: a 500 internal error
// when nothing was sent yet, else a connection cut short.
func TestWriteJSONEncodeFailureIsNeverSuccess(t *testing.T) {
	var v any
	s := &Server{mux: http.NewServeMux(), log: slog.New(slog.DiscardHandler)}
	s.handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, v) }))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for name, val := range map[string]any{
		"NaN":             struct{ P float64 }{math.NaN()},
		"infinity":        map[string]any{"power_w": math.Inf(1)},
		"failing marshal": failingMarshaler{},
		"stream, at once": failingWriter{},
	} {
		v = val
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		var body httperr.Body
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || err != nil || body.Error.Code != errs.Internal || !strings.Contains(body.Error.Message, "encoding the response") {
			t.Errorf("%s: %d %+v %v", name, resp.StatusCode, body, err)
		}
	}
	v = failingWriter{after: 64 << 10}
	resp, err := http.Get(srv.URL)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("a stream that failed midway ended as a complete %d answer", resp.StatusCode)
	}
}
