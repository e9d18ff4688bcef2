package gateway

import (
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// engineError turns an engine's own error body into OpenAI's error
// object, whatever the engine's dialect:
//
//	vLLM, OpenAI       {"error":{"message","type","param","code"}} (kept, fields completed)
//	llama-server       {"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}
//	SGLang             {"object":"error","message","type","param","code"}
//	FastAPI (both)     {"detail":"Not Found"}, or {"error":"Unauthorized"}
//	anything else      its text, as the message
//
// so clients of /v1 see one shape for every engine.
func engineError(status int, body []byte) apiError {
	j := gjson.ParseBytes(body)
	e := apiError{Code: status}
	msg := ""
	switch {
	case !gjson.ValidBytes(body):
		msg = strings.TrimSpace(string(body))
	case j.Get("error.message").Exists():
		msg = j.Get("error.message").String()
		e.Type = j.Get("error.type").String()
		if p := j.Get("error.param"); p.Type == gjson.String {
			s := p.String()
			e.Param = &s
		}
		if c := j.Get("error.code"); c.Exists() && c.Type != gjson.Null {
			e.Code = c.Value()
		}
	case j.Get("object").String() == "error" && j.Get("message").Exists():
		msg, e.Type = j.Get("message").String(), j.Get("type").String()
		if p := j.Get("param"); p.Type == gjson.String {
			s := p.String()
			e.Param = &s
		}
	case j.Get("detail").Exists():
		d := j.Get("detail")
		msg = d.String()
		if d.IsObject() || d.IsArray() {
			msg = d.Raw
		}
	case j.Get("error").Type == gjson.String:
		msg = j.Get("error").String()
	default:
		msg = strings.TrimSpace(string(body))
	}
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	if e.Type == "" {
		e.Type = errorTypeOf(status)
	}
	return e
}

// errorTypeOf is OpenAI's error type for a status.
func errorTypeOf(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}
