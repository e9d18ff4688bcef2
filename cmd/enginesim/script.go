package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Each personality's start-up is a script: a table of steps (a log line
// at a point of a phase, or an action such as binding the port) run by one
// interpreter, with the personality's phases, failure texts and log format
// as data (vllm.go, sglang.go, llamacpp.go).

// who says which process or logger a line comes from; the personality's
// format turns it into the line's prefix.
type who int

const (
	raw      who = iota // no prefix (llama.cpp's loader, tqdm bars, tracebacks)
	mainProc            // SGLang's main process: "[2026-01-02 15:04:05] "
	tp0                 // SGLang's scheduler of TP rank 0: "[2026-01-02 15:04:05 TP0] "
	uvicorn             // uvicorn under SGLang: "[2026-01-02 15:04:05] INFO:     "
	vNone               // vLLM's logger before its process prefix: "INFO 01-02 15:04:05 [file.py:N] "
	vAPI                // vLLM's API server: "(APIServer pid=1) INFO 01-02 15:04:05 [file.py:N] "
	vEngine             // vLLM's engine core: "(EngineCore_DP0 pid=N) INFO ..."
)

// step is one entry of a start-up script.
type step struct {
	phase  string  // the phase whose clock places it ("" = right after the previous step)
	at     float64 // fraction of the phase
	who    who
	src    string // vLLM's logger source, e.g. "api_server.py:1839"
	text   string // the line, {name} placeholders filled from the sim's vars; "" for none
	action string // what happens after the line (see runScript)
	when   string // the step happens only if this holds (see holds); "" = always
}

// failScript is what the engine prints when a start-up fails one way,
// and its exit status.
type failScript struct {
	who   who
	lines []string
	code  int
}

// personality is the data of one table-driven engine.
type personality struct {
	phases   []phase
	startup  []step
	failures map[string]failScript
	shutdown []step           // printed on SIGTERM
	stream   func(w who) bool // true: the line goes to stdout
	vars     func(s *sim) map[string]string
	// failFuncs build failures whose text is code (vLLM's tracebacks);
	// code holds steps that are code (progress bars, vLLM's late listen):
	// they return the exit code and whether start-up goes on.
	failFuncs map[string]func(*sim) int
	code      map[string]func(*sim, context.Context) (int, bool)
}

func personalityOf(engine string) *personality {
	switch engine {
	case engineSGLang:
		return sglangPersonality
	case engineLlamaCpp:
		return llamaPersonality
	}
	return vllmPersonality
}

// holds evaluates a step's condition: "eager" (--enforce-eager, SGLang's
// --disable-cuda-graph), "fail:MODE" (--sim-fail says MODE), and "!" for
// the opposite.
func (s *sim) holds(when string) bool {
	if when == "" {
		return true
	}
	cond, neg := strings.CutPrefix(when, "!")
	var v bool
	switch {
	case cond == "eager":
		v = s.o.EnforceEager
	case strings.HasPrefix(cond, "fail:"):
		v = s.o.Fail == strings.TrimPrefix(cond, "fail:")
	}
	return v != neg
}

// phaseDur is the scaled duration of one of the personality's phases: a
// --sim-phase override, else its weight of --sim-startup.
func (s *sim) phaseDur(name string) time.Duration {
	if s.o.Engine == engineVLLM {
		return s.o.phaseDuration(name)
	}
	if d, ok := s.o.PhaseOverride[name]; ok {
		return s.o.scale(d)
	}
	for _, p := range s.p.phases {
		if p.name == name {
			if s.o.EnforceEager && name == "graphs" {
				return 0
			}
			return s.o.scale(time.Duration(p.weight * float64(s.o.Startup)))
		}
	}
	return 0
}

var placeholder = regexp.MustCompile(`\{(\w+|since:\w+)\}`)

// expand fills a line's placeholders; {elapsed} is the seconds since the
// current phase began.
func (s *sim) expand(text string, phaseStart time.Time) string {
	return placeholder.ReplaceAllStringFunc(text, func(m string) string {
		k := m[1 : len(m)-1]
		if k == "elapsed" {
			return fmt.Sprintf("%.2f", time.Since(phaseStart).Seconds())
		}
		if mark, ok := strings.CutPrefix(k, "since:"); ok {
			return fmt.Sprintf("%.2f", time.Since(s.marks[mark]).Seconds())
		}
		if v, ok := s.vars[k]; ok {
			return v
		}
		return m
	})
}

// emit writes one line of the personality's log.
func (s *sim) emit(w who, text string) { s.emitFrom(w, "", text) }

// emitFrom writes a line with vLLM's logger source (src), or the
// personality's own prefix.
func (s *sim) emitFrom(w who, src, text string) {
	switch w {
	case vNone:
		s.log.log(procNone, "INFO", src, text)
		return
	case vAPI:
		s.log.log(procAPI, "INFO", src, text)
		return
	case vEngine:
		s.log.log(procEngine, "INFO", src, text)
		return
	}
	now := s.log.now()
	var prefix string
	switch w {
	case mainProc:
		prefix = "[" + now.Format("2006-01-02 15:04:05") + "] "
	case tp0:
		prefix = "[" + now.Format("2006-01-02 15:04:05") + " TP0] "
	case uvicorn:
		prefix = "[" + now.Format("2006-01-02 15:04:05") + "] "
	}
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		b.WriteString(prefix + line + "\n")
	}
	if s.p.stream(w) {
		s.log.write(s.log.out, b.String())
	} else {
		s.log.write(s.log.err, b.String())
	}
}

// fail prints the failure script of mode and returns its exit status.
func (s *sim) fail(mode string, phaseStart time.Time) int {
	if fn, ok := s.p.failFuncs[mode]; ok {
		return fn(s)
	}
	f, ok := s.p.failures[mode]
	if !ok {
		return s.exitCode(1)
	}
	for _, l := range f.lines {
		w := f.who
		if rest, ok := strings.CutPrefix(l, "MAIN|"); ok {
			w, l = mainProc, rest
		}
		s.emit(w, s.expand(l, phaseStart))
	}
	return s.exitCode(f.code)
}

// scriptServer is the HTTP server a script starts at its listen step.
type scriptServer struct {
	srv    *http.Server
	served chan error
	addr   string
}

// runScript plays the personality's start-up and then serves. Actions:
//
//	listen        bind the port and serve (all routes answer the loading state)
//	fail:MODE     fail this way here when --sim-fail says MODE, or the model
//	              itself does (a missing model, a bad GGUF file)
//	warmup        SGLang's warmup: GET /get_model_info, POST /generate to itself
//	ready         the engine is ready (health turns 200)
func (s *sim) runScript(ctx context.Context) int {
	s.cursor = time.Now()
	var cur clock
	curPhase := ""
	var ss *scriptServer
	stopServer := func() {
		if ss != nil {
			s.stopOnce.Do(func() { close(s.stopping) })
			sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if err := ss.srv.Shutdown(sctx); err != nil {
				_ = ss.srv.Close()
			}
		}
	}
	for _, st := range s.p.startup {
		if !s.holds(st.when) {
			continue
		}
		if st.phase != "" && st.phase != curPhase {
			cur = clock{start: s.cursor, dur: s.phaseDur(st.phase)}
			s.cursor = cur.start.Add(cur.dur)
			curPhase = st.phase
		}
		if st.phase != "" && !cur.at(ctx, st.at) {
			stopServer()
			return 0
		}
		if st.text != "" {
			s.emitFrom(st.who, st.src, s.expand(st.text, cur.start))
		}
		mode, isFail := strings.CutPrefix(st.action, "fail:")
		switch {
		case strings.HasPrefix(st.action, "code:"):
			curPhase = "" // code steps run their own phase clocks
			if code, ok := s.p.code[strings.TrimPrefix(st.action, "code:")](s, ctx); !ok {
				stopServer()
				return code
			}
		case strings.HasPrefix(st.action, "mark:"):
			s.marks[strings.TrimPrefix(st.action, "mark:")] = time.Now()
		case isFail && (s.o.Fail == mode || s.modelProblem == mode):
			switch mode {
			case "hang":
				<-ctx.Done()
				stopServer()
				return 0
			case "exit":
				stopServer()
				return s.exitCode(1)
			}
			stopServer()
			return s.fail(mode, cur.start)
		case st.action == "listen":
			var code int
			if ss, code = s.listenScript(); ss == nil {
				return code
			}
		case st.action == "warmup":
			if !s.warmup(ctx, ss.addr) {
				stopServer()
				return s.fail("warmup", cur.start)
			}
		case st.action == "ready":
			s.loading.Store(false)
			s.created = time.Now().Unix()
		}
	}
	switch {
	case s.ln != nil: // vLLM: listening only now
		return s.serve(ctx, s.ln)
	case ss == nil:
		return s.exitCode(1)
	}
	return s.serveLoop(ctx, ss.srv, ss.served)
}

// listenScript binds the port (port-in-use fails here) and serves.
func (s *sim) listenScript() (*scriptServer, int) {
	if s.o.Fail == "port-in-use" {
		return nil, s.fail("port-in-use", time.Now())
	}
	ln, err := net.Listen("tcp", listenAddr(s.o))
	if err != nil {
		return nil, s.fail("port-in-use", time.Now())
	}
	s.vars["port"] = fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 30 * time.Second, ErrorLog: discardLog}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return &scriptServer{srv: srv, served: served, addr: "127.0.0.1:" + s.vars["port"]}, 0
}

// warmup is SGLang's _wait_and_warmup: wait for /get_model_info, then one
// generation. Its access lines appear in the log, as in SGLang's.
func (s *sim) warmup(ctx context.Context, addr string) bool {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	get, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/get_model_info", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(get)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	body := `{"text":"The capital city of France is","sampling_params":{"temperature":0,"max_new_tokens":8}}`
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/generate", strings.NewReader(body))
	if err != nil {
		return false
	}
	post.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(post)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
