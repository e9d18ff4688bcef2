package mcp

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"aima/errs"
)

type nanOp struct{}

func (nanOp) Name() string    { return "gpu_list" }
func (nanOp) Text(any) string { return "text" }
func (nanOp) NewOutput() any  { return new(map[string]any) }

// An output that cannot be encoded is a typed internal error, not a
// success the transport then fails to write.
func TestSuccessResultThatCannotBeEncoded(t *testing.T) {
	res := successResult(nanOp{}, struct{ PowerW float64 }{math.NaN()})
	d, _ := res.Meta.AdditionalFields[MetaError].(errorDetail)
	if !res.IsError || d.Code != errs.Internal || !strings.Contains(d.Message, "encoding the result of gpu_list") {
		t.Fatalf("result %+v", res)
	}
	ok := successResult(nanOp{}, struct{ PowerW float64 }{70})
	if b, err := json.Marshal(ok); ok.IsError || err != nil || !strings.Contains(string(b), `"PowerW":70`) {
		t.Fatalf("result %s, %v", b, err)
	}
}
