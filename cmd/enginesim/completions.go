package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// The OpenAI endpoints run in echo mode: a chat reply is the last user
// message, a completion is the prompt. That is deterministic, so tests can
// assert on content, token counts and metrics.

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
}

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	MaxTokens     *int            `json:"max_tokens"`
}

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	TotalTokens         int `json:"total_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	PromptTokensDetails any `json:"prompt_tokens_details"`
}

// generation is one choice to produce: the echoed text cut to max_tokens.
type generation struct {
	pieces []string // detokenized pieces; their concatenation is the reply
	reason string   // "stop" or "length"
}

// admit runs the checks every generation endpoint shares. It resolves the
// model name and reports false after writing an error response.
func (s *sim) admit(w http.ResponseWriter, r *http.Request, model *string, prompt int, maxTokens *int) bool {
	switch s.state.Load() {
	case stateDead:
		s.apiError(w, http.StatusInternalServerError, "InternalServerError", engineDeadMsg)
		return false
	case stateWedged: // the engine never answers: hold the request until the client or the server gives up
		select {
		case <-r.Context().Done():
		case <-s.stopping:
		}
		s.apiError(w, http.StatusInternalServerError, "InternalServerError", engineDeadMsg)
		return false
	}
	if s.sleepLevel.Load() != awake {
		// The simulator's choice: real vLLM gives no defined answer while
		// its weights are offloaded. Clients must POST /wake_up first
		// (SGLang: /resume_memory_occupation).
		msg := "The engine is sleeping; wake it with POST /wake_up."
		if s.o.Engine == engineSGLang {
			msg = "GPU memory is released; resume it with POST /resume_memory_occupation."
		}
		s.apiError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", msg)
		return false
	}
	if s.o.Engine == engineLlamaCpp {
		// llama-server serves its one model under any name, and counts
		// the context per slot.
		if prompt+derefOr(maxTokens, 0) > s.maxLen {
			s.apiError(w, http.StatusBadRequest, "exceed_context_size_error", fmt.Sprintf("the request exceeds the available context size (%d tokens), try increasing it", s.maxLen))
			return false
		}
		if *model == "" {
			*model = s.o.servedNames()[0]
		}
		return true
	}
	names := s.o.servedNames()
	if *model == "" {
		*model = names[0]
	}
	found := false
	for _, n := range names {
		found = found || n == *model
	}
	if !found {
		if s.o.Engine == engineSGLang {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{
				"message": fmt.Sprintf("The model '%s' does not exist", *model), "type": "invalid_request_error",
				"param": "model", "code": "model_not_found"}})
			return false
		}
		s.apiError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("The model `%s` does not exist.", *model))
		return false
	}
	if s.o.Engine == engineSGLang && prompt+derefOr(maxTokens, 0) > s.maxLen {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", fmt.Sprintf("Requested token count exceeds the model's maximum context length of %d tokens. You requested a total of %d tokens: %d tokens from the input messages and %d tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.", s.maxLen, prompt+derefOr(maxTokens, 0), prompt, derefOr(maxTokens, 0)))
		return false
	}
	if prompt > s.maxLen {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", fmt.Sprintf("This model's maximum context length is %d tokens. However, your request has %d input tokens. Please reduce the length of the input messages.", s.maxLen, prompt))
		return false
	}
	if maxTokens != nil && prompt+*maxTokens > s.maxLen {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", fmt.Sprintf("'max_tokens' or 'max_completion_tokens' is too large: %d. This model's maximum context length is %d tokens and your request has %d input tokens (%d > %d - %d).", *maxTokens, s.maxLen, prompt, *maxTokens, s.maxLen, prompt))
		return false
	}
	return true
}

func (s *sim) handleChat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "Invalid JSON body: "+err.Error())
		return
	}
	if len(req.Messages) == 0 {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "messages: Field required")
		return
	}
	prompt, reply := 2, ""
	for _, m := range req.Messages {
		text := contentText(m.Content)
		prompt += 4 + len(splitPieces(text))
		if m.Role == "user" {
			reply = text
		}
	}
	if reply == "" {
		reply = contentText(req.Messages[len(req.Messages)-1].Content)
	}
	maxTok := req.MaxCompletionTokens
	if maxTok == nil {
		maxTok = req.MaxTokens
	}
	if !s.admit(w, r, &req.Model, prompt, maxTok) {
		return
	}
	gens := []generation{generate(reply, maxTok)}
	s.respond(w, r, "chatcmpl-", "chat.completion", req.Model, prompt, gens, req.Stream, req.StreamOptions)
}

func (s *sim) handleCompletions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "Invalid JSON body: "+err.Error())
		return
	}
	prompts, ok := promptTexts(req.Prompt)
	if !ok {
		s.apiError(w, http.StatusBadRequest, "BadRequestError", "prompt: Field required (a string, a list of strings, or token ids)")
		return
	}
	prompt := 0
	var gens []generation
	for _, p := range prompts {
		prompt += max(1, len(splitPieces(p)))
		gens = append(gens, generate(p, req.MaxTokens))
	}
	if !s.admit(w, r, &req.Model, prompt, req.MaxTokens) {
		return
	}
	s.respond(w, r, "cmpl-", "text_completion", req.Model, prompt, gens, req.Stream, req.StreamOptions)
}

// respond schedules the request (it waits for one of the --max-num-seqs
// slots), writes the non-streaming body or the SSE stream, and records
// metrics. With SIM_TTFT/SIM_ITL it takes that long per token; a client
// that disconnects aborts the request (finished_reason "abort"), as vLLM
// aborts a request whose connection closed.
func (s *sim) respond(w http.ResponseWriter, r *http.Request, idPrefix, object, model string, prompt int, gens []generation, stream bool, so *streamOptions) {
	start := time.Now()
	gen := 0
	for _, g := range gens {
		gen += len(g.pieces)
	}
	blocks, ok := s.metrics.begin(r.Context(), prompt+gen)
	if !ok {
		return // the client left while the request waited
	}
	ttftDelay, itl := s.o.scale(s.o.TTFT), s.o.scale(s.o.ITL)
	// wait sleeps d (if any) and reports false when the client went away.
	var timer *time.Timer
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return r.Context().Err() == nil
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	aborted := false
	id, created := idPrefix+randomID(), time.Now().Unix()
	u := usage{PromptTokens: prompt, CompletionTokens: gen, TotalTokens: prompt + gen}
	chat := object == "chat.completion"
	var ttft time.Duration
	if !stream {
		if !wait(ttftDelay + time.Duration(max(0, gen-1))*itl) {
			s.metrics.end(blocks, prompt, 0, "abort", 0, time.Since(start))
			return
		}
		choices := make([]map[string]any, len(gens))
		for i, g := range gens {
			text := strings.Join(g.pieces, "")
			if chat {
				choices[i] = map[string]any{"index": i, "message": map[string]any{
					"role": "assistant", "content": text, "refusal": nil, "annotations": nil, "audio": nil,
					"function_call": nil, "tool_calls": []any{}, "reasoning_content": nil,
				}, "logprobs": nil, "finish_reason": g.reason, "stop_reason": nil}
			} else {
				choices[i] = map[string]any{"index": i, "text": text, "logprobs": nil,
					"finish_reason": g.reason, "stop_reason": nil, "prompt_logprobs": nil}
			}
		}
		ttft = time.Since(start)
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": object, "created": created, "model": model, "choices": choices,
			"usage": u, "service_tier": nil, "system_fingerprint": nil, "prompt_logprobs": nil,
			"kv_transfer_params": nil,
		})
	} else {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		chunkObject := object
		if chat {
			chunkObject = "chat.completion.chunk"
		}
		send := func(choices []map[string]any, u *usage) {
			if aborted {
				return
			}
			if ttft == 0 && !wait(ttftDelay) {
				aborted = true
				return
			}
			c := map[string]any{"id": id, "object": chunkObject, "created": created, "model": model, "choices": choices}
			if u != nil {
				c["usage"] = u
			}
			b, _ := json.Marshal(c) // only plain maps and strings: cannot fail
			fmt.Fprintf(w, "data: %s\n\n", b)
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			if ttft == 0 {
				ttft = time.Since(start)
			}
		}
		choice := func(i int, piece string, reason any) map[string]any {
			if chat {
				return map[string]any{"index": i, "delta": map[string]any{"content": piece}, "logprobs": nil, "finish_reason": reason}
			}
			return map[string]any{"index": i, "text": piece, "logprobs": nil, "finish_reason": reason, "stop_reason": nil}
		}
		for i, g := range gens {
			if chat {
				send([]map[string]any{{"index": i, "delta": map[string]any{"role": "assistant", "content": ""}, "logprobs": nil, "finish_reason": nil}}, nil)
			}
			for j, p := range g.pieces {
				if j > 0 && !aborted && !wait(itl) {
					aborted = true
				}
				send([]map[string]any{choice(i, p, nil)}, nil)
			}
			last := choice(i, "", g.reason)
			last["stop_reason"] = nil
			send([]map[string]any{last}, nil)
		}
		if so != nil && so.IncludeUsage {
			send([]map[string]any{}, &u)
		}
		if aborted {
			s.metrics.end(blocks, prompt, 0, "abort", ttft, time.Since(start))
			return
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
	reason := "stop"
	for _, g := range gens {
		if g.reason == "length" {
			reason = "length"
		}
	}
	s.metrics.end(blocks, prompt, gen, reason, ttft, time.Since(start))
}

// generate echoes text, cut to maxTokens pieces.
func generate(text string, maxTokens *int) generation {
	p := splitPieces(text)
	if maxTokens != nil && *maxTokens >= 0 && len(p) > *maxTokens {
		return generation{pieces: p[:*maxTokens], reason: "length"}
	}
	return generation{pieces: p, reason: "stop"}
}

// splitPieces is the simulator's tokenizer: each piece is leading whitespace
// plus a run of letters/digits or one other character, so pieces join back
// into the exact text (like BPE tokens carrying their leading space).
func splitPieces(text string) []string {
	var out []string
	var cur strings.Builder
	word := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
	runes := []rune(text)
	for i := 0; i < len(runes); {
		for i < len(runes) && unicode.IsSpace(runes[i]) {
			cur.WriteRune(runes[i])
			i++
		}
		if i == len(runes) {
			break
		}
		if word(runes[i]) {
			for i < len(runes) && word(runes[i]) {
				cur.WriteRune(runes[i])
				i++
			}
		} else {
			cur.WriteRune(runes[i])
			i++
		}
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 { // trailing whitespace joins the last piece
		if len(out) == 0 {
			return []string{cur.String()}
		}
		out[len(out)-1] += cur.String()
	}
	return out
}

// contentText flattens OpenAI message content: a string, or a list of
// parts of which the text parts count.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// promptTexts accepts the completions prompt forms: "text", ["a","b"],
// [1,2,3] or [[1,2],[3]] (token ids echo as "tok<ID>" pieces).
func promptTexts(raw json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many, true
	}
	ids := func(t []int) string {
		parts := make([]string, len(t))
		for i, id := range t {
			parts[i] = fmt.Sprintf(" tok%d", id)
		}
		return strings.Join(parts, "")
	}
	var toks []int
	if json.Unmarshal(raw, &toks) == nil && len(toks) > 0 {
		return []string{ids(toks)}, true
	}
	var batches [][]int
	if json.Unmarshal(raw, &batches) == nil && len(batches) > 0 {
		out := make([]string, len(batches))
		for i, b := range batches {
			out[i] = ids(b)
		}
		return out, true
	}
	return nil, false
}

func derefOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
