package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"aima/engines"
	"aima/events"
	"aima/gateway"
	"aima/inference"
	"aima/models"
	"aima/services"
	"aima/serving"
	"aima/state"
)

// TestErrorsInOpenAIFormat checks the refusals that need no engine: each
// is OpenAI's error JSON with the right status.
func TestErrorsInOpenAIFormat(t *testing.T) {
	t.Parallel()
	store := state.NewMemory()
	cat, _ := engines.NewCatalog(nil)
	m := services.NewManager(store, nil, events.NewBus(), cat, models.NewRegistry(store), services.Options{})
	t.Cleanup(m.Close)
	sc := serving.New(m, serving.Options{})
	t.Cleanup(sc.Close)
	srv := httptest.NewServer(gateway.New(inference.New(m, sc, inference.Options{MaxBody: 1024}), nil))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, param              string
	}{
		{"not JSON", "POST", "/v1/chat/completions", `{"model":`, 400, "invalid_argument", "body"},
		{"no model", "POST", "/v1/chat/completions", `{"messages":[]}`, 400, "invalid_argument", "model"},
		{"not an object", "POST", "/v1/chat/completions", `["model"]`, 400, "invalid_argument", "body"},
		{"model twice", "POST", "/v1/chat/completions", `{"model":"qb","messages":[],"model":"x"}`, 400, "invalid_argument", "model"},
		{"model twice, once escaped", "POST", "/v1/chat/completions", `{"model":"qb","\u006dodel":"x"}`, 400, "invalid_argument", "model"},
		{"stream twice", "POST", "/v1/completions", `{"stream":false,"model":"x","stream":true}`, 400, "invalid_argument", "stream"},
		{"include_usage twice", "POST", "/v1/completions", `{"model":"x","stream_options":{"include_usage":false,"include_usage":true}}`, 400, "invalid_argument", "stream_options.include_usage"},
		{"unknown model", "POST", "/v1/completions", `{"model":"x","prompt":"hi"}`, 404, "model_not_found", "model"},
		{"too large", "POST", "/v1/embeddings", `{"model":"x","input":"` + strings.Repeat("a", 2000) + `"}`, 413, "request_too_large", ""},
		{"unknown route", "POST", "/v1/images/generations", `{}`, 404, "not_found", ""},
		{"unknown model by id", "GET", "/v1/models/nope", ``, 404, "model_not_found", "model"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    string  `json:"code"`
			} `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		param := ""
		if body.Error.Param != nil {
			param = *body.Error.Param
		}
		if err != nil || resp.StatusCode != tc.status || body.Error.Code != tc.code || param != tc.param || body.Error.Message == "" || body.Error.Type == "" {
			t.Errorf("%s: %d %+v (%v); want %d code %s param %q", tc.name, resp.StatusCode, body.Error, err, tc.status, tc.code, tc.param)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Object string `json:"object"`
		Data   []any  `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || list.Object != "list" || list.Data == nil || len(list.Data) != 0 {
		t.Errorf("empty model list: %+v %v", list, err)
	}
}

// A body nested millions deep (under max_body) is refused: gjson's
// validation recursed once per level and overflowed the goroutine stack, a
// fatal error that took the whole daemon (here, the test process) down.
func TestDeeplyNestedBodyIsRefused(t *testing.T) {
	t.Parallel()
	store := state.NewMemory()
	cat, _ := engines.NewCatalog(nil)
	m := services.NewManager(store, nil, events.NewBus(), cat, models.NewRegistry(store), services.Options{})
	t.Cleanup(m.Close)
	sc := serving.New(m, serving.Options{})
	t.Cleanup(sc.Close)
	srv := httptest.NewServer(gateway.New(inference.New(m, sc, inference.Options{}), nil))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"30 MB of nesting", `{"model":"x","a":` + strings.Repeat("[", 15<<20) + strings.Repeat("]", 15<<20) + `}`, 400},
		{"513 levels", `{"model":"x","a":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`, 400},
		{"512 levels, brackets in strings not counted", `{"model":"x","s":"[[[\\\"[[","a":` + strings.Repeat("[", 511) + strings.Repeat("]", 511) + `}`, 404},
	} {
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Message, Code string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: HTTP %d %+v, want %d", tc.name, resp.StatusCode, body.Error, tc.status)
		}
	}
}
