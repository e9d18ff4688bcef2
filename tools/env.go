package tools

import (
	"aima/engines"
	"aima/inference"
	"aima/models"
	"aima/runtime"
	"aima/services"
)

// Env is what operations run against: the daemon's domain objects.
type Env struct {
	Services *services.Manager
	// Inference routes and forwards inference requests (inference_chat).
	Inference *inference.Gateway
	Models    *models.Registry
	Catalog   *engines.Catalog
	Runtime   runtime.Runtime
	Version   string
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
