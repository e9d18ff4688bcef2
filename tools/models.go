package tools

import (
	"context"
	"fmt"

	"aima/models"
)

// ModelRef names one model.
type ModelRef struct {
	ModelID string `json:"model_id" jsonschema:"model ID (or model name)"`
}

// ModelAddInput registers a model from disk.
type ModelAddInput struct {
	Path string `json:"path" jsonschema:"path of a Hugging Face-style model directory (with config.json) or a .gguf file, on the daemon's host"`
	Name string `json:"name,omitempty" jsonschema:"display name; also the served model name (default: the directory or file name)"`
}

// ModelScanInput registers every model under a directory.
type ModelScanInput struct {
	Dir string `json:"dir" jsonschema:"directory to search (4 levels deep) for model directories and .gguf files"`
}

// Empty is the input of operations without arguments.
type Empty struct{}

func renderModel(m models.Model) string {
	return fmt.Sprintf("%s  %s  %s  %s", m.ID, m.Name, m.Format, m.Path)
}

func renderModels(l List[models.Model]) string {
	s := fmt.Sprintf("%d model(s)", l.Total)
	for _, m := range l.Items {
		s += "\n" + renderModel(m)
	}
	return s
}

func modelOps() []Op {
	return []Op{
		Declare(Spec[Empty, List[models.Model]]{
			Name:        "model_list",
			Description: "List the models registered with aima (local Hugging Face-style directories and GGUF files), oldest first. Use a model's id as model_id when creating a service.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, env *Env, _ Empty, _ Reporter) (List[models.Model], error) {
				all, err := env.Models.List(ctx)
				return listOf(all), err
			},
			Render: renderModels,
		}),
		Declare(Spec[ModelRef, models.Model]{
			Name:        "model_get",
			Description: "Show one registered model: its path, format, architecture, dtype and size on disk.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Positional:  "model_id",
			Run: func(ctx context.Context, env *Env, in ModelRef, _ Reporter) (models.Model, error) {
				return env.Models.Get(ctx, in.ModelID)
			},
			Render: renderModel,
		}),
		Declare(Spec[ModelAddInput, models.Model]{
			Name:        "model_add",
			Description: "Register a model that is on the daemon's disk: a Hugging Face-style directory containing config.json, or a .gguf file. The model gets a stable short id (the same path always gets the same id); adding it again is harmless. Its path is later mounted read-only into engine containers.",
			Annotations: Annotations{Idempotent: true},
			Run: func(ctx context.Context, env *Env, in ModelAddInput, _ Reporter) (models.Model, error) {
				return env.Models.Add(ctx, in.Path, in.Name)
			},
			Render: renderModel,
		}),
		Declare(Spec[ModelRef, models.Model]{
			Name:        "model_remove",
			Description: "Unregister a model. Its files are not touched. Services created from it keep working until they are deleted.",
			Annotations: Annotations{Destructive: true, Idempotent: false},
			Positional:  "model_id",
			Run: func(ctx context.Context, env *Env, in ModelRef, _ Reporter) (models.Model, error) {
				return env.Models.Remove(ctx, in.ModelID)
			},
			Render: func(m models.Model) string { return "removed " + renderModel(m) },
		}),
		Declare(Spec[ModelScanInput, List[models.Model]]{
			Name:        "model_scan",
			Description: "Search a directory on the daemon's host for models (directories with config.json, and .gguf files, up to 4 levels deep) and register every one found. Returns the models found.",
			Annotations: Annotations{Idempotent: true},
			Positional:  "dir",
			Run: func(ctx context.Context, env *Env, in ModelScanInput, _ Reporter) (List[models.Model], error) {
				found, err := env.Models.Scan(ctx, in.Dir)
				return listOf(found), err
			},
			Render: renderModels,
		}),
	}
}
