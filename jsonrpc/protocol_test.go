package jsonrpc_test

import (
	"encoding/json"
	"strings"
	"testing"

	"aima/errs"
	"aima/jsonrpc"
)

// want describes one expected response.
type want struct {
	id    string // compact JSON of the echoed id
	code  int    // 0: a result
	kind  string // data.kind, for errors that carry data
	field string // data.field
	msg   string // a substring of the error message
}

var protocolCases = []struct {
	name  string
	in    string
	batch bool   // the reply is an array
	want  []want // nil and !batch: no reply at all
}{
	{name: "parse error", in: `{"jsonrpc":"2.0","method":"health.check","id":1`,
		want: []want{{id: "null", code: -32700}}},
	{name: "not an object", in: `1`, want: []want{{id: "null", code: -32600}}},
	{name: "string request", in: `"health.check"`, want: []want{{id: "null", code: -32600}}},
	{name: "wrong version", in: `{"jsonrpc":"1.0","id":1,"method":"health.check"}`,
		want: []want{{id: "1", code: -32600, msg: `"jsonrpc" must be "2.0"`}}},
	{name: "missing version", in: `{"id":"v","method":"health.check"}`,
		want: []want{{id: `"v"`, code: -32600}}},
	{name: "object id", in: `{"jsonrpc":"2.0","id":{},"method":"health.check"}`,
		want: []want{{id: "null", code: -32600, msg: "id must be"}}},
	{name: "boolean id", in: `{"jsonrpc":"2.0","id":true,"method":"health.check"}`,
		want: []want{{id: "null", code: -32600}}},
	{name: "method not a string", in: `{"jsonrpc":"2.0","id":1,"method":5}`,
		want: []want{{id: "1", code: -32600, msg: "method must be a string"}}},
	{name: "member names are case-sensitive", in: `{"jsonrpc":"2.0","ID":1,"Method":"health.check"}`,
		want: []want{{id: "null", code: -32600}}},
	{name: "unknown method", in: `{"jsonrpc":"2.0","id":1,"method":"service.explode"}`,
		want: []want{{id: "1", code: -32601, msg: `"service.explode"`}}},
	{name: "snake_case name is not a method", in: `{"jsonrpc":"2.0","id":1,"method":"health_check"}`,
		want: []want{{id: "1", code: -32601}}},
	{name: "params array", in: `{"jsonrpc":"2.0","id":1,"method":"service.status","params":["x"]}`,
		want: []want{{id: "1", code: -32602, kind: "invalid_argument", msg: "params must be an object"}}},
	{name: "params string", in: `{"jsonrpc":"2.0","id":1,"method":"service.status","params":"x"}`,
		want: []want{{id: "1", code: -32602, kind: "invalid_argument"}}},
	{name: "params wrong type", in: `{"jsonrpc":"2.0","id":1,"method":"service.create","params":{"model_id":"m","engine_type":"vllm","port":"x"}}`,
		want: []want{{id: "1", code: -32602, kind: "invalid_argument", field: "port", msg: `"port"`}}},
	{name: "params unknown field", in: `{"jsonrpc":"2.0","id":1,"method":"service.create","params":{"model_id":"m","engine_type":"vllm","colour":"red"}}`,
		want: []want{{id: "1", code: -32602, kind: "invalid_argument", field: "colour"}}},
	{name: "params missing required", in: `{"jsonrpc":"2.0","id":1,"method":"service.create","params":{}}`,
		want: []want{{id: "1", code: -32602, kind: "invalid_argument", field: "model_id"}}},
	{name: "domain error", in: `{"jsonrpc":"2.0","id":1,"method":"service.status","params":{"service_id":"missing"}}`,
		want: []want{{id: "1", code: -32004, kind: "not_found", msg: `service "missing" not found`}}},
	{name: "string id", in: `{"jsonrpc":"2.0","id":"abc","method":"health.check"}`, want: []want{{id: `"abc"`}}},
	{name: "number id", in: `{"jsonrpc":"2.0","id":7,"method":"health.check"}`, want: []want{{id: "7"}}},
	{name: "big number id echoed as given", in: `{"jsonrpc":"2.0","id":12345678901234567890,"method":"health.check"}`,
		want: []want{{id: "12345678901234567890"}}},
	{name: "fraction id echoed as given", in: `{"jsonrpc":"2.0","id":-1.50,"method":"health.check"}`, want: []want{{id: "-1.50"}}},
	{name: "null id", in: `{"jsonrpc":"2.0","id":null,"method":"health.check"}`, want: []want{{id: "null"}}},
	{name: "null params", in: `{"jsonrpc":"2.0","id":1,"method":"health.check","params":null}`, want: []want{{id: "1"}}},
	{name: "notification", in: `{"jsonrpc":"2.0","method":"health.check"}`},
	{name: "notification of an unknown method", in: `{"jsonrpc":"2.0","method":"nope"}`},
	{name: "notification with bad params", in: `{"jsonrpc":"2.0","method":"service.create","params":[1]}`},
	{name: "empty batch", in: `[]`, want: []want{{id: "null", code: -32600, msg: "empty batch"}}},
	{name: "batch with a parse error", in: `[{"jsonrpc":"2.0","id":1,"method":"health.check"},{"jsonrpc"]`,
		want: []want{{id: "null", code: -32700}}},
	{name: "invalid batch elements", in: `[1,2]`, batch: true,
		want: []want{{id: "null", code: -32600}, {id: "null", code: -32600}}},
	{name: "batch mixed with notifications", batch: true, in: `[` +
		`{"jsonrpc":"2.0","id":1,"method":"health.check"},` +
		`{"jsonrpc":"2.0","method":"health.check"},` +
		`{"jsonrpc":"2.0","id":"b","method":"nope"},` +
		`{"jsonrpc":"2.0","method":"nope"},` +
		`{"jsonrpc":"2.0","id":3,"method":"service.status","params":{"service_id":"missing"}},` +
		`{"foo":"bar"}]`,
		want: []want{{id: "1"}, {id: `"b"`, code: -32601}, {id: "3", code: -32004, kind: "not_found"}, {id: "null", code: -32600}}},
	{name: "notification-only batch", in: `[{"jsonrpc":"2.0","method":"health.check"},{"jsonrpc":"2.0","method":"service.status","params":{"service_id":"x"}}]`},
}

func TestProtocol(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range protocolCases {
				t.Run(tc.name, func(t *testing.T) {
					got := tr.send(t, newFake(nil, nil), jsonrpc.Options{}, tc.in)
					if tc.want == nil && !tc.batch {
						if len(got) != 0 {
							t.Fatalf("want no reply, got %q", got)
						}
						return
					}
					if len(got) != 1 {
						t.Fatalf("want one reply, got %d: %q", len(got), got)
					}
					var replies []json.RawMessage
					if tc.batch {
						if err := json.Unmarshal(got[0], &replies); err != nil {
							t.Fatalf("want a batch reply: %v: %s", err, got[0])
						}
					} else {
						replies = []json.RawMessage{got[0]}
					}
					if len(replies) != len(tc.want) {
						t.Fatalf("want %d responses, got %d: %s", len(tc.want), len(replies), got[0])
					}
					for i, w := range tc.want {
						checkResponse(t, replies[i], w)
					}
				})
			}
		})
	}
}

func checkResponse(t *testing.T, raw []byte, w want) {
	t.Helper()
	m := decodeMsg(t, raw)
	if !m.HasID {
		t.Fatalf("response without an id member: %s", raw)
	}
	if got := compact(t, string(m.ID)); got != w.id {
		t.Errorf("id %s, want %s: %s", got, w.id, raw)
	}
	if w.code == 0 {
		if m.Error != nil || m.Result == nil {
			t.Fatalf("want a result: %s", raw)
		}
		return
	}
	if m.Error == nil || m.Result != nil {
		t.Fatalf("want an error and no result: %s", raw)
	}
	if m.Error.Code != w.code {
		t.Errorf("code %d, want %d: %s", m.Error.Code, w.code, raw)
	}
	if !strings.Contains(m.Error.Message, w.msg) {
		t.Errorf("message %q lacks %q", m.Error.Message, w.msg)
	}
	switch {
	case w.kind == "" && m.Error.Data != nil:
		t.Errorf("protocol error with data: %s", raw)
	case w.kind != "" && m.Error.Data == nil:
		t.Errorf("want data.kind %q: %s", w.kind, raw)
	case w.kind != "" && (string(m.Error.Data.Kind) != w.kind || m.Error.Data.Field != w.field):
		t.Errorf("data %+v, want kind %q field %q", *m.Error.Data, w.kind, w.field)
	}
}

func TestReadOnlyHidesMutatingMethods(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			got := tr.send(t, newFake(nil, nil), jsonrpc.Options{ReadOnly: true},
				`[{"jsonrpc":"2.0","id":1,"method":"service.start","params":{"service_id":"s1"}},{"jsonrpc":"2.0","id":2,"method":"service.status","params":{"service_id":"s1"}}]`)
			var replies []json.RawMessage
			if len(got) != 1 || json.Unmarshal(got[0], &replies) != nil || len(replies) != 2 {
				t.Fatalf("want a batch of two: %q", got)
			}
			checkResponse(t, replies[0], want{id: "1", code: -32601, msg: "read-only"})
			checkResponse(t, replies[1], want{id: "2"})
		})
	}
	for _, m := range jsonrpc.Methods(true) {
		if m == "service.start" {
			t.Errorf("Methods(true) lists service.start")
		}
	}
}

func TestMethodsAreDotted(t *testing.T) {
	ms := jsonrpc.Methods(false)
	for _, want := range []string{"service.start", "model.list", "health.check"} {
		found := false
		for _, m := range ms {
			found = found || m == want
		}
		if !found {
			t.Errorf("Methods() lacks %s: %v", want, ms)
		}
	}
}

func TestCodeTable(t *testing.T) {
	table := map[string]int{
		"not_found": -32004, "conflict": -32009, "unavailable": -32003, "deadline_exceeded": -32008,
		"canceled": -32800, "invalid_argument": -32602, "internal": -32603, "something_new": -32603,
	}
	for kind, code := range table {
		if got := jsonrpc.CodeFor(errs.Kind(kind)); got != code {
			t.Errorf("CodeFor(%s) = %d, want %d", kind, got, code)
		}
	}
}
