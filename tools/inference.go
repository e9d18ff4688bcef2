package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"aima/events"
	"aima/inference"
)

// InferenceChatInput is one chat turn.
type InferenceChatInput struct {
	Model       string   `json:"model" jsonschema:"model name: a service's served model name or alias, its name or id, or a registered model id (see inference_models)"`
	Prompt      string   `json:"prompt" jsonschema:"the user message"`
	System      string   `json:"system,omitempty" jsonschema:"an optional system message"`
	MaxTokens   int      `json:"max_tokens,omitempty" jsonschema:"cap on generated tokens (default: the engine's)"`
	Temperature *float64 `json:"temperature,omitempty" jsonschema:"sampling temperature (default: the engine's); 0 is deterministic"`
}

// ChatDelta is a piece of an answer's text as it arrives, which
// inference_chat reports (a Reporter's Delta) before its result holds the
// whole answer. It is not a log line: no engine wrote it to its output.
type ChatDelta struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

func inferenceOps() []Op {
	return []Op{
		Declare(Spec[InferenceChatInput, inference.ChatResult]{
			Name:        "inference_chat",
			Description: "Chat with a model through aima's gateway: the request goes to the service that serves the model (the least busy ready one), exactly as an OpenAI client's request to /v1/chat/completions would. An on-demand service that is stopped is started, a sleeping one is woken, a swap-group member is swapped in; the call waits for that (reporting what it waits for as progress). The answer text streams as deltas (each a piece of text as it arrives) and the result holds the whole answer with token counts and time to first token. Use it to test a model right after service_create/service_start.",
			Annotations: Annotations{LongRunning: true},
			Positional:  "model",
			Run: func(ctx context.Context, dom *Domain, in InferenceChatInput, rep Reporter) (inference.ChatResult, error) {
				req := inference.ChatRequest{Model: in.Model, Prompt: in.Prompt, System: in.System, MaxTokens: in.MaxTokens, Temperature: in.Temperature}
				onDelta := func(piece string) {
					rep.Delta(ChatDelta{Time: time.Now(), Text: piece})
				}
				onWait := func(what string) {
					rep.Event(events.Event{Type: events.TypeMessage, Message: "model " + in.Model + ": " + what, Time: time.Now()})
				}
				return dom.Inference.Chat(ctx, req, onDelta, onWait)
			},
			Render: func(r inference.ChatResult) string { return r.Content },
		}),
		Declare(Spec[struct{}, List[inference.Model]]{
			Name:        "inference_models",
			Description: "List the model names inference requests may use (served model names and aliases), each with the service that answers it and that service's status: the same list as the gateway's GET /v1/models.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, dom *Domain, _ struct{}, _ Reporter) (List[inference.Model], error) {
				list, err := dom.Inference.Models(ctx)
				return listOf(list), err
			},
			Render: func(l List[inference.Model]) string {
				var b strings.Builder
				for _, m := range l.Items {
					fmt.Fprintf(&b, "%-32s %s  %s", m.ID, m.ServiceID, m.Status)
					if m.OnDemand {
						b.WriteString("  on-demand")
					}
					b.WriteByte('\n')
				}
				return strings.TrimSuffix(b.String(), "\n")
			},
		}),
	}
}
