package tools_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"aima/errs"
	"aima/tools"
)

func mustLookup(t *testing.T, name string) tools.Op {
	t.Helper()
	op, ok := tools.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q): not found", name)
	}
	return op
}

func TestDecodeNoArguments(t *testing.T) {
	t.Parallel()
	list := mustLookup(t, "service_list").InputSchema()
	empty := mustLookup(t, "engine_list").InputSchema()
	for _, raw := range []string{"", "   \n\t", "null", " null ", "{}", " { } "} {
		var in tools.ServiceListInput
		if err := tools.Decode(json.RawMessage(raw), list, &in); err != nil || in.Status != "" {
			t.Errorf("Decode(%q) into ServiceListInput = %+v, %v; want zero, nil", raw, in, err)
		}
		var e tools.Empty
		if err := tools.Decode(json.RawMessage(raw), empty, &e); err != nil {
			t.Errorf("Decode(%q) into Empty = %v, want nil", raw, err)
		}
	}
	var e tools.Empty
	if err := tools.Decode(nil, empty, &e); err != nil {
		t.Errorf("Decode(nil) = %v", err)
	}
}

func TestDecodeServiceCreate(t *testing.T) {
	t.Parallel()
	schema := mustLookup(t, "service_create").InputSchema()
	huge := `{"model_id":"` + strings.Repeat("m", tools.MaxInputBytes) + `","engine_type":"vllm"}`
	tests := []struct {
		name      string
		raw       string
		wantField string // checked when wantErr
		wantErr   bool
		wantMsg   string // substring of the message, optional
		check     func(t *testing.T, in tools.ServiceCreateInput)
	}{
		{
			name: "valid, all fields",
			raw:  `{"model_id":"Qwen/Qwen2.5-0.5B","engine_type":"vllm","name":"qwen","port":18080,"gpus":"0,1","args":["--max-model-len=8192"],"env":["A=b"]}`,
			check: func(t *testing.T, in tools.ServiceCreateInput) {
				if in.ModelID != "Qwen/Qwen2.5-0.5B" || in.EngineType != "vllm" || in.Name != "qwen" || in.Port != 18080 || in.GPUs != "0,1" ||
					!slices.Equal(in.Args, []string{"--max-model-len=8192"}) || !slices.Equal(in.Env, []string{"A=b"}) {
					t.Errorf("decoded %+v", in)
				}
			},
		},
		{
			name: "valid, required only, surrounded by whitespace",
			raw:  "\n  {\"model_id\":\"m\",\"engine_type\":\"vllm\"}  \n",
			check: func(t *testing.T, in tools.ServiceCreateInput) {
				if in.ModelID != "m" || in.EngineType != "vllm" || in.Port != 0 {
					t.Errorf("decoded %+v", in)
				}
			},
		},
		{name: "empty input: first required field", raw: "", wantErr: true, wantField: "model_id"},
		{name: "null input", raw: "null", wantErr: true, wantField: "model_id"},
		{name: "missing model_id", raw: `{"engine_type":"vllm"}`, wantErr: true, wantField: "model_id", wantMsg: "required"},
		{name: "missing engine_type", raw: `{"model_id":"m"}`, wantErr: true, wantField: "engine_type", wantMsg: "required"},
		{name: "null required field", raw: `{"model_id":null,"engine_type":"vllm"}`, wantErr: true, wantField: "model_id"},
		{name: "unknown field", raw: `{"model_id":"m","engine_type":"vllm","modelid":"x"}`, wantErr: true, wantField: "modelid", wantMsg: "model_id"},
		{name: "unknown field, case differs", raw: `{"Model_ID":"m","engine_type":"vllm"}`, wantErr: true, wantField: "Model_ID"},
		{name: "unknown fields: first in order", raw: `{"zeta":1,"alpha":2,"model_id":"m","engine_type":"vllm"}`, wantErr: true, wantField: "alpha"},
		{name: "unknown field beats missing required", raw: `{"bogus":1}`, wantErr: true, wantField: "bogus"},
		{name: "port as string", raw: `{"model_id":"m","engine_type":"vllm","port":"x"}`, wantErr: true, wantField: "port", wantMsg: "integer"},
		{name: "port as float", raw: `{"model_id":"m","engine_type":"vllm","port":80.5}`, wantErr: true, wantField: "port"},
		{name: "engine_type as number", raw: `{"model_id":"m","engine_type":5}`, wantErr: true, wantField: "engine_type", wantMsg: "string"},
		{name: "args as string", raw: `{"model_id":"m","engine_type":"vllm","args":"--x"}`, wantErr: true, wantField: "args", wantMsg: "array"},
		// A null element would decode as an empty argument, stored as if given.
		{name: "null arg", raw: `{"model_id":"m","engine_type":"vllm","args":[null]}`, wantErr: true, wantField: "args", wantMsg: "element 0 is null"},
		{name: "null env entry after a value", raw: `{"model_id":"m","engine_type":"vllm","env":["A=b", null]}`, wantErr: true, wantField: "env", wantMsg: "element 1 is null"},
		{name: "port as float names the value", raw: `{"model_id":"m","engine_type":"vllm","port":80.5}`, wantErr: true, wantField: "port", wantMsg: `field "port" must be an integer, not 80.5`},
		{name: "array input", raw: `["m","vllm"]`, wantErr: true, wantField: "", wantMsg: "object"},
		{name: "string input", raw: `"m"`, wantErr: true, wantField: "", wantMsg: "object"},
		{name: "number input", raw: `42`, wantErr: true, wantField: "", wantMsg: "object"},
		{name: "boolean input", raw: `true`, wantErr: true, wantField: "", wantMsg: "object"},
		{name: "truncated JSON", raw: `{"model_id":"m",`, wantErr: true, wantField: ""},
		{name: "trailing garbage", raw: `{"model_id":"m","engine_type":"vllm"} {}`, wantErr: true, wantField: ""},
		{name: "oversized input", raw: huge, wantErr: true, wantField: "", wantMsg: "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var in tools.ServiceCreateInput
			err := tools.Decode(json.RawMessage(tc.raw), schema, &in)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				tc.check(t, in)
				return
			}
			if err == nil {
				t.Fatalf("Decode: nil, want an error on field %q", tc.wantField)
			}
			if k := errs.KindOf(err); k != errs.InvalidArgument {
				t.Errorf("kind = %s, want invalid_argument (%v)", k, err)
			}
			if f := errs.FieldOf(err); f != tc.wantField {
				t.Errorf("field = %q, want %q (%v)", f, tc.wantField, err)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("message %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestDecodeOptionalPointerAndUnsigned(t *testing.T) {
	t.Parallel()
	logs := mustLookup(t, "service_logs").InputSchema()
	var in tools.ServiceLogsInput
	if err := tools.Decode(json.RawMessage(`{"service_id":"s","tail":-1}`), logs, &in); err != nil || in.Tail == nil || *in.Tail != -1 {
		t.Fatalf("Decode tail -1: %+v, %v", in, err)
	}
	in = tools.ServiceLogsInput{}
	if err := tools.Decode(json.RawMessage(`{"service_id":"s","tail":null}`), logs, &in); err != nil || in.Tail != nil {
		t.Fatalf("Decode tail null: %+v, %v", in, err)
	}
	evs := mustLookup(t, "service_events").InputSchema()
	var ev tools.ServiceEventsInput
	err := tools.Decode(json.RawMessage(`{"service_id":"s","after":-1}`), evs, &ev)
	if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "after" {
		t.Fatalf("Decode after -1 = %v (field %q), want invalid_argument on after", err, errs.FieldOf(err))
	}
	if want := `field "after" must be an integer of 0 or more, not -1`; err.Error() != want {
		t.Errorf("Decode after -1: message %q, want %q", err, want)
	}
}

// Call decodes before it checks read-only mode and never runs a mutating
// op in read-only mode; neither path touches the (nil) domain objects.
func TestCallDecodeAndReadOnly(t *testing.T) {
	t.Parallel()
	op := mustLookup(t, "service_create")
	ro := &tools.Domain{ReadOnly: true}
	_, err := op.Call(t.Context(), ro, json.RawMessage(`{"model_id":"m","engine_type":"vllm","port":"x"}`), nil)
	if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "port" {
		t.Fatalf("Call with a bad port = %v, want invalid_argument on port", err)
	}
	_, err = op.Call(t.Context(), ro, json.RawMessage(`{"model_id":"m","engine_type":"vllm"}`), nil)
	if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Call in read-only mode = %v, want invalid_argument naming read-only mode", err)
	}
}
