package jsonrpc_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"aima/jsonrpc"
)

// FuzzDecodeRequest feeds arbitrary bytes to the parser and dispatcher, as
// one HTTP body and as stdio input: nothing panics, and every reply is a
// well-formed JSON-RPC response (or batch of them), or there is none.
func FuzzDecodeRequest(f *testing.F) {
	for _, tc := range protocolCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		``, ` `, `null`, `{}`, `[[]]`, `[{}]`, `[null]`, "\xff\xfe",
		`{"jsonrpc":"2.0","id":"\u00e9\ud800","method":"health.check"}`,
		`{"jsonrpc":"2.0","id":1e400,"method":"health.check"}`,
		`{"jsonrpc":"2.0","id":1,"method":"service.start","params":{"service_id":"s1","wait":true}}`,
		`{"jsonrpc":"2.0","id":1,"method":"service.create","params":{"model_id":"m","engine_type":"vllm","port":1.5}}`,
		`{"jsonrpc":"2.0","id":1,"method":"service.create","params":{"model_id":"m","engine_type":"vllm"}}` + "\n" + `garbage`,
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"health.check","method":"nope"}`,
	} {
		f.Add([]byte(s))
	}
	h := jsonrpc.Handler(newFake(nil, nil), jsonrpc.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/rpc", bytes.NewReader(data)))
		switch rec.Code {
		case http.StatusNoContent:
			if rec.Body.Len() != 0 {
				t.Fatalf("204 with a body: %q", rec.Body)
			}
		case http.StatusOK:
			checkWellFormed(t, bytes.TrimSpace(rec.Body.Bytes()))
		default:
			t.Fatalf("HTTP %d for %q", rec.Code, data)
		}

		var out bytes.Buffer
		if err := jsonrpc.Serve(t.Context(), bytes.NewReader(data), &out, newFake(nil, nil), jsonrpc.Options{}); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		for _, l := range splitLines(out.Bytes()) {
			if !isNotification(l) {
				checkWellFormed(t, l)
			}
		}
	})
}

// checkWellFormed checks a reply: a response object, or a non-empty array
// of them, each with jsonrpc "2.0", an id member, and exactly one of result
// and error.
func checkWellFormed(t *testing.T, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("reply is not valid JSON: %q", b)
	}
	var batch []json.RawMessage
	if json.Unmarshal(b, &batch) == nil {
		if len(batch) == 0 {
			t.Fatalf("empty batch reply")
		}
	} else {
		batch = []json.RawMessage{b}
	}
	for _, r := range batch {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r, &m); err != nil {
			t.Fatalf("response is not an object: %q", r)
		}
		_, hasID := m["id"]
		_, hasResult := m["result"]
		_, hasError := m["error"]
		if string(m["jsonrpc"]) != `"2.0"` || !hasID || hasResult == hasError {
			t.Fatalf("malformed response %q", r)
		}
	}
}

// isNotification reports whether b is a server notification: stdio
// carries them between responses.
func isNotification(b []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, hasID := m["id"]
	_, hasMethod := m["method"]
	return hasMethod && !hasID && string(m["jsonrpc"]) == `"2.0"`
}
