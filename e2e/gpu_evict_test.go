package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aima/cli"
	"aima/client"
	"aima/events"
	"aima/internal/testenv"
	"aima/services"
	"aima/tools"
)

// Cordon, drain and eviction on the real Docker engine with the simulator
// and the fake nvidia-smi's two 80 GiB GPUs: a vllm service declares 0.9 of
// a GPU, so two run at a time, one per GPU.

// chat sends one chat request through the gateway and returns its HTTP
// status and body.
func chat(t testing.TB, url, model, prompt string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": prompt}}})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: callTimeout}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(raw)
}

// eventMessages are the messages of the service's history.
func eventMessages(t testing.TB, p *inproc, id string) []string {
	t.Helper()
	var hist tools.EventsOutput
	p.call(t, "service_events", tools.ServiceEventsInput{ServiceID: id}, &hist)
	var out []string
	for _, h := range hist.Items {
		out = append(out, h.Event.Message)
	}
	return out
}

func hasMessage(msgs []string, parts ...string) bool {
	return slices.ContainsFunc(msgs, func(m string) bool {
		for _, p := range parts {
			if !strings.Contains(m, p) {
				return false
			}
		}
		return true
	})
}

// TestGPUCordonAndDrain: a cordoned GPU takes no new service (a start
// naming it is refused in schedule, model_fit says why, gpu_list and
// /metrics show it); a drain moves a running service to the other GPU while
// a client keeps sending requests, none of which fails.
func TestGPUCordonAndDrain(t *testing.T) {
	p := newInprocGPUs(t, testenv.TwoGPUs())

	var cr services.CordonResult
	p.call(t, "gpu_cordon", tools.GPUCordonInput{GPU: "1", Reason: "fan failing"}, &cr)
	if len(cr.Cordons) != 1 || cr.Node != "" {
		t.Fatalf("cordon %+v", cr)
	}
	c := cr.Cordons[0]
	if c.UUID == "" || c.Index != 1 || c.Reason != "fan failing" {
		t.Fatalf("cordon %+v", c)
	}
	var fit services.FitResult
	p.call(t, "model_fit", tools.ModelFitInput{ModelID: p.modelID, GPUs: "device=1"}, &fit)
	if fit.Fits || !strings.Contains(fit.Reason, "is cordoned (fan failing)") {
		t.Errorf("model_fit on the cordoned GPU: fits %v reason %q", fit.Fits, fit.Reason)
	}
	p.call(t, "model_fit", tools.ModelFitInput{ModelID: p.modelID}, &fit)
	if !fit.Fits || !slices.Equal(fit.FitsOn, []int{0}) {
		t.Errorf("model_fit: fits %v on %v, want GPU 0 only", fit.Fits, fit.FitsOn)
	}
	var inv tools.GPUListOutput
	p.call(t, "gpu_list", struct{}{}, &inv)
	if inv.Items[1].Cordon == nil || inv.Items[0].Cordon != nil {
		t.Errorf("gpu_list cordons: %+v / %+v", inv.Items[0].Cordon, inv.Items[1].Cordon)
	}
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("aima_gpu_cordoned{gpu=\"1\",uuid=%q} 1", c.UUID); !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}

	pinned := p.createService(t, tools.ServiceCreateInput{Name: "pinned", GPUs: "device=1"})
	if _, _, err := p.startWait(t, pinned.ID, 60); err == nil {
		t.Error("a start pinned to the cordoned GPU ran")
	}
	assertRefusedInSchedule(t, p.status(t, pinned.ID), nil, "cordoned (fan failing)")

	// Slow answers (40 tokens, 50 ms each at the tests' time scale) so
	// requests are in flight when the drain begins.
	svc := p.createService(t, tools.ServiceCreateInput{Name: "mover", Env: []string{"SIM_ITL=1s"}})
	if _, _, err := p.startWait(t, svc.ID, 120); err != nil {
		t.Fatal(err)
	}
	if s := p.status(t, svc.ID); s.GPULease == nil || s.GPULease.Indexes() != "0" {
		t.Fatalf("lease %+v, want GPU 0 (GPU 1 is cordoned)", s.GPULease)
	}
	p.call(t, "gpu_uncordon", tools.GPURef{GPU: "1"}, nil)

	prompt := strings.TrimSpace(strings.Repeat("word ", 40))
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body := chat(t, p.URL, "qwen-tiny", prompt)
				sent.Add(1)
				if code != 200 {
					failed.Add(1)
					t.Errorf("request during the drain: HTTP %d %s", code, body)
				}
			}
		}()
	}
	p.waitFor(t, svc.ID, time.Minute, "serving a request", func(s services.Service) bool { return s.Traffic != nil && s.Traffic.InFlight > 0 })

	var progress []events.Event
	var res services.DrainResult
	err = p.try(t, "gpu_drain", tools.GPUDrainInput{GPU: "0", Reason: "driver update"}, &res,
		&client.Stream{OnEvent: func(ev events.Event) { progress = append(progress, ev) }})
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	// A few more requests on the new GPU, then stop the clients.
	base := sent.Load()
	for sent.Load() < base+2 && failed.Load() == 0 {
		p.waitFor(t, svc.ID, time.Minute, "answering", func(s services.Service) bool { return sent.Load() >= base+2 })
	}
	close(stop)
	wg.Wait()

	if len(res.Moves) != 1 || res.Moves[0].Outcome != services.DrainMoved || res.Moves[0].To != "1" {
		t.Fatalf("drain result %+v, want the service moved to GPU 1", res)
	}
	if s := p.status(t, svc.ID); s.Status != services.StatusRunning || s.GPULease == nil || s.GPULease.Indexes() != "1" {
		t.Errorf("after the drain: %s on %+v", s.Status, s.GPULease)
	}
	if failed.Load() != 0 || sent.Load() < 3 {
		t.Errorf("%d of %d requests failed", failed.Load(), sent.Load())
	}
	var progressText []string
	for _, ev := range progress {
		progressText = append(progressText, ev.Message)
	}
	msgs := eventMessages(t, p, svc.ID)
	for _, want := range [][]string{{"GPU 0 is being drained", "request(s) in flight finish"}, {"stopping this service to start it again on GPU 1"}, {"moved off drained GPU 0: running on GPU 1"}} {
		if !hasMessage(msgs, want...) {
			t.Errorf("events lack %q:\n%s", want, strings.Join(msgs, "\n"))
		}
		if !hasMessage(progressText, want...) {
			t.Errorf("drain progress lacks %q", want)
		}
	}

	// The CLI: uncordon GPU 0, then drain GPU 1; the steps print as a
	// start --wait's do, and the service moves back to GPU 0.
	if code := cli.Run(t.Context(), []string{"aima", "--addr", p.URL, "gpu", "uncordon", "0"}, cli.IO{Stdout: io.Discard, Stderr: io.Discard}); code != 0 {
		t.Fatalf("gpu uncordon: exit %d", code)
	}
	var out, errOut strings.Builder
	if code := cli.Run(t.Context(), []string{"aima", "--addr", p.URL, "gpu", "drain", "1", "--reason", "reseat"}, cli.IO{Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("gpu drain: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"==> stopping", "==> schedule", "==> running", "moved off drained GPU 1: running on GPU 0"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("gpu drain progress lacks %q:\n%s", want, errOut.String())
		}
	}
	if !strings.Contains(out.String(), "cordoned (reseat)") || !strings.Contains(out.String(), "moved to GPU 0") {
		t.Errorf("gpu drain output:\n%s", out.String())
	}
}

// TestEvictionLRU: four on-demand evictable services on two GPUs, two at
// a time. Requests going round all four through /v1 are all answered: each
// that finds no room evicts exactly the least recently used idle service
// (put to sleep; it comes back on its next request, evicting in turn).
// Then, with the least recently used one busy, a fifth service evicts the
// idle one instead and the busy one's request completes.
func TestEvictionLRU(t *testing.T) {
	p := newInprocGPUs(t, testenv.TwoGPUs())
	names := []string{"m1", "m2", "m3", "m4", "m5"}
	svc := map[string]services.Service{}
	for _, n := range names {
		model := p.addModel(t, testenv.MakeModel(t, n))
		svc[n] = p.createService(t, tools.ServiceCreateInput{ModelID: model, Name: "evict-" + n, OnDemand: true, Evictable: true,
			Env: []string{"SIM_ITL=1s"}})
	}
	order := []string{"m1", "m2", "m3", "m4", "m1", "m2", "m3", "m4"}
	for i, n := range order {
		if code, body := chat(t, p.URL, n, "hello "+n); code != 200 {
			t.Fatalf("request %d (%s): HTTP %d %s", i, n, code, body)
		}
		if i < 2 {
			continue
		}
		// The least recently used is the one asked two requests before.
		lru := order[i-2]
		victim := p.status(t, svc[lru].ID)
		if victim.Status != services.StatusSleeping || victim.LastEviction == nil || victim.LastEviction.By != svc[n].ID {
			t.Fatalf("request %d (%s): %s is %s, last eviction %+v; want it evicted (asleep) by %s", i, n, lru, victim.Status, victim.LastEviction, svc[n].ID)
		}
		if !hasMessage(eventMessages(t, p, svc[n].ID), "made room on GPU", "service "+victim.ID, "least recently used") {
			t.Errorf("%s's events do not name %s as evicted", n, lru)
		}
		if !hasMessage(eventMessages(t, p, victim.ID), "evicted: service "+svc[n].ID) {
			t.Errorf("%s's events do not name %s as taking its GPU", lru, n)
		}
		for _, other := range names {
			if s := p.status(t, svc[other].ID); s.Failure != "" || (s.Traffic != nil && s.Traffic.Failed > 0) {
				t.Errorf("%s: failure %q, traffic %+v", other, s.Failure, s.Traffic)
			}
		}
	}

	// m3 and m4 run; m3 is the least recently used. Keep m3 busy.
	busyDone := make(chan int, 1)
	go func() {
		code, _ := chat(t, p.URL, "m3", strings.TrimSpace(strings.Repeat("busy ", 60)))
		busyDone <- code
	}()
	p.waitFor(t, svc["m3"].ID, time.Minute, "busy", func(s services.Service) bool { return s.Traffic != nil && s.Traffic.InFlight > 0 })
	if code, body := chat(t, p.URL, "m5", "hello m5"); code != 200 {
		t.Fatalf("m5: HTTP %d %s", code, body)
	}
	if code := <-busyDone; code != 200 {
		t.Errorf("the busy service's request: HTTP %d", code)
	}
	if s := p.status(t, svc["m3"].ID); s.Status != services.StatusRunning || (s.LastEviction != nil && s.LastEviction.By == svc["m5"].ID) {
		t.Errorf("busy m3: %s, last eviction %+v; want it left running", s.Status, s.LastEviction)
	}
	m4 := p.status(t, svc["m4"].ID)
	if m4.LastEviction == nil || m4.LastEviction.By != svc["m5"].ID {
		t.Errorf("idle m4: last eviction %+v, want by m5", m4.LastEviction)
	}

	// m4 sleeps bound to m5's GPU; m3 (on the other) is idle now. Keep m5
	// busy: m4's request cannot wake it where its engine is, so it is
	// started cold on the other GPU, evicting m3, and is answered.
	go func() {
		code, _ := chat(t, p.URL, "m5", strings.TrimSpace(strings.Repeat("busy ", 60)))
		busyDone <- code
	}()
	p.waitFor(t, svc["m5"].ID, time.Minute, "busy", func(s services.Service) bool { return s.Traffic != nil && s.Traffic.InFlight > 0 })
	if code, body := chat(t, p.URL, "m4", "hello again m4"); code != 200 {
		t.Fatalf("m4 whose GPU a busy service holds: HTTP %d %s", code, body)
	}
	if code := <-busyDone; code != 200 {
		t.Errorf("the busy m5's request: HTTP %d", code)
	}
	m4 = p.status(t, svc["m4"].ID)
	if m4.Status != services.StatusRunning || m4.GPULease == nil || m4.GPULease.Indexes() == p.status(t, svc["m5"].ID).GPULease.Indexes() {
		t.Errorf("m4: %s on %+v, want running on the GPU m5 does not hold", m4.Status, m4.GPULease)
	}
	if s := p.status(t, svc["m3"].ID); s.LastEviction == nil || s.LastEviction.By != svc["m4"].ID {
		t.Errorf("m3: last eviction %+v, want by m4", s.LastEviction)
	}
	if !hasMessage(eventMessages(t, p, svc["m4"].ID), "could not wake on GPU") {
		t.Errorf("m4's events do not say why it started cold")
	}
}
