package tools

import (
	"fmt"

	"aima/enginemetrics"
	"aima/engines"
	"aima/inference"
	"aima/models"
	"aima/runtime"
	"aima/services"
	"aima/state"
)

// Domain is what operations run against: the daemon's domain objects and
// facts (version, data directory, read-only mode).
type Domain struct {
	Services *services.Manager
	// Inference routes and forwards inference requests (inference_chat).
	Inference *inference.Router
	Models    *models.Registry
	Catalog   *engines.Catalog
	Runtime   runtime.Runtime
	// EngineMetrics reads the engines' own metrics (service_metrics).
	EngineMetrics *enginemetrics.Scraper
	Version       string
	// DataDir is the daemon's state directory (reported by system_info).
	DataDir string
	// ReadOnly refuses every operation that is not read-only.
	ReadOnly bool
}

// List is the one list envelope: {"items":[...],"total":N}, oldest first.
type List[T any] struct {
	Items []T `json:"items" jsonschema:"the items, oldest first"`
	Total int `json:"total" jsonschema:"number of items"`
}

func listOf[T any](items []T) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, Total: len(items)}
}

// RecordList is the list envelope of records read from the state store:
// List's items and total, plus the records that cannot be read, apart (a
// client that ignores damaged sees a well-formed list of sound records).
type RecordList[T any] struct {
	Items   []T             `json:"items" jsonschema:"the items, oldest first"`
	Total   int             `json:"total" jsonschema:"number of items"`
	Damaged []state.Damaged `json:"damaged,omitempty" jsonschema:"records that cannot be read from the state store (quarantined, not among items); delete them by id"`
}

func recordListOf[T any](items []T, damaged []state.Damaged) RecordList[T] {
	l := listOf(items)
	if len(damaged) == 0 {
		damaged = nil
	}
	return RecordList[T]{Items: l.Items, Total: l.Total, Damaged: damaged}
}

// renderDamaged is the text lines about damaged records.
func renderDamaged(ds []state.Damaged) string {
	s := ""
	for _, d := range ds {
		s += fmt.Sprintf("\ndamaged %s record %s: %s", d.Kind, d.ID, d.Error)
	}
	return s
}
