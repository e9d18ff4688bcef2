package gateway

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"aima/inference"
	"aima/services"
)

// The hand-written list is byte for byte what encoding/json writes.
func TestModelListAsEncodingJSON(t *testing.T) {
	t.Parallel()
	list := []inference.Model{
		{ID: "qwen", ServiceID: "svc-1", Status: services.StatusRunning, Created: 1767225600},
		{ID: "gpt-4o", ServiceID: "svc-1", Status: services.StatusCreating, Phase: services.PhasePull, OnDemand: true, SwapGroup: "g1", Alias: true, Created: -5},
		{ID: "q\"u\\o<t>e\n\x01ü\xff", ServiceID: "svc-2", Status: services.StatusStopped},
	}
	for _, l := range [][]inference.Model{nil, list[:1], list} {
		rec := httptest.NewRecorder()
		writeModelList(rec, l)
		data := make([]modelObject, len(l))
		for i, m := range l {
			data[i] = toObject(m)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(map[string]any{"object": "list", "data": data})
		// encoding/json sorts a map's keys: data before object.
		var got, exp any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%d models: %v in %s", len(l), err, rec.Body.Bytes())
		}
		_ = json.Unmarshal(want.Bytes(), &exp)
		g, _ := json.Marshal(got)
		e, _ := json.Marshal(exp)
		if !bytes.Equal(g, e) {
			t.Errorf("%d models:\n got %s\nwant %s", len(l), rec.Body.Bytes(), want.Bytes())
		}
		for i, m := range l {
			var one bytes.Buffer
			enc := json.NewEncoder(&one)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(toObject(m))
			if got := appendModelObject(nil, m); !bytes.Equal(got, bytes.TrimSuffix(one.Bytes(), []byte("\n"))) {
				t.Errorf("model %d:\n got %s\nwant %s", i, got, one.Bytes())
			}
		}
	}
}
