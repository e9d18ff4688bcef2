package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/fakesmi"
	"aima/services"
)

// TestSwapGroupConcurrentLoad: two on-demand members of one swap group on
// one GPU, both stopped, and ten concurrent requests for each at once. The
// first member starts and answers its requests; the second's requests make
// it swap in once the first has none waiting; and so on until all twenty
// are answered. Before the swap-group lock took contexts and the swap
// stopped holding it while it waited for the running member's waiters
// (which need that lock to get through their own start or wake), two
// requests were answered and the other eighteen hung until their clients
// gave up: here, until the context below ends.
func TestSwapGroupConcurrentLoad(t *testing.T) {
	fake := testenv.FakeNvidiaSMI(t, fakesmi.Spec{GPUs: []fakesmi.GPU{{MemoryMiB: 81920}}})
	g := newGW(t, fmt.Sprintf("gpu_attach: env\nnvidia_smi: %s\n", fake.Path))
	g.model(t, "qwen-p")
	g.model(t, "qwen-q")
	p := g.service(t, services.CreateSpec{ModelID: "qwen-p", OnDemand: true, SwapGroup: "g1", GPUs: "1"})
	q := g.service(t, services.CreateSpec{ModelID: "qwen-q", OnDemand: true, SwapGroup: "g1", GPUs: "1"})

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const each = 10
	errc := make(chan error, 2*each)
	var wg sync.WaitGroup
	for i := range 2 * each {
		model := []string{"qwen-p", "qwen-q"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			prompt := fmt.Sprintf("request %d for %s", i, model)
			c, err := g.chat(ctx, model, prompt)
			switch {
			case err != nil:
				errc <- fmt.Errorf("%s: %w", model, err)
			case c.Model != model || len(c.Choices) != 1 || c.Choices[0].Message.Content != prompt:
				errc <- fmt.Errorf("asked %s for %q, answered by %s: %+v", model, prompt, c.Model, c.Choices)
			}
		}()
	}
	wg.Wait()
	close(errc)
	failed := 0
	for err := range errc {
		failed++
		if failed <= 3 {
			t.Error(err)
		}
	}
	sp, sq := g.settled(t, p.ID), g.settled(t, q.ID)
	if failed > 0 {
		t.Fatalf("%d of %d requests failed; p: %s %+v, q: %s %+v", failed, 2*each, sp.Status, sp.Traffic, sq.Status, sq.Traffic)
	}
	if sp.Traffic.Requests != each || sq.Traffic.Requests != each {
		t.Errorf("requests p=%d q=%d, want %d each", sp.Traffic.Requests, sq.Traffic.Requests, each)
	}
	if up := func(s services.Status) bool { return s == services.StatusRunning || s == services.StatusCreating }; up(sp.Status) && up(sq.Status) {
		t.Errorf("both members up at the end: p %s, q %s", sp.Status, sq.Status)
	}
}
