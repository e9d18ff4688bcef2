package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSleepMode follows vLLM's dev-mode sleep endpoints: level 1 sleep,
// requests refused while asleep, the memory and timing log lines, the
// sleep-state metric, and the wake-up.
func TestSleepMode(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, map[string]string{"VLLM_SERVER_DEV_MODE": "1", "SIM_TIME_SCALE": "0.01"},
		modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--enable-sleep-mode")
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	if _, body := get(t, base+"/is_sleeping"); body != `{"is_sleeping":false}` {
		t.Errorf("is_sleeping before = %s", body)
	}
	if resp, _ := post(t, base+"/sleep?level=1", ""); resp.StatusCode != 200 {
		t.Fatalf("sleep: %d", resp.StatusCode)
	}
	if _, body := get(t, base+"/is_sleeping"); body != `{"is_sleeping":true}` {
		t.Errorf("is_sleeping after sleep = %s", body)
	}
	for _, want := range []string{"Sleep mode freed", "GiB memory is still in use.", "seconds to fall asleep."} {
		if !strings.Contains(r.out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.out)
		}
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, `sleep_state="weights_offloaded"} 1.0`) {
		t.Errorf("metrics do not show level 1 sleep:\n%s", body)
	}
	resp, err := http.Post(base+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("completion while asleep: %d, want 503", resp.StatusCode)
	}
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 200 {
		t.Errorf("/health while asleep: %d, want 200 (the process is alive)", resp.StatusCode)
	}
	if resp, _ := post(t, base+"/wake_up", ""); resp.StatusCode != 200 {
		t.Fatalf("wake_up: %d", resp.StatusCode)
	}
	if !strings.Contains(r.out.String(), "seconds to wake up tags {'weights', 'kv_cache'}.") {
		t.Errorf("no wake-up line:\n%s", r.out)
	}
	if _, body := get(t, base+"/is_sleeping"); body != `{"is_sleeping":false}` {
		t.Errorf("is_sleeping after wake = %s", body)
	}
	if resp, _ := post(t, base+"/wake_up", ""); resp.StatusCode != 200 || !r.out.waitFor("Executor is not sleeping.", time.Second) {
		t.Errorf("second wake_up: %d, want 200 and a warning", resp.StatusCode)
	}
}

// TestSleepNeedsDevModeAndFlag: without VLLM_SERVER_DEV_MODE the routes do
// not exist; without --enable-sleep-mode a sleep is a 500.
func TestSleepNeedsDevModeAndFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want int
	}{
		{map[string]string{"SIM_TIME_SCALE": "0"}, []string{"--enable-sleep-mode"}, 404},
		{map[string]string{"SIM_TIME_SCALE": "0", "VLLM_SERVER_DEV_MODE": "1"}, nil, 500},
	} {
		port := freePort(t)
		r := startSim(t, tc.env, append([]string{modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port)}, tc.args...)...)
		if !r.out.waitFor("Application startup complete.", 3*time.Second) {
			t.Fatalf("never ready:\n%s", r.err)
		}
		if resp, _ := post(t, fmt.Sprintf("http://127.0.0.1:%d/sleep?level=1", port), ""); resp.StatusCode != tc.want {
			t.Errorf("env %v args %v: sleep = %d, want %d", tc.env, tc.args, resp.StatusCode, tc.want)
		}
	}
}

// TestStreamAbort: with a per-token latency, a client that disconnects
// mid-stream aborts the request at once (counted as finished_reason abort).
func TestStreamAbort(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, map[string]string{"SIM_TIME_SCALE": "1", "SIM_STARTUP": "0", "SIM_ITL": "200ms"},
		modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--served-model-name", "qwen")
	if !r.out.waitFor("Application startup complete.", 5*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/completions",
		strings.NewReader(`{"prompt":"one two three four five six seven eight nine ten","stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(time.Second)
	for {
		_, body := get(t, base+"/metrics")
		if strings.Contains(body, `vllm:request_success_total{engine="0",finished_reason="abort",model_name="qwen"} 1.0`) &&
			strings.Contains(body, `vllm:num_requests_running{engine="0",model_name="qwen"} 0.0`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("abort not recorded within 1s:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
