package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"aima/errs"
	"aima/tools"
)

// dispatcher is the transport-independent core: it parses a message (one
// stdio line or one HTTP body), runs its calls and builds the reply. Both
// transports use it, so they answer byte for byte alike.
type dispatcher struct {
	caller    tools.Caller
	maxBatch  int
	batchConc int
	methods   map[string]tools.Op // dotted name -> op
	hidden    map[string]bool     // mutating ops hidden by read-only mode
	known     string              // method names, for -32601 messages
}

func newDispatcher(caller tools.Caller, opts Options) *dispatcher {
	d := &dispatcher{caller: caller, maxBatch: opts.maxBatch(), batchConc: opts.batchConcurrency(),
		methods: map[string]tools.Op{}, hidden: map[string]bool{}}
	for _, op := range tools.Visible(opts.ReadOnly) {
		d.methods[MethodName(op)] = op
	}
	for _, op := range tools.Registry() {
		if _, ok := d.methods[MethodName(op)]; !ok {
			d.hidden[MethodName(op)] = true
		}
	}
	names := make([]string, 0, len(d.methods))
	for n := range d.methods {
		names = append(names, n)
	}
	sort.Strings(names)
	d.known = strings.Join(names, ", ")
	return d
}

// MethodName is the JSON-RPC method of an operation: its group and verb
// joined by a dot ("service.start"), the form JSON-RPC clients expect.
func MethodName(op tools.Op) string { return op.Group() + "." + op.Verb() }

// Methods lists the methods a transport with these options serves, sorted.
func Methods(readOnly bool) []string {
	var out []string
	for _, op := range tools.Visible(readOnly) {
		out = append(out, MethodName(op))
	}
	sort.Strings(out)
	return out
}

// message is one parsed line or body: a single request or a batch.
type message struct {
	batch bool
	calls []*call
	reply []byte // set when the message as a whole failed (parse error, empty batch)
}

// silent reports whether the message gets no reply at all: it holds only
// well-formed notifications.
func (m *message) silent() bool {
	if m.reply != nil {
		return false
	}
	for _, c := range m.calls {
		if !c.notify {
			return false
		}
	}
	return true
}

// call is one request of a message.
type call struct {
	id     json.RawMessage // as given; nil means null
	notify bool            // well-formed request without an id: never answered
	op     tools.Op
	params json.RawMessage
	err    *Error // set when the request is answered with an error instead of run
}

func (d *dispatcher) parse(data []byte) *message {
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return &message{reply: errorResponse(nil, protocolError(CodeParseError, "parse error: the message is not valid JSON"))}
	}
	if data[0] != '[' {
		return &message{calls: []*call{d.parseCall(data)}}
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return &message{reply: errorResponse(nil, protocolError(CodeParseError, "parse error: %v", err))}
	}
	if len(elems) == 0 {
		return &message{reply: errorResponse(nil, protocolError(CodeInvalidRequest, "invalid request: empty batch"))}
	}
	if len(elems) > d.maxBatch {
		return &message{reply: errorResponse(nil, protocolError(CodeInvalidRequest,
			"invalid request: a batch of %d requests exceeds the maximum of %d; send smaller batches", len(elems), d.maxBatch))}
	}
	m := &message{batch: true, calls: make([]*call, len(elems))}
	for i, e := range elems {
		m.calls[i] = d.parseCall(e)
	}
	return m
}

// parseCall validates one request object (raw is valid JSON).
func (d *dispatcher) parseCall(raw json.RawMessage) *call {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return &call{err: protocolError(CodeInvalidRequest, "invalid request: a request must be a JSON object")}
	}
	var fields map[string]json.RawMessage // exact, case-sensitive member names
	if err := json.Unmarshal(raw, &fields); err != nil {
		return &call{err: protocolError(CodeInvalidRequest, "invalid request: %v", err)}
	}
	c := &call{}
	id, hasID := fields["id"]
	if hasID {
		if !validID(id) {
			return &call{err: protocolError(CodeInvalidRequest, "invalid request: id must be a string, a number or null")}
		}
		c.id = id
	}
	var version string
	if json.Unmarshal(fields["jsonrpc"], &version) != nil || version != Version {
		c.err = protocolError(CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`)
		return c
	}
	var method string
	if json.Unmarshal(fields["method"], &method) != nil {
		c.err = protocolError(CodeInvalidRequest, "invalid request: method must be a string")
		return c
	}
	// A well-formed request without an id is a notification: run, never answered.
	c.notify = !hasID
	op, ok := d.methods[method]
	switch {
	case !ok && d.hidden[method]:
		c.err = protocolError(CodeMethodNotFound, "method %q is not available: aima serves read-only methods only", method)
		return c
	case !ok:
		c.err = protocolError(CodeMethodNotFound, "method %q not found (methods: %s)", method, d.known)
		return c
	}
	c.op = op
	params := bytes.TrimSpace(fields["params"])
	switch {
	case len(params) == 0 || bytes.Equal(params, null):
		params = json.RawMessage("{}")
	case params[0] != '{':
		c.err = invalidParams("", "params must be an object (by-name parameters); got %s", jsonKind(params))
		return c
	}
	c.params = params
	return c
}

func validID(id json.RawMessage) bool {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return false
	}
	switch b := id[0]; {
	case b == '"', b == '-', b >= '0' && b <= '9':
		return true
	}
	return bytes.Equal(id, null)
}

func jsonKind(v json.RawMessage) string {
	switch v[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// run executes the message's calls and returns the reply, or nil when there
// is nothing to answer. A batch's calls run at most batchConc at a time,
// started in request order. emit receives the notifications of running
// calls; it may be nil to drop them. slots, if not nil, is the connection's
// budget of calls running at once: every call holds one while it runs.
func (d *dispatcher) run(ctx context.Context, m *message, emit func([]byte), slots chan struct{}) []byte {
	if m.reply != nil {
		return m.reply
	}
	if !m.batch {
		return d.exec(ctx, m.calls[0], emit, slots)
	}
	replies := make([][]byte, len(m.calls))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(d.batchConc, len(m.calls)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(m.calls); i = int(next.Add(1) - 1) {
				replies[i] = d.exec(ctx, m.calls[i], emit, slots)
			}
		})
	}
	wg.Wait()
	var out [][]byte
	for _, r := range replies {
		if r != nil {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return append(append([]byte{'['}, bytes.Join(out, []byte{','})...), ']')
}

// exec runs one call and returns its response (nil for a notification).
func (d *dispatcher) exec(ctx context.Context, c *call, emit func([]byte), slots chan struct{}) []byte {
	if c.err != nil {
		if c.notify {
			return nil
		}
		return errorResponse(c.id, c.err)
	}
	if slots != nil {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			if c.notify {
				return nil
			}
			return errorResponse(c.id, errorFor(ctx.Err()))
		}
	}
	if c.notify {
		emit = nil // the client cannot tell whose progress it would be
	}
	rep := &reporter{id: c.id, emit: emit}
	out, err := d.invoke(ctx, c, rep)
	rep.close()
	if c.notify {
		return nil
	}
	if err != nil {
		return errorResponse(c.id, errorFor(err))
	}
	result, err := marshal(out)
	if err != nil {
		return errorResponse(c.id, errorFor(errs.Wrap(errs.Internal, err, "encoding the result of %s", MethodName(c.op))))
	}
	return mustMarshal(Response{JSONRPC: Version, ID: idOrNull(c.id), Result: result})
}

// invoke calls the operation, turning a panic into an internal error so
// one bad call cannot take the connection (or the daemon) down.
func (d *dispatcher) invoke(ctx context.Context, c *call, rep tools.Reporter) (out any, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, errs.New(errs.Internal, "internal error in %s: %v", MethodName(c.op), v)
		}
	}()
	return d.caller.Call(ctx, c.op, c.params, rep)
}

func idOrNull(id json.RawMessage) json.RawMessage {
	if id == nil {
		return null
	}
	return id
}

func errorResponse(id json.RawMessage, e *Error) []byte {
	return mustMarshal(Response{JSONRPC: Version, ID: idOrNull(id), Error: e})
}
