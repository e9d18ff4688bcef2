package jsonrpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/jsonrpc"
	"aima/tools"
)

// peakCaller runs every call for a moment and records how many ran at once.
type peakCaller struct {
	mu        sync.Mutex
	now, peak int
	calls     int
}

func (p *peakCaller) Call(ctx context.Context, _ tools.Op, _ json.RawMessage, _ tools.Reporter) (any, error) {
	p.mu.Lock()
	p.now++
	p.calls++
	p.peak = max(p.peak, p.now)
	p.mu.Unlock()
	select {
	case <-time.After(2 * time.Millisecond):
	case <-ctx.Done():
	}
	p.mu.Lock()
	p.now--
	p.mu.Unlock()
	return map[string]any{"status": "ok"}, nil
}

func (p *peakCaller) stats() (peak, calls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak, p.calls
}

func batch(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"health.check"}`, i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestBatchTooLarge: a batch over MaxBatch is one -32600 error and runs
// nothing; one of exactly MaxBatch is served.
func TestBatchTooLarge(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := &peakCaller{}
			opts := jsonrpc.Options{MaxBatch: 20}
			out := tr.send(t, p, opts, batch(21))
			if len(out) != 1 {
				t.Fatalf("%d replies, want 1", len(out))
			}
			m := decodeMsg(t, out[0])
			if m.Error == nil || m.Error.Code != jsonrpc.CodeInvalidRequest || !strings.Contains(m.Error.Message, "maximum of 20") {
				t.Fatalf("reply %s, want -32600 naming the maximum", out[0])
			}
			if _, calls := p.stats(); calls != 0 {
				t.Errorf("%d calls ran for a refused batch", calls)
			}
			out = tr.send(t, p, opts, batch(20))
			var replies []json.RawMessage
			if len(out) != 1 || json.Unmarshal(out[0], &replies) != nil || len(replies) != 20 {
				t.Fatalf("batch of 20: %s", out)
			}
		})
	}
}

// TestBatchConcurrencyIsBounded: the calls of a batch run at most
// BatchConcurrency at a time, and all are answered.
func TestBatchConcurrencyIsBounded(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := &peakCaller{}
			out := tr.send(t, p, jsonrpc.Options{}, batch(jsonrpc.DefaultMaxBatch))
			var replies []json.RawMessage
			if len(out) != 1 || json.Unmarshal(out[0], &replies) != nil || len(replies) != jsonrpc.DefaultMaxBatch {
				t.Fatalf("want %d replies in one array", jsonrpc.DefaultMaxBatch)
			}
			if peak, _ := p.stats(); peak > jsonrpc.DefaultBatchConcurrency {
				t.Errorf("%d calls of one batch ran at once, want at most %d", peak, jsonrpc.DefaultBatchConcurrency)
			}
		})
	}
}

// TestStdioInFlightCountsBatchElements: on one stdio connection, the calls
// of all batches together stay within MaxInFlight (a batch is not a way
// around the connection's limit).
func TestStdioInFlightCountsBatchElements(t *testing.T) {
	p := &peakCaller{}
	const lines, size, limit = 12, 40, 10
	var in strings.Builder
	for range lines {
		in.WriteString(batch(size) + "\n")
	}
	var out strings.Builder
	if err := jsonrpc.Serve(t.Context(), strings.NewReader(in.String()), &out, p, jsonrpc.Options{MaxInFlight: limit}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != lines {
		t.Fatalf("%d replies, want %d", n, lines)
	}
	peak, calls := p.stats()
	if calls != lines*size {
		t.Errorf("%d calls ran, want %d", calls, lines*size)
	}
	if peak > limit {
		t.Errorf("%d calls ran at once on one connection, want at most %d", peak, limit)
	}
}
