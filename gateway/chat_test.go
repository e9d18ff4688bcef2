package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"aima/cli"
	"aima/client"
	"aima/events"
	"aima/inference"
	"aima/jsonrpc"
	"aima/services"
	"aima/tools"
)

// TestInferenceChatOperation: inference_chat, the operation, uses the same
// routing and on-demand start as /v1: over HTTP with SSE the answer
// streams as deltas and the wait as progress; `aima chat`
// prints the whole answer when stdout is not a terminal.
func TestInferenceChatOperation(t *testing.T) {
	g := newGW(t, "")
	g.model(t, "qwen-chat")
	s := g.service(t, services.CreateSpec{ModelID: "qwen-chat", OnDemand: true, Aliases: []string{"helper"}})

	c := client.New(g.URL)
	var pieces []string
	var waits []string
	raw, err := c.Call(t.Context(), "inference_chat", tools.InferenceChatInput{Model: "helper", Prompt: "deploy and test in one go"},
		&client.Stream{
			OnDelta: func(d tools.ChatDelta) { pieces = append(pieces, d.Text) },
			OnEvent: func(ev events.Event) { waits = append(waits, ev.Message) },
		})
	if err != nil {
		t.Fatal(err)
	}
	var res inference.ChatResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Content != "deploy and test in one go" || res.ServiceID != s.ID || res.TokensOut != 6 || res.TTFTMs <= 0 {
		t.Errorf("result %+v", res)
	}
	if strings.Join(pieces, "") != res.Content || len(pieces) < 2 {
		t.Errorf("streamed pieces %q", pieces)
	}
	if len(waits) == 0 || !strings.Contains(waits[0], "starting, phase") {
		t.Errorf("progress while waiting: %q", waits)
	}

	// Over JSON-RPC with SSE the pieces arrive as inference.delta
	// notifications carrying the request's id.
	rpc := `{"jsonrpc":"2.0","id":7,"method":"inference.chat","params":{"model":"helper","prompt":"one two three four"}}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.URL+"/rpc", strings.NewReader(rpc))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var deltas []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var n struct {
			Method string `json:"method"`
			Params struct {
				ID    int             `json:"id"`
				Delta tools.ChatDelta `json:"delta"`
			} `json:"params"`
		}
		if json.Unmarshal([]byte(data), &n) == nil && n.Method == jsonrpc.MethodDelta && n.Params.ID == 7 && !n.Params.Delta.Time.IsZero() {
			deltas = append(deltas, n.Params.Delta.Text)
		}
	}
	resp.Body.Close()
	if strings.Join(deltas, "") != "one two three four" || len(deltas) < 2 {
		t.Errorf("inference.delta notifications %q", deltas)
	}

	var out, errOut bytes.Buffer
	code := cli.Run(t.Context(), []string{"aima", "--addr", g.URL, "chat", "qwen-chat", "hello from the CLI"}, cli.IO{Stdout: &out, Stderr: &errOut})
	if code != 0 || out.String() != "hello from the CLI\n" {
		t.Errorf("aima chat: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	code = cli.Run(t.Context(), []string{"aima", "--addr", g.URL, "chat", "nope", "x"}, cli.IO{Stdout: &out, Stderr: &errOut})
	if code != cli.ExitCode("not_found") || !strings.Contains(errOut.String(), "does not exist") {
		t.Errorf("aima chat with an unknown model: exit %d, stderr %q", code, errOut.String())
	}
}
