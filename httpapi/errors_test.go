package httpapi_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"aima/errs"
	"aima/httpapi"
	"aima/tools"
)

func schemaOf(t *testing.T, name string) tools.Op {
	t.Helper()
	op, ok := tools.Lookup(name)
	if !ok {
		t.Fatalf("no op %s", name)
	}
	return op
}

func TestQueryToJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		op        string
		query     string
		want      map[string]any // compared after a JSON round trip
		wantField string         // non-empty: an InvalidArgument on this field
	}{
		{name: "empty", op: "service_events", query: "", want: map[string]any{}},
		{
			name:  "integer, boolean, string",
			op:    "service_events",
			query: "service_id=svc-1&after=42&follow=true",
			want:  map[string]any{"service_id": "svc-1", "after": float64(42), "follow": true},
		},
		{name: "boolean forms", op: "service_events", query: "follow=0", want: map[string]any{"follow": false}},
		{name: "boolean 1", op: "service_events", query: "follow=1", want: map[string]any{"follow": true}},
		{name: "negative integer is still an integer", op: "service_events", query: "after=-1", want: map[string]any{"after": float64(-1)}},
		{name: "nullable integer", op: "service_logs", query: "service_id=s&tail=-1&timestamps=false", want: map[string]any{"service_id": "s", "tail": float64(-1), "timestamps": false}},
		{name: "array keeps every value", op: "service_create", query: "args=--a&args=--b%3D1&env=A%3Db", want: map[string]any{"args": []any{"--a", "--b=1"}, "env": []any{"A=b"}}},
		{name: "scalar: the last value wins", op: "service_create", query: "port=1&port=2&name=a&name=b", want: map[string]any{"port": float64(2), "name": "b"}},
		{name: "a number in a string field stays a string", op: "service_create", query: "model_id=123", want: map[string]any{"model_id": "123"}},
		{name: "unknown key passes through as a string", op: "service_status", query: "bogus=1", want: map[string]any{"bogus": "1"}},
		{name: "bad integer", op: "service_events", query: "service_id=s&after=abc", wantField: "after"},
		{name: "float for integer", op: "service_create", query: "port=1.5", wantField: "port"},
		{name: "empty integer", op: "service_create", query: "port=", wantField: "port"},
		{name: "bad nullable integer", op: "service_logs", query: "tail=all", wantField: "tail"},
		{name: "bad boolean", op: "service_events", query: "follow=yes", wantField: "follow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := httpapi.QueryToJSON(q, schemaOf(t, tc.op).InputSchema())
			if tc.wantField != "" {
				if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != tc.wantField {
					t.Fatalf("QueryToJSON(%q) = %s, %v (field %q); want invalid_argument on %s", tc.query, raw, err, errs.FieldOf(err), tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("QueryToJSON(%q): %v", tc.query, err)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("QueryToJSON(%q) produced invalid JSON %s: %v", tc.query, raw, err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tc.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("QueryToJSON(%q) = %s, want %s", tc.query, gotJSON, wantJSON)
			}
		})
	}
}

func TestQueryToJSONSkipsEmptyValueLists(t *testing.T) {
	t.Parallel()
	raw, err := httpapi.QueryToJSON(map[string][]string{"after": {}, "service_id": {"s"}}, schemaOf(t, "service_events").InputSchema())
	if err != nil || string(raw) != `{"service_id":"s"}` {
		t.Fatalf("QueryToJSON = %s, %v", raw, err)
	}
}

// The query form decodes like the JSON body form.
func TestQueryToJSONThenDecode(t *testing.T) {
	t.Parallel()
	op := schemaOf(t, "service_events")
	q, _ := url.ParseQuery("service_id=svc-1&after=7&follow=false")
	raw, err := httpapi.QueryToJSON(q, op.InputSchema())
	if err != nil {
		t.Fatal(err)
	}
	var in tools.ServiceEventsInput
	if err := tools.Decode(raw, op.InputSchema(), &in); err != nil || in.ServiceID != "svc-1" || in.After != 7 || in.Follow {
		t.Fatalf("Decode(%s) = %+v, %v", raw, in, err)
	}
}
