package inference

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"aima/errs"
	"aima/events"
	"aima/services"
	"aima/serving"
)

// Request is one OpenAI-style request to forward.
type Request struct {
	// Endpoint is the engine path, e.g. /v1/chat/completions.
	Endpoint string
	// Body is the client's JSON body; its model field picks the service.
	Body []byte
	// OnWait, if set, is told what the request waits for while its
	// service starts, wakes or is swapped in (e.g. "starting, phase pull").
	OnWait func(what string)
}

// Response is the engine's answer, passed on as it arrives. A stream is
// read event by event with Next; any other body with Read. Close must be
// called once: it ends the request and records it.
type Response struct {
	Code        int
	ContentType string
	Service     services.Service
	// Stream is true for a Server-Sent Events body.
	Stream bool

	g         *Router
	ctx       context.Context // the client's
	adm       *serving.Admission
	body      io.ReadCloser
	br        *bufio.Reader
	buf       []byte
	began     time.Time
	model     string
	endpoint  string
	wantUsage bool // the client asked for the usage chunk itself

	firstAt   time.Time
	chunks    int
	tokensIn  int
	tokensOut int
	usageSeen bool
	done      bool   // the stream's [DONE] arrived
	note      string // what aima did not take from the engine's answer, and why
	tail      []byte // last bytes of a non-stream body, where usage is
	failed    error
	once      sync.Once
}

// Do routes the request, admits it (starting, waking or swapping in its
// service if need be; ctx and the gateway's max_wait bound the wait),
// rewrites the model to the name the engine serves and sends it. ctx is
// the client's: when it ends, the engine's request is cancelled at once.
func (g *Router) Do(ctx context.Context, req Request) (*Response, error) {
	began := time.Now()
	if d := nesting(req.Body); d > maxNesting {
		return nil, errs.Invalid("body", "the request body nests arrays and objects more than %d deep", maxNesting)
	}
	if !gjson.ValidBytes(req.Body) {
		return nil, errs.Invalid("body", "the request body is not valid JSON")
	}
	if err := checkKeys(req.Body); err != nil {
		return nil, err
	}
	fields := gjson.GetManyBytes(req.Body, "model", "stream", "stream_options.include_usage")
	if fields[0].Type != gjson.String {
		return nil, errs.Invalid("model", "model is required (a string)")
	}
	model := fields[0].Str
	s, err := g.Route(ctx, model)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, g.opts.MaxWait)
	opts := serving.AdmitOptions{MaxQueue: g.opts.MaxQueue, ReadOnly: g.opts.ReadOnly}
	if req.OnWait != nil {
		opts.OnWait = func(_ services.Service, what string) { req.OnWait(what) }
	}
	adm, err := g.sc.Admit(wctx, s.ID, opts)
	cancel()
	if err != nil {
		return nil, err
	}
	s = adm.Service
	r := &Response{Service: s, g: g, ctx: ctx, adm: adm, began: began, model: model, endpoint: req.Endpoint,
		Stream: fields[1].Bool(), wantUsage: fields[2].Bool()}
	body := req.Body
	if s.ServedModel != "" && s.ServedModel != model {
		if body, err = sjson.SetBytes(body, "model", s.ServedModel); err != nil {
			r.fail(err)
			return nil, errs.Wrap(errs.Internal, err, "rewrite model")
		}
	}
	if r.Stream && !r.wantUsage && usageOption[req.Endpoint] {
		// Ask for the usage chunk so the figures are the engine's own
		// counts; Next drops it again for a client that did not ask.
		if body, err = sjson.SetBytes(body, "stream_options.include_usage", true); err != nil {
			r.fail(err)
			return nil, errs.Wrap(errs.Internal, err, "request usage")
		}
	}
	up, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+req.Endpoint, bytes.NewReader(body))
	if err != nil {
		r.fail(err)
		return nil, errs.Wrap(errs.Internal, err, "build upstream request")
	}
	up.Header.Set("Content-Type", "application/json")
	if r.Stream {
		up.Header.Set("Accept", "text/event-stream")
	}
	resp, err := g.client.Do(up)
	if err != nil {
		r.fail(err)
		if ctx.Err() != nil {
			return nil, errs.Wrap(errs.Canceled, ctx.Err(), "request canceled")
		}
		return nil, errs.Wrap(errs.Unavailable, err, "the engine of service %s did not answer", s.ID)
	}
	r.Code, r.ContentType, r.body = resp.StatusCode, resp.Header.Get("Content-Type"), resp.Body
	r.Stream = r.Stream && resp.StatusCode == http.StatusOK && bytes.HasPrefix([]byte(r.ContentType), []byte("text/event-stream"))
	if r.Stream {
		r.br = bufio.NewReaderSize(resp.Body, 16<<10)
	}
	return r, nil
}

// fail ends a request that never reached the engine.
func (r *Response) fail(err error) {
	r.failed = err
	r.Close()
}

// Next returns the next Server-Sent Event of a stream, blank line
// included, exactly as the engine sent it; the slice is valid until the
// next call. It returns io.EOF after the last event, and a *StreamError
// when the stream did not end as an answer ends: the engine's connection
// broke (it died mid-answer), an event exceeded maxEvent, or a chat or
// completions stream ended without its [DONE].
func (r *Response) Next() ([]byte, error) {
	for {
		ev, err := r.readEvent()
		if errors.Is(err, io.EOF) && !r.done && usageOption[r.endpoint] {
			err = &StreamError{Service: r.Service.ID, Reason: StreamUnfinished}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.failed = r.streamError(err)
				err = r.failed
			}
			return nil, err
		}
		if r.account(ev) {
			return ev, nil
		}
	}
}

// Buffered reports whether more of the stream has already arrived, so a
// writer can hold its flush until it has passed on all that is there.
func (r *Response) Buffered() bool { return r.br != nil && r.br.Buffered() > 0 }

// maxEvent bounds one Server-Sent Event from an engine. A real event is a
// few hundred bytes (a token's chunk) to tens of KiB (a chunk with
// logprobs); an engine that sends more without ending the event would
// otherwise have the gateway buffer all of it.
const maxEvent = 8 << 20

// readEvent reads up to and including the blank line that ends an event,
// at most maxEvent bytes of it.
func (r *Response) readEvent() ([]byte, error) {
	if cap(r.buf) > 256<<10 {
		r.buf = nil // one big event does not pin its buffer for the rest of the stream
	}
	r.buf = r.buf[:0]
	for {
		line, err := r.br.ReadSlice('\n')
		r.buf = append(r.buf, line...)
		if len(r.buf) > maxEvent {
			return nil, &StreamError{Service: r.Service.ID, Reason: StreamEventTooLarge}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(bytes.TrimSpace(r.buf)) > 0 {
				return r.buf, nil
			}
			return nil, err
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			if len(r.buf) > len(line) {
				return r.buf, nil
			}
			r.buf = r.buf[:0] // a stray blank line between events
		}
	}
}

var dataPrefix = []byte("data: ")

// usageOption lists the endpoints whose streams take
// stream_options.include_usage (the Responses API reports usage anyway).
var usageOption = map[string]bool{"/v1/chat/completions": true, "/v1/completions": true}

// account updates the figures from one event and says whether the
// client gets it (a usage chunk only aima asked for is kept back).
func (r *Response) account(ev []byte) bool {
	i := bytes.Index(ev, dataPrefix)
	if i < 0 {
		return true // a comment or another field
	}
	data := ev[i+len(dataPrefix):]
	if bytes.HasPrefix(data, []byte("[DONE]")) {
		r.done = true
		return true
	}
	if r.firstAt.IsZero() {
		r.firstAt = time.Now()
	}
	r.chunks++
	if !bytes.Contains(data, []byte(`"usage"`)) {
		return true
	}
	u := gjson.GetManyBytes(data, "usage.prompt_tokens", "usage.completion_tokens", "choices.#")
	if !u[0].Exists() {
		return true
	}
	r.takeUsage(rawNumber(u[0]), rawNumber(u[1]))
	return r.wantUsage || u[2].Int() > 0
}

// Read reads a body that is not a stream.
func (r *Response) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if n > 0 {
		if r.firstAt.IsZero() {
			r.firstAt = time.Now()
		}
		r.tail = append(r.tail, p[:n]...)
		if len(r.tail) > 8<<10 {
			r.tail = append(r.tail[:0], r.tail[len(r.tail)-4<<10:]...)
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		r.failed = r.streamError(err)
		err = r.failed
	}
	return n, err
}

// Close ends the request: the engine's body is closed (cancelling it if
// unfinished), the request leaves the in-flight count and its record goes
// to the service's figures and the event bus.
func (r *Response) Close() {
	r.once.Do(func() {
		if r.body != nil {
			_ = r.body.Close()
		}
		if !r.Stream && !r.usageSeen {
			if in := promptTokensRE.FindSubmatch(r.tail); in != nil {
				out := []byte("0") // an embedding's usage has no completion_tokens
				if m := completionTokensRE.FindSubmatch(r.tail); m != nil {
					out = m[1]
				}
				r.takeUsage(string(in[1]), string(out))
			}
		}
		if r.Stream && !r.usageSeen {
			r.tokensOut = max(0, r.chunks-1) // one token a chunk, less the role chunk
		}
		var ttft time.Duration
		if !r.firstAt.IsZero() {
			ttft = r.firstAt.Sub(r.began)
		}
		failed := r.failed != nil || r.Code >= 400 || r.Code == 0
		r.adm.Done(serving.RequestFigures{TokensIn: r.tokensIn, TokensOut: r.tokensOut, TTFT: ttft, Failed: failed})
		rec := &events.Request{
			Endpoint: r.endpoint, Model: r.model, Code: r.Code, Stream: r.Stream,
			TokensIn: r.tokensIn, TokensOut: r.tokensOut,
			TTFTMs: ms(ttft), DurationMs: ms(time.Since(r.began)),
		}
		if r.failed != nil {
			rec.Error = r.failed.Error()
		}
		rec.Note = r.note
		msg := fmt.Sprintf("%s %s → %d, %d→%d tokens, %.0f ms", r.endpoint, r.model, r.Code, rec.TokensIn, rec.TokensOut, rec.DurationMs)
		if rec.Error != "" {
			msg += ": " + rec.Error
		}
		if rec.Note != "" {
			msg += " (" + rec.Note + ")"
		}
		r.g.m.Bus().Publish(events.Event{ServiceID: r.Service.ID, Run: r.Service.Run, Type: events.TypeRequest,
			Status: string(r.Service.Status), Message: msg, Request: rec})
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
