package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"aima/errs"
	"aima/tools"
)

// The prompts.
const (
	DiagnosePrompt = "diagnose-service"
	DeployPrompt   = "deploy-model"
)

// addPrompts registers the prompts, each gathering its facts through
// caller. deploy-model is left out in read-only mode: it leads to
// operations a read-only server does not offer.
func addPrompts(s *server.MCPServer, caller tools.Caller, readOnly bool) {
	s.AddPrompt(mcpgo.NewPrompt(DiagnosePrompt,
		mcpgo.WithPromptDescription("Diagnose an aima service: its status record (status, failure kind, reason), its last 200 log lines and its history of phases and status changes, with what to look for."),
		mcpgo.WithArgument("service_id", mcpgo.ArgumentDescription("service ID or name"), mcpgo.RequiredArgument()),
	), func(ctx context.Context, req mcpgo.GetPromptRequest) (*mcpgo.GetPromptResult, error) {
		res, err := diagnose(ctx, caller, req.Params.Arguments["service_id"])
		if err != nil {
			return nil, protocolError(err)
		}
		return res, nil
	})
	if readOnly {
		return
	}
	s.AddPrompt(mcpgo.NewPrompt(DeployPrompt,
		mcpgo.WithPromptDescription("Deploy a registered model: its record and the engines available, with the steps to create a service, start it, and check that it serves."),
		mcpgo.WithArgument("model_id", mcpgo.ArgumentDescription("model ID or name (model_list shows them)"), mcpgo.RequiredArgument()),
	), func(ctx context.Context, req mcpgo.GetPromptRequest) (*mcpgo.GetPromptResult, error) {
		res, err := deploy(ctx, caller, req.Params.Arguments["model_id"])
		if err != nil {
			return nil, protocolError(err)
		}
		return res, nil
	})
}

func text(s string) mcpgo.PromptMessage {
	return mcpgo.NewPromptMessage(mcpgo.RoleUser, mcpgo.NewTextContent(s))
}

// diagnose gathers a service's record, logs and events as messages.
func diagnose(ctx context.Context, caller tools.Caller, id string) (*mcpgo.GetPromptResult, error) {
	if id == "" {
		return nil, errs.Invalid("service_id", "service_id is required")
	}
	var record json.RawMessage
	if err := call(ctx, caller, "service_status", tools.ServiceRef{ServiceID: id}, &record, nil); err != nil {
		return nil, err
	}
	var s struct {
		ID, Name, Status, Phase, Failure, Reason string
		EngineType                               string `json:"engine_type"`
	}
	_ = json.Unmarshal(record, &s)
	tail := resourceLogLines
	var logs tools.LogsOutput
	logErr := call(ctx, caller, "service_logs", tools.ServiceLogsInput{ServiceID: s.ID, Tail: &tail, Timestamps: true}, &logs, nil)
	var history tools.EventsOutput
	evErr := call(ctx, caller, "service_events", tools.ServiceEventsInput{ServiceID: s.ID}, &history, nil)

	intro := fmt.Sprintf("Diagnose the aima service %s (%s, engine %s). It is %s", s.ID, s.Name, s.EngineType, s.Status)
	if s.Phase != "" {
		intro += " in phase " + s.Phase
	}
	if s.Failure != "" {
		intro += fmt.Sprintf(", failure kind %s", s.Failure)
	}
	if s.Reason != "" {
		intro += ": " + s.Reason
	}
	intro += ".\n\nBelow are its record, its last log lines and its history. Say what went wrong (or that nothing did), " +
		"quoting the engine's own error line when there is one, and what to change: engine args (service_create args), " +
		"the model, GPUs, memory, the start timeout. The failure kinds: timeout (phase says where), exited (exit_code), " +
		"oom, wedged, disappeared, interrupted, port_in_use, image_unavailable, runtime_error, runtime_unavailable, stop_failed, internal."
	msgs := []mcpgo.PromptMessage{text(intro), text("Service record (service_status):\n```json\n" + indent(record) + "\n```")}

	var b strings.Builder
	switch {
	case logErr != nil:
		fmt.Fprintf(&b, "The logs could not be read: %v", logErr)
	case len(logs.Lines) == 0:
		b.WriteString("The engine printed no log lines (no container has run yet, or it printed nothing).")
	default:
		fmt.Fprintf(&b, "Last %d log lines of the engine (service_logs):\n```\n", len(logs.Lines))
		for _, l := range logs.Lines {
			b.WriteString(tools.FormatLogLine(l, true))
			b.WriteByte('\n')
		}
		b.WriteString("```")
	}
	msgs = append(msgs, text(b.String()))

	b.Reset()
	if evErr != nil {
		fmt.Fprintf(&b, "The history could not be read: %v", evErr)
	} else {
		b.WriteString("History, oldest first (service_events):\n```\n")
		for _, e := range history.Items {
			line := e.Time.UTC().Format(time.RFC3339) + " run " + fmt.Sprint(e.Run) + " " + string(e.Type)
			for _, f := range []string{e.Status, e.Phase, e.Failure, e.Message} {
				if f != "" {
					line += " " + f
				}
			}
			if e.DurationMS != nil {
				line += fmt.Sprintf(" (%s)", time.Duration(*e.DurationMS)*time.Millisecond)
			}
			b.WriteString(line + "\n")
		}
		b.WriteString("```")
	}
	msgs = append(msgs, text(b.String()))
	return mcpgo.NewGetPromptResult("Diagnose service "+s.ID, msgs), nil
}

// deploy gathers a model's record and the engine catalog as messages.
func deploy(ctx context.Context, caller tools.Caller, id string) (*mcpgo.GetPromptResult, error) {
	if id == "" {
		return nil, errs.Invalid("model_id", "model_id is required")
	}
	var model json.RawMessage
	if err := call(ctx, caller, "model_get", tools.ModelRef{ModelID: id}, &model, nil); err != nil {
		return nil, err
	}
	var m struct{ ID, Name, Format string }
	_ = json.Unmarshal(model, &m)
	var engines json.RawMessage
	if err := call(ctx, caller, "engine_list", struct{}{}, &engines, nil); err != nil {
		return nil, err
	}
	engine := "vllm"
	if m.Format == "gguf" {
		engine = "llamacpp"
	}
	steps := fmt.Sprintf("Deploy the model %s (%s, format %s) with aima:\n"+
		"1. Pick an engine from the catalog below: %s suits a model of format %s (vllm and sglang take Hugging Face directories, llamacpp GGUF files).\n"+
		"2. service_create with model_id %q and engine_type; add args only when needed (e.g. --max-model-len=8192 when memory is short).\n"+
		"3. service_start with wait=true and a progressToken to follow the phases (pull, create, start, loading, health_check); a real vLLM start takes minutes.\n"+
		"4. If it fails, read the failure kind and reason in the result, then use the %s prompt or service_logs.\n"+
		"5. When it is running, service_metrics shows the engine's own figures and the endpoint serves the OpenAI API.",
		m.ID, m.Name, m.Format, engine, m.Format, m.ID, DiagnosePrompt)
	msgs := []mcpgo.PromptMessage{
		text(steps),
		text("Model record (model_get):\n```json\n" + indent(model) + "\n```"),
		text("Engine catalog (engine_list):\n```json\n" + indent(engines) + "\n```"),
	}
	return mcpgo.NewGetPromptResult("Deploy model "+m.ID, msgs), nil
}

func indent(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
