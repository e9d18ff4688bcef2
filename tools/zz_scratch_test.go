package tools_test

import (
	"encoding/json"
	"testing"

	"aima/tools"
)

func TestScratchDump(t *testing.T) {
	for _, op := range tools.Registry() {
		b, _ := json.Marshal(op.InputSchema())
		t.Logf("%s ro=%v len=%d in=%s", op.Name(), op.Annotations().ReadOnly, len(op.Description()), b)
	}
}
