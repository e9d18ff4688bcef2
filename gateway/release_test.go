package gateway_test

import (
	"bufio"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"aima/services"
)

// TestIdleReleaseSleepWake: an idle service falls asleep after its idle
// timeout (±1 s), never while a stream is open, and a request through the
// gateway wakes it again.
func TestIdleReleaseSleepWake(t *testing.T) {
	g := newGW(t, "")
	g.model(t, "qwen-idle")
	idle := 2 * time.Second
	// 100 ms a token: a 30-token stream stays open for 3 s, longer than idle.
	s := g.service(t, services.CreateSpec{ModelID: "qwen-idle", IdleTimeout: idle, Env: []string{"SIM_ITL=2s"}})
	if !s.SleepMode {
		t.Fatal("a service with an idle timeout on vllm should run in sleep mode")
	}
	g.start(t, s.ID)

	g.mustChat(t, "qwen-idle", "short")
	ended := time.Now()
	g.waitStatus(t, s.ID, services.StatusSleeping, idle+3*time.Second)
	if took := time.Since(ended); took < idle-time.Second || took > idle+time.Second {
		t.Errorf("fell asleep %s after the last request, want %s ±1s", took, idle)
	}
	if r := g.get(t, s.ID).Reason; !strings.Contains(r, "idle for 2s") {
		t.Errorf("reason %q", r)
	}

	// Sleep → wake round trip through the gateway.
	began := time.Now()
	g.mustChat(t, "qwen-idle", "wake up")
	woke := g.get(t, s.ID)
	if woke.Status != services.StatusRunning || !strings.Contains(woke.Reason, "woke up") || woke.Run != 1 {
		t.Errorf("after the request: %s (%s), run %d; want running, woken, same run", woke.Status, woke.Reason, woke.Run)
	}
	t.Logf("request to a sleeping service answered in %s", time.Since(began))

	// A stream longer than the idle timeout keeps it awake.
	prompt := strings.TrimSpace(strings.Repeat("word ", 30))
	stream := g.ai.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: "qwen-idle", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	})
	var asleepDuring atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if g.get(t, s.ID).Status != services.StatusRunning {
				asleepDuring.Store(true)
			}
		}
	}()
	streamBegan := time.Now()
	var got strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			got.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	close(done)
	wg.Wait()
	if err := stream.Err(); err != nil || got.String() != prompt {
		t.Fatalf("stream: %q, %v", got.String(), err)
	}
	if open := time.Since(streamBegan); open < idle+500*time.Millisecond {
		t.Fatalf("the stream was open only %s; the test needs it longer than the idle timeout", open)
	}
	if asleepDuring.Load() {
		t.Error("the service was released while a stream was open")
	}
	ended = time.Now()
	g.waitStatus(t, s.ID, services.StatusSleeping, idle+3*time.Second)
	if took := time.Since(ended); took < idle-time.Second || took > idle+time.Second {
		t.Errorf("fell asleep %s after the stream ended, want %s ±1s", took, idle)
	}
}

// TestClientDisconnectCancelsUpstream: a client that goes away mid-stream
// makes the engine abort the request within a second.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	g := newGW(t, "")
	g.model(t, "qwen-dc")
	s := g.service(t, services.CreateSpec{ModelID: "qwen-dc", Env: []string{"SIM_ITL=4s"}}) // 200 ms a token
	s = g.start(t, s.ID)
	ctx, cancel := context.WithCancel(t.Context())
	resp := g.rawStream(ctx, t, "qwen-dc", strings.TrimSpace(strings.Repeat("token ", 50)))
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, `"content":"token"`) {
			break
		}
	}
	cancel()
	resp.Body.Close()
	gone := time.Now()
	want := `vllm:request_success_total{engine="0",finished_reason="abort",model_name="qwen-dc"} 1.0`
	for !strings.Contains(engineMetrics(t, s), want) {
		if time.Since(gone) > time.Second {
			t.Fatalf("the engine did not abort the request within 1s of the disconnect:\n%s", engineMetrics(t, s))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the engine aborted %s after the client disconnected", time.Since(gone))
	for g.get(t, s.ID).Traffic.InFlight != 0 {
		if time.Since(gone) > 2*time.Second {
			t.Fatalf("request still in flight: %+v", g.get(t, s.ID).Traffic)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSwapGroupAlternates: two on-demand members of one swap group answer
// interleaved requests, each from the right engine, and are never up at
// the same time.
func TestSwapGroupAlternates(t *testing.T) {
	g := newGW(t, "")
	g.model(t, "qwen-x")
	g.model(t, "qwen-y")
	x := g.service(t, services.CreateSpec{ModelID: "qwen-x", OnDemand: true, SwapGroup: "pair"})
	y := g.service(t, services.CreateSpec{ModelID: "qwen-y", OnDemand: true, SwapGroup: "pair"})

	var both atomic.Value
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		up := func(s services.Status) bool {
			return s == services.StatusRunning || s == services.StatusCreating || s == services.StatusUnhealthy
		}
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			sx, sy := g.get(t, x.ID).Status, g.get(t, y.ID).Status
			if up(sx) && up(sy) {
				both.Store(string(sx) + "/" + string(sy))
			}
		}
	}()
	ask := func(model string) {
		c := g.mustChat(t, model, "for "+model)
		if c.Model != model {
			t.Errorf("asked %s, answered by %s", model, c.Model)
		}
	}
	for _, m := range []string{"qwen-x", "qwen-y", "qwen-x", "qwen-y"} {
		ask(m)
		other := y.ID
		if m == "qwen-y" {
			other = x.ID
		}
		if st := g.get(t, other).Status; st == services.StatusRunning {
			t.Errorf("after a request for %s the other member is %s", m, st)
		}
	}
	// Interleaved concurrent requests.
	var rw sync.WaitGroup
	for i := range 6 {
		rw.Add(1)
		go func() {
			defer rw.Done()
			ask([]string{"qwen-x", "qwen-y"}[i%2])
		}()
	}
	rw.Wait()
	close(done)
	wg.Wait()
	if v := both.Load(); v != nil {
		t.Errorf("both members were up at once (%v)", v)
	}
	gx, gy := g.get(t, x.ID), g.get(t, y.ID)
	if gx.Traffic.Requests != 5 || gy.Traffic.Requests != 5 {
		t.Errorf("requests x=%d y=%d, want 5 each", gx.Traffic.Requests, gy.Traffic.Requests)
	}
	if gx.Run != 1 || gy.Run != 1 {
		t.Errorf("runs x=%d y=%d: a swap should sleep and wake, not restart", gx.Run, gy.Run)
	}
}
