package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Engine states after start-up. /health is 200 only in stateReady.
const (
	stateReady  int32 = iota
	stateDead         // crash-after: engine died, the watchdog will stop the server
	stateWedged       // wedge-after: engine hung, the process stays up
)

// sim is one simulated `vllm serve` process: the start-up timeline, then the
// OpenAI server. All state lives here (no globals), so tests can run several
// in one process.
type sim struct {
	o       *options
	log     *logger
	model   *modelInfo
	modelOK bool
	cursor  time.Time // planned end of the previous start-up phase

	// What the engine "allocated", derived from the options and config.json.
	maxLen   int
	kvGiB    float64
	kvTokens int
	// estMaxLen is vLLM's estimated maximum model length for the KV cache.
	estMaxLen int

	created  int64 // unix time the server became ready (ModelCard.created)
	state    atomic.Int32
	metrics  *metrics
	stopping chan struct{} // closed at shutdown: releases requests stuck on a wedged engine
	stopOnce sync.Once

	sleepMu    sync.Mutex   // one sleep or wake at a time
	sleepLevel atomic.Int32 // awake, weightsOffloaded or discardAll

	// The personality's script and its state.
	p            *personality
	marks        map[string]time.Time // named moments of the start-up, for {since:NAME}
	ln           net.Listener         // vLLM: the listener its start-up opened last
	vars         map[string]string    // the script's placeholders
	loading      atomic.Bool          // listening but not ready: SGLang warming up, llama-server loading
	modelProblem string               // failure mode the model itself causes ("" = none)
	hostMem      [][]byte             // --sim-host-mem, held
	problemLine  string               // the engine's words for it
	gguf         *ggufInfo            // llama-server: the GGUF header
}

// newSim resolves the model and precomputes the memory numbers the log
// prints. They cause the engine's own out-of-memory failures when the
// flags and the memory knobs ask for more than the GPU has (memcheck.go);
// the defaults never do.
func newSim(o *options, getenv func(string) (string, bool), stdout, stderr io.Writer, pid int) *sim {
	s := &sim{o: o, log: newLogger(stdout, stderr, pid), stopping: make(chan struct{})}
	if o.Engine == engineLlamaCpp {
		s.resolveGGUF()
	} else {
		s.model, s.modelOK = resolveModel(o, getenv)
	}
	s.maxLen = o.MaxModelLen
	if s.maxLen <= 0 {
		s.maxLen = s.model.MaxPos
	}
	ranks := float64(o.TP * o.PP)
	budget := o.GPUMemGiB * 0.9899 * o.GPUMemUtil // torch reports ~79.19 GiB of an 80 GB card
	s.kvGiB = max(budget-s.model.SizeGiB/ranks-2.17, 0.25)
	tokens := int(s.kvGiB * gib / (s.model.kvBytesPerToken() / ranks))
	s.kvTokens = max(tokens/16*16, 16)
	if o.Engine == engineVLLM {
		s.memoryProblem(s.vllmMemory(ranks))
	}
	s.metrics = newMetrics(o.servedNames()[0], s.kvTokens/blockSize, o.MaxNumSeqs)
	s.p, s.marks = personalityOf(o.Engine), map[string]time.Time{}
	s.loading.Store(o.Engine != engineVLLM)
	s.vars = s.p.vars(s)
	return s
}

// batchedTokens is vLLM's chunked-prefill budget for an API server: 8192 on
// large GPUs, 2048 otherwise, unless --max-num-batched-tokens says.
func (s *sim) batchedTokens() int {
	if s.o.MaxBatchedTokens > 0 {
		return s.o.MaxBatchedTokens
	}
	if s.o.GPUMemGiB >= 70 {
		return 8192
	}
	return 2048
}

// run is the whole process lifetime; it returns the exit code.
func (s *sim) run(ctx context.Context) int {
	s.holdHostMemory()
	return s.runScript(ctx)
}

// holdHostMemory allocates --sim-host-mem of host memory, touching every
// page so the kernel charges it, and keeps it for the process's life.
func (s *sim) holdHostMemory() {
	for range int(s.o.HostMemGiB * 1024) {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		s.hostMem = append(s.hostMem, b)
	}
}

// serve answers HTTP until a signal, or until the crash-after watchdog stops
// it. crash-after follows vLLM: the engine dies, /health turns 503, the
// watchdog (every 5 s) stops uvicorn and the process exits 0. wedge-after
// turns /health 503 and stays up.
func (s *sim) serve(ctx context.Context, ln net.Listener) int {
	s.created = time.Now().Unix()
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          discardLog,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return s.serveLoop(ctx, srv, served)
}

var discardLog = log.New(io.Discard, "", 0)

// serveLoop runs a serving engine until a signal or its scripted death.
func (s *sim) serveLoop(ctx context.Context, srv *http.Server, served <-chan error) int {
	o := s.o
	var failC, watchdogC, statsC, wedgeC <-chan time.Time
	if o.Fail == "crash-after" || o.Fail == "wedge-after" {
		t := time.NewTimer(o.scale(o.FailAfter))
		defer t.Stop()
		failC = t.C
	}
	if d := o.scale(10 * time.Second); !o.DisableLogStats && d > 0 && s.o.Engine == engineVLLM {
		t := time.NewTicker(d)
		defer t.Stop()
		statsC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			if s.o.Engine == engineVLLM {
				s.log.api("INFO", "launcher.py:99", "Shutting down FastAPI HTTP server.")
			}
			s.shutdown(srv)
			return 0
		case <-failC:
			if s.o.Engine != engineVLLM {
				// SGLang and llama-server: a crash takes the process
				// down at once, with the engine's own lines; a wedged
				// engine keeps its HTTP server up.
				if o.Fail == "crash-after" {
					s.state.Store(stateDead)
					_ = srv.Close()
					return s.fail("crash-after", time.Now())
				}
				s.state.Store(stateWedged)
				continue
			}
			if o.Fail == "crash-after" {
				s.state.Store(stateDead)
				s.logEngineDead()
				t := time.NewTimer(o.scale(5 * time.Second)) // vLLM's watchdog period
				defer t.Stop()
				watchdogC = t.C
			} else {
				s.state.Store(stateWedged)
				if d := o.scale(60 * time.Second); d > 0 {
					t := time.NewTicker(d)
					defer t.Stop()
					wedgeC = t.C
				}
			}
		case <-watchdogC:
			s.shutdown(srv)
			return s.exitCode(0)
		case <-wedgeC:
			s.logWedged()
		case <-statsC:
			s.metrics.logStats(s.log, o.scale(10*time.Second))
		case err := <-served:
			if s.o.Engine == engineVLLM {
				s.log.uvicorn("ERROR", "%v", err)
			}
			return s.exitCode(1)
		}
	}
}

// shutdown stops uvicorn: in-flight requests get up to 500 ms, so the
// process exits well within docker stop's patience.
func (s *sim) shutdown(srv *http.Server) {
	if s.o.Engine == engineVLLM {
		s.log.uvicorn("INFO", "Shutting down")
	}
	s.stopOnce.Do(func() { close(s.stopping) })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	if s.o.Engine != engineVLLM {
		for _, st := range s.p.shutdown {
			s.emit(st.who, s.expand(st.text, time.Now()))
		}
		return
	}
	s.log.uvicorn("INFO", "Waiting for application shutdown.")
	s.log.uvicorn("INFO", "Application shutdown complete.")
	s.log.uvicorn("INFO", "Finished server process [%d]", s.log.apiPID)
}
