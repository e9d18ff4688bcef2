package tools

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"aima/services"
	"aima/state"
)

// A list written from the record cache's encodings is the document
// RecordList encodes to, whether marshalled whole or streamed, and its
// text rendering sees the same services.
func TestServiceListFromEncodingsIsTheRecordListDocument(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := []services.Service{
		{ID: "svc-1", Name: "a", EngineType: "vllm", Status: services.StatusCreated, CreatedAt: at, UpdatedAt: at, Args: []string{"--x=<1>"}},
		{ID: "svc-2", Name: "b", EngineType: "vllm", Status: services.StatusFailed, Reason: "exited", CreatedAt: at, UpdatedAt: at},
	}
	damaged := []state.Damaged{{Kind: "service", ID: "svc-bad", Error: "not a JSON object", Bytes: 2}}
	for _, dmg := range [][]state.Damaged{nil, damaged} {
		plain := RecordList[services.Service]{Items: items, Total: len(items), Damaged: dmg}
		want, err := json.Marshal(plain)
		if err != nil {
			t.Fatal(err)
		}
		var enc []json.RawMessage
		for _, s := range items {
			b, _ := json.Marshal(s)
			enc = append(enc, b)
		}
		l := ServiceList{RecordList: RecordList[services.Service]{Total: len(enc), Damaged: dmg}, encoded: enc}
		got, err := l.MarshalJSON()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("MarshalJSON =\n%s, %v\nwant\n%s", got, err, want)
		}
		var streamed bytes.Buffer
		if err := l.WriteJSON(&streamed); err != nil || !bytes.Equal(streamed.Bytes(), want) {
			t.Fatalf("WriteJSON =\n%s, %v\nwant\n%s", streamed.Bytes(), err, want)
		}
		if got := l.services(); !reflect.DeepEqual(got, items) {
			t.Fatalf("services() = %+v, want %+v", got, items)
		}
		// A client decodes the document into Items as usual.
		var back ServiceList
		if err := json.Unmarshal(want, &back); err != nil || !reflect.DeepEqual(back.Items, items) || back.Total != 2 {
			t.Fatalf("decoded = %+v, %v", back, err)
		}
	}
}
