package gateway

import (
	"encoding/json"
	"testing"
)

// Each engine's own error body (as the simulator's personalities and the
// engines send them) comes out of /v1 as OpenAI's error object.
func TestEngineErrorBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"vllm", 404, `{"error":{"message":"The model ` + "`x`" + ` does not exist.","type":"NotFoundError","param":null,"code":404}}`,
			`{"message":"The model ` + "`x`" + ` does not exist.","type":"NotFoundError","param":null,"code":404}`},
		{"sglang flat", 400, `{"object":"error","message":"Requested token count exceeds the model's maximum context length","type":"BadRequestError","param":null,"code":400}`,
			`{"message":"Requested token count exceeds the model's maximum context length","type":"BadRequestError","param":null,"code":400}`},
		{"sglang model not found", 404, `{"error":{"message":"The model 'X' does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}}`,
			`{"message":"The model 'X' does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}`},
		{"llama loading", 503, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`,
			`{"message":"Loading model","type":"unavailable_error","param":null,"code":503}`},
		{"llama context", 400, `{"error":{"code":400,"message":"the request exceeds the available context size (512 tokens), try increasing it","type":"exceed_context_size_error"}}`,
			`{"message":"the request exceeds the available context size (512 tokens), try increasing it","type":"exceed_context_size_error","param":null,"code":400}`},
		{"fastapi detail", 404, `{"detail":"Not Found"}`, `{"message":"Not Found","type":"invalid_request_error","param":null,"code":404}`},
		{"unauthorized", 401, `{"error":"Unauthorized"}`, `{"message":"Unauthorized","type":"authentication_error","param":null,"code":401}`},
		{"plain text", 500, "Internal Server Error\n", `{"message":"Internal Server Error","type":"server_error","param":null,"code":500}`},
		{"empty", 502, "", `{"message":"Bad Gateway","type":"server_error","param":null,"code":502}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(engineError(tc.status, []byte(tc.body)))
		if err != nil || string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}
