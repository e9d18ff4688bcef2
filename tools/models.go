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

func renderModels(items []models.Model) string {
	s := fmt.Sprintf("%d model(s)", len(items))
	for _, m := range items {
		s += "\n" + renderModel(m)
	}
	return s
}

// ModelScanOutput is what a scan registered, and what it skipped and why.
type ModelScanOutput struct {
	Items   []models.Model   `json:"items" jsonschema:"the models found and registered"`
	Total   int              `json:"total" jsonschema:"number of models found"`
	Skipped []models.Skipped `json:"skipped" jsonschema:"paths that looked like models but were not registered (special files such as FIFOs and devices, unreadable or invalid config.json), with the reason"`
}

func modelOps() []Op {
	return []Op{
		Declare(Spec[Empty, RecordList[models.Model]]{
			Name:        "model_list",
			Description: "List the models registered with aima (local Hugging Face-style directories and GGUF files), oldest first. Use a model's id as model_id when creating a service. Model records the state store cannot read are listed apart under damaged; delete them with model_remove.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, dom *Domain, _ Empty, _ Reporter) (RecordList[models.Model], error) {
				all, err := dom.Models.List(ctx)
				if err != nil {
					return RecordList[models.Model]{}, err
				}
				damaged, err := dom.Models.Damaged(ctx)
				return recordListOf(all, damaged), err
			},
			Render: func(l RecordList[models.Model]) string { return renderModels(l.Items) + renderDamaged(l.Damaged) },
		}),
		Declare(Spec[ModelRef, models.Model]{
			Name:        "model_get",
			Description: "Show one registered model: its path, format, architecture, dtype and size on disk.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Positional:  "model_id",
			Run: func(ctx context.Context, dom *Domain, in ModelRef, _ Reporter) (models.Model, error) {
				return dom.Models.Get(ctx, in.ModelID)
			},
			Render: renderModel,
		}),
		Declare(Spec[ModelAddInput, models.Model]{
			Name:        "model_add",
			Description: "Register a model that is on the daemon's disk: a Hugging Face-style directory containing config.json, or a .gguf file. The model gets a stable short id (the same path always gets the same id); adding it again is harmless. Its path is later mounted read-only into engine containers. Only regular files are read (symlinks are followed): a FIFO, device or socket is refused with invalid_argument, and config.json over 4 MiB is too.",
			Annotations: Annotations{Idempotent: true},
			Run: func(ctx context.Context, dom *Domain, in ModelAddInput, _ Reporter) (models.Model, error) {
				return dom.Models.Add(ctx, in.Path, in.Name)
			},
			Render: renderModel,
		}),
		Declare(Spec[ModelRef, models.Model]{
			Name:        "model_remove",
			Description: "Unregister a model. Its files are not touched. Services created from it keep working until they are deleted. A damaged model record (listed under damaged by model_list) is removed the same way.",
			Annotations: Annotations{Destructive: true, Idempotent: false},
			Positional:  "model_id",
			Run: func(ctx context.Context, dom *Domain, in ModelRef, _ Reporter) (models.Model, error) {
				return dom.Models.Remove(ctx, in.ModelID)
			},
			Render: func(m models.Model) string { return "removed " + renderModel(m) },
		}),
		Declare(Spec[ModelScanInput, ModelScanOutput]{
			Name:        "model_scan",
			Description: "Search a directory on the daemon's host for models (directories with config.json, and .gguf files, up to 4 levels deep) and register every one found. Returns the models found, and the paths skipped with the reason (special files such as FIFOs or devices are never opened). Stops after 2 minutes; what was registered by then stays registered.",
			Annotations: Annotations{Idempotent: true},
			Positional:  "dir",
			Run: func(ctx context.Context, dom *Domain, in ModelScanInput, _ Reporter) (ModelScanOutput, error) {
				res, err := dom.Models.Scan(ctx, in.Dir)
				l := listOf(res.Found)
				return ModelScanOutput{Items: l.Items, Total: l.Total, Skipped: res.Skipped}, err
			},
			Render: func(o ModelScanOutput) string {
				s := renderModels(o.Items)
				for _, sk := range o.Skipped {
					s += "\nskipped " + sk.Path + ": " + sk.Reason
				}
				return s
			},
		}),
	}
}
