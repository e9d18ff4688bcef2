package services

import (
	"context"
	"sync"
	"time"
)

// fakeServing is a serving layer for the lifecycle's unit tests: each
// service's requests in flight, waiting and last use are set by the test;
// Quiesce gives up at once when requests are in flight (as its caller's
// context had ended).
type fakeServing struct {
	mu       sync.Mutex
	inFlight map[string]int
	waiting  map[string]int
	lastUsed map[string]time.Time
	held     map[string]int
	quiesces map[string]int
}

func newFakeServing() *fakeServing {
	return &fakeServing{inFlight: map[string]int{}, waiting: map[string]int{}, lastUsed: map[string]time.Time{},
		held: map[string]int{}, quiesces: map[string]int{}}
}

func (f *fakeServing) setInFlight(id string, n int) { f.mu.Lock(); f.inFlight[id] = n; f.mu.Unlock() }
func (f *fakeServing) setWaiting(id string, n int)  { f.mu.Lock(); f.waiting[id] = n; f.mu.Unlock() }
func (f *fakeServing) setLastUsed(id string, t time.Time) {
	f.mu.Lock()
	f.lastUsed[id] = t
	f.mu.Unlock()
}

func (f *fakeServing) holds(id string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.held[id] }
func (f *fakeServing) quiesced(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.quiesces[id]
}

func (f *fakeServing) Figures(string) *Traffic { return nil }

func (f *fakeServing) Idle(id string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastUsed[id], f.inFlight[id] == 0 && f.waiting[id] == 0 && f.held[id] == 0
}

func (f *fakeServing) ClaimIdle(id string) (func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inFlight[id] > 0 || f.waiting[id] > 0 || f.held[id] > 0 {
		return nil, false
	}
	f.held[id]++
	return f.release(id), true
}

func (f *fakeServing) Quiesce(_ context.Context, id string, opts QuiesceOptions) (func(), int) {
	f.mu.Lock()
	f.held[id]++
	f.quiesces[id]++
	n := f.inFlight[id]
	f.mu.Unlock()
	if n > 0 && opts.InFlight != nil {
		opts.InFlight(n)
	}
	return f.release(id), n
}

func (f *fakeServing) SwapIn(context.Context, Service) (func(), error) { return func() {}, nil }

func (f *fakeServing) release(id string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.held[id]--
			f.mu.Unlock()
		})
	}
}
