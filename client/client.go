// Package client is the HTTP client of the aima daemon, used by the CLI (a
// thin client) and by tests. It speaks the same /api/<group>/<verb> routes
// any script can use, and turns the daemon's JSON errors back into errs
// errors so the CLI maps kinds to exit codes exactly as the daemon decided.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"aima/errs"
	"aima/events"
	"aima/httpguard"
	"aima/tools"
)

// Client calls one daemon.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:9090
	HTTP    *http.Client
	Token   httpguard.Secret
	// Frontend, when set, names the front-end the calls come through
	// (tools.FrontendCLI, ...) in tools.FrontendHeader, so the daemon counts
	// a relayed call by where it came from.
	Frontend string
	// tokenErr is why the token from the environment could not be read;
	// every call returns it.
	tokenErr error
}

// New returns a client of the daemon at addr (host:port or a URL); it sends
// the token from AIMA_TOKEN or AIMA_TOKEN_FILE as its bearer token, if set.
// A token file that cannot be read fails every call with the reason.
func New(addr string) *Client {
	base := addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	tok, err := httpguard.TokenFromEnv(os.Getenv)
	// Relays (aima mcp, aima rpc) run several calls at once: keep their
	// connections for reuse rather than the default two per host.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &Client{BaseURL: strings.TrimRight(base, "/"), HTTP: &http.Client{Transport: tr}, Token: tok, tokenErr: err}
}

// Stream receives what a streaming call produces before its result.
type Stream struct {
	OnEvent func(events.Event)
	OnLog   func(tools.LogLine)
	OnDelta func(tools.ChatDelta)
}

// Call runs operation op (snake_case name) with input and returns the raw
// JSON output. With a non-nil stream, progress and log lines arrive there
// (Server-Sent Events) before the result.
func (c *Client) Call(ctx context.Context, op string, input any, stream *Stream) (json.RawMessage, error) {
	accept := ""
	if stream != nil {
		accept = "text/event-stream"
	}
	resp, err := c.do(ctx, op, input, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return readSSE(resp.Body, stream)
	}
	return c.readDocument(ctx, resp)
}

// CallWrite runs op asking for the representation accept (text/plain or
// application/json). An answer the daemon streams (a log: its lines
// written as they are read) is copied to w as it arrives, and CallWrite
// returns nil output; it ends with the error the daemon reported after the
// first line, if any. Any other answer is returned as by Call.
func (c *Client) CallWrite(ctx context.Context, op string, input any, accept string, w io.Writer) (json.RawMessage, error) {
	resp, err := c.do(ctx, op, input, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !streamed(resp) {
		return c.readDocument(ctx, resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errs.Wrap(errs.Unavailable, err, "reading from the aima daemon at %s", c.BaseURL)
	}
	if t := resp.Trailer.Get(ErrorTrailer); t != "" {
		return nil, decodeError(0, []byte(t))
	}
	return nil, nil
}

// ErrorTrailer is the trailer a streamed answer declares, carrying the
// error that ended it after its first line (httpapi.ErrorTrailer).
const ErrorTrailer = "Aima-Error"

// streamed: the answer is written as it is produced (it declares the
// error trailer).
func streamed(resp *http.Response) bool {
	_, ok := resp.Trailer[ErrorTrailer]
	return ok
}

// do sends op's input as a POST with the given Accept header.
func (c *Client) do(ctx context.Context, op string, input any, accept string) (*http.Response, error) {
	if c.tokenErr != nil {
		return nil, c.tokenErr
	}
	o, ok := tools.Lookup(op)
	if !ok {
		return nil, errs.Invalid("", "unknown operation %q", op)
	}
	body, err := json.Marshal(input)
	if err != nil {
		return nil, errs.Invalid("", "encoding input: %v", err)
	}
	url := c.BaseURL + "/api/" + o.Group() + "/" + o.Verb()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, errs.Invalid("", "%v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if c.Frontend != "" {
		req.Header.Set(tools.FrontendHeader, c.Frontend)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token.Reveal())
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	return resp, nil
}

// readDocument reads a whole JSON answer: the output, or the error.
func (c *Client) readDocument(ctx context.Context, resp *http.Response) (json.RawMessage, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(resp.StatusCode, raw)
	}
	if t := resp.Trailer.Get(ErrorTrailer); t != "" {
		return nil, decodeError(0, []byte(t))
	}
	return raw, nil
}

// transportError explains an unreachable daemon in one line.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial") {
		return errs.New(errs.Unavailable, "no aima daemon answers at %s; start one with `aima start` (or set --addr / AIMA_ADDR)", c.BaseURL)
	}
	return errs.Wrap(errs.Unavailable, err, "talking to the aima daemon at %s", c.BaseURL)
}

type errorBody struct {
	Error struct {
		Code    errs.Kind `json:"code"`
		Message string    `json:"message"`
		Field   string    `json:"field"`
	} `json:"error"`
}

func decodeError(status int, raw []byte) error {
	var b errorBody
	if err := json.Unmarshal(raw, &b); err != nil || b.Error.Code == "" {
		return errs.New(errs.Internal, "daemon answered HTTP %d: %s", status, strings.TrimSpace(string(raw)))
	}
	return &errs.Error{Kind: b.Error.Code, Msg: b.Error.Message, Field: b.Error.Field}
}

// readSSE reads progress/log events and returns the final result.
func readSSE(r io.Reader, stream *Stream) (json.RawMessage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var event string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "":
			payload := append([]byte(nil), data.Bytes()...)
			data.Reset()
			switch event {
			case "result":
				return payload, nil
			case "error":
				return nil, decodeError(0, payload)
			case "progress":
				if stream != nil && stream.OnEvent != nil {
					var ev events.Event
					if json.Unmarshal(payload, &ev) == nil {
						stream.OnEvent(ev)
					}
				}
			case "log":
				if stream != nil && stream.OnLog != nil {
					var l tools.LogLine
					if json.Unmarshal(payload, &l) == nil {
						stream.OnLog(l)
					}
				}
			case "delta":
				if stream != nil && stream.OnDelta != nil {
					var d tools.ChatDelta
					if json.Unmarshal(payload, &d) == nil {
						stream.OnDelta(d)
					}
				}
			}
			event = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "event stream from the daemon broke")
	}
	return nil, errs.New(errs.Unavailable, "the daemon closed the event stream before the result")
}

// Decode unmarshals a raw output into v.
func Decode(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding daemon output: %w", err)
	}
	return nil
}
