// Command hostile is a hostile inference engine for aima's gateway tests:
// it starts like an engine (GET /health answers 200 at once, on the port
// given by --port, the flag every engine in aima's catalog takes) and then
// answers each POST /v1/chat/completions or /v1/completions with what the
// request's script says, however wrong: the engine simulator is the
// faithful vLLM, this is the engine that sends what it likes.
// testenv.HostileEngineImage packs it into a FROM scratch image; a test
// makes it an engine's image in the daemon's config.
//
// The script is the text of the request's last message (or its prompt):
// steps separated by spaces, run in order. For a stream ("stream": true):
//
//	chunks:N        N chat chunks with one word of content each
//	usage:IN:OUT    a chunk with no choices and usage {"prompt_tokens":IN,
//	                "completion_tokens":OUT}, IN and OUT written verbatim
//	                (negative, huge, fractional: whatever they are)
//	noline:BYTES    "data: " and BYTES bytes of 'a', with no newline at all
//	done            "data: [DONE]" and the blank line
//	die             cut the connection at once (no end of the chunked body),
//	                as an engine process that dies mid-answer does
//
// Without a die step the answer ends normally after the last step, so a
// stream without done ends without [DONE]. For a body that is not a stream,
// usage:IN:OUT sets the usage of the one chat.completion object and die cuts
// the connection after its first half.
//
// It imports no aima package and exits 0 on SIGTERM.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	port, served := flagValue("--port", "8000"), flagValue("--served-model-name", "hostile")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		os.Exit(0)
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /metrics", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"object":"list","data":[{"id":%q,"object":"model"}]}`, served)
	})
	answer := func(w http.ResponseWriter, r *http.Request) { serve(w, r, served) }
	mux.HandleFunc("POST /v1/chat/completions", answer)
	mux.HandleFunc("POST /v1/completions", answer)
	fmt.Println("hostile engine: Application startup complete.")
	if err := http.ListenAndServe(":"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
}

// flagValue is the value of an engine flag on the command line ("--port
// 8000" or "--port=8000"), or def. Every other argument (--model, --host,
// engine args) is taken and ignored.
func flagValue(name, def string) string {
	args := os.Args[1:]
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return def
}

// request is what the engine reads of a request.
type request struct {
	Stream   bool   `json:"stream"`
	Prompt   string `json:"prompt"`
	Messages []struct {
		Content string `json:"content"`
	} `json:"messages"`
}

func serve(w http.ResponseWriter, r *http.Request, model string) {
	var req request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	script := req.Prompt
	if n := len(req.Messages); n > 0 {
		script = req.Messages[n-1].Content
	}
	steps := strings.Fields(script)
	if !req.Stream {
		whole(w, steps, model)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	for _, step := range steps {
		verb, arg, _ := strings.Cut(step, ":")
		switch verb {
		case "chunks":
			n, _ := strconv.Atoi(arg)
			for i := range n {
				fmt.Fprintf(w, `data: {"id":"h","object":"chat.completion.chunk","model":%q,"choices":[{"index":0,"delta":{"content":"w%d "},"finish_reason":null}]}`+"\n\n", model, i)
			}
		case "usage":
			in, out, _ := strings.Cut(arg, ":")
			fmt.Fprintf(w, `data: {"id":"h","object":"chat.completion.chunk","model":%q,"choices":[],"usage":{"prompt_tokens":%s,"completion_tokens":%s}}`+"\n\n", model, in, out)
		case "noline":
			n, _ := strconv.Atoi(arg)
			fmt.Fprint(w, "data: ")
			chunk := []byte(strings.Repeat("a", 64<<10))
			for n > 0 {
				k := min(n, len(chunk))
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
		case "done":
			fmt.Fprint(w, "data: [DONE]\n\n")
		case "die":
			f.Flush()
			panic(http.ErrAbortHandler)
		}
		f.Flush()
	}
}

// whole answers a request that is not a stream.
func whole(w http.ResponseWriter, steps []string, model string) {
	usage, die := `{"prompt_tokens":1,"completion_tokens":1}`, false
	for _, step := range steps {
		verb, arg, _ := strings.Cut(step, ":")
		switch verb {
		case "usage":
			in, out, _ := strings.Cut(arg, ":")
			usage = fmt.Sprintf(`{"prompt_tokens":%s,"completion_tokens":%s}`, in, out)
		case "die":
			die = true
		}
	}
	body := fmt.Sprintf(`{"id":"h","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"an answer"},"finish_reason":"stop"}],"usage":%s}`, model, usage)
	w.Header().Set("Content-Type", "application/json")
	if !die {
		fmt.Fprint(w, body)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	fmt.Fprint(w, body[:len(body)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}
