package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/tidwall/gjson"

	"aima/errs"
)

// ChatRequest is one chat turn for Chat.
type ChatRequest struct {
	Model       string
	Prompt      string
	System      string
	MaxTokens   int      // 0: the engine's default
	Temperature *float64 // nil: the engine's default
}

// ChatResult is the whole answer.
type ChatResult struct {
	Model        string  `json:"model" jsonschema:"the model name asked for"`
	ServiceID    string  `json:"service_id" jsonschema:"the service that answered"`
	Content      string  `json:"content" jsonschema:"the assistant's answer"`
	FinishReason string  `json:"finish_reason,omitempty" jsonschema:"stop, or length when max_tokens cut it"`
	TokensIn     int     `json:"tokens_in" jsonschema:"prompt tokens"`
	TokensOut    int     `json:"tokens_out" jsonschema:"generated tokens"`
	TTFTMs       float64 `json:"ttft_ms" jsonschema:"time to first token in milliseconds, including any start or wake"`
	DurationMs   float64 `json:"duration_ms" jsonschema:"whole request in milliseconds"`
}

// Chat sends one chat turn through the same routing, on-demand start and
// accounting as the HTTP gateway, streaming the answer: onDelta gets each
// piece of text as it arrives, onWait what the request waits for.
func (g *Router) Chat(ctx context.Context, in ChatRequest, onDelta, onWait func(string)) (ChatResult, error) {
	if in.Prompt == "" {
		return ChatResult{}, errs.Invalid("prompt", "prompt is required")
	}
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	body := map[string]any{"model": in.Model, "stream": true}
	msgs := []message{}
	if in.System != "" {
		msgs = append(msgs, message{"system", in.System})
	}
	body["messages"] = append(msgs, message{"user", in.Prompt})
	if in.MaxTokens > 0 {
		body["max_tokens"] = in.MaxTokens
	}
	if in.Temperature != nil {
		body["temperature"] = *in.Temperature
	}
	raw, _ := json.Marshal(body) // plain maps and strings: cannot fail
	began := time.Now()
	resp, err := g.Do(ctx, Request{Endpoint: "/v1/chat/completions", Body: raw, OnWait: onWait})
	if err != nil {
		return ChatResult{}, err
	}
	defer resp.Close()
	res := ChatResult{Model: in.Model, ServiceID: resp.Service.ID}
	if !resp.Stream {
		b, _ := io.ReadAll(io.LimitReader(resp, 1<<20))
		msg := gjson.GetBytes(b, "error.message").Str
		if msg == "" {
			msg = string(bytes.TrimSpace(b))
		}
		return res, errs.New(engineErrorKind(resp.Code), "the engine answered HTTP %d: %s", resp.Code, msg)
	}
	var text bytes.Buffer
	for {
		ev, err := resp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, errs.Wrap(errs.Canceled, ctx.Err(), "chat canceled")
			}
			return res, errs.Wrap(errs.Unavailable, err, "reading the answer")
		}
		i := bytes.Index(ev, dataPrefix)
		if i < 0 {
			continue
		}
		data := ev[i+len(dataPrefix):]
		if bytes.HasPrefix(data, []byte("[DONE]")) {
			break
		}
		f := gjson.GetManyBytes(data, "choices.0.delta.content", "choices.0.finish_reason", "error.message")
		if f[2].Str != "" {
			return res, errs.New(errs.Unavailable, "the engine failed mid-answer: %s", f[2].Str)
		}
		if piece := f[0].Str; piece != "" {
			if res.TTFTMs == 0 {
				res.TTFTMs = ms(time.Since(began))
			}
			text.WriteString(piece)
			if onDelta != nil {
				onDelta(piece)
			}
		}
		if f[1].Str != "" {
			res.FinishReason = f[1].Str
		}
	}
	resp.Close()
	res.Content = text.String()
	res.TokensIn, res.TokensOut = resp.tokensIn, resp.tokensOut
	res.DurationMs = ms(time.Since(began))
	return res, nil
}

// engineErrorKind maps an engine's HTTP error status to an error kind.
func engineErrorKind(code int) errs.Kind {
	switch {
	case code == 404:
		return errs.NotFound
	case code == 400 || code == 422:
		return errs.InvalidArgument
	case code == 408 || code == 504:
		return errs.DeadlineExceeded
	case code >= 500 || code == 429:
		return errs.Unavailable
	}
	return errs.Internal
}
