package services

import (
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"
)

// inFlight counts the HTTP requests under way through it, and the most at
// once; each is held a moment so that requests sent together overlap.
type inFlight struct {
	next http.RoundTripper
	hold time.Duration

	mu      sync.Mutex
	now     int
	most    int
	perHost map[string]int
}

func (c *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.now++
	c.most = max(c.most, c.now)
	c.perHost[r.URL.Host]++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
	}()
	time.Sleep(c.hold)
	return c.next.RoundTrip(r)
}

// reset forgets what was counted (the starts' readiness probes).
func (c *inFlight) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.most, c.perHost = c.now, map[string]int{}
}

func (c *inFlight) counts() (most int, perHost map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.most, maps.Clone(c.perHost)
}

// A liveness round probes every running service, at most livenessParallel
// at a time (docs/decisions.md, "Liveness probes: 64 at a time"), and still
// in parallel.
func TestLivenessProbesAreBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.UnhealthyGrace = time.Hour })
	c := &inFlight{next: h.m.http.Transport, hold: 2 * time.Millisecond, perHost: map[string]int{}}
	h.m.http = &http.Client{Transport: c}
	h.run()
	n := livenessParallel + 16
	for range n {
		h.running(serving(), nil)
	}
	c.reset()
	h.awaitFact("every running service probed twice by the liveness loop", func() bool {
		_, per := c.counts()
		if len(per) < n {
			return false
		}
		for _, k := range per {
			if k < 2 {
				return false
			}
		}
		return true
	})
	most, _ := c.counts()
	if most > livenessParallel {
		t.Errorf("%d probes in flight at once; the bound is %d", most, livenessParallel)
	}
	if most < 2 {
		t.Errorf("the probes of a round ran one at a time (%d in flight at most)", most)
	}
}
