package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"aima/config"
	"aima/errs"
	"aima/state"
)

// `aima store check` and `aima store restore` work on the store file
// directly, with no daemon: they are what an operator has when the daemon
// refuses to start because its store is damaged.

// storeReport is the output of `aima store check`.
type storeReport struct {
	Store  state.FileReport `json:"store"`
	Backup state.FileReport `json:"backup"`
}

func storeCommand(std IO) *ucli.Command {
	dataDir := &ucli.StringFlag{Name: "data-dir", Usage: "state directory (default ~/.aima)", Sources: ucli.EnvVars("AIMA_DATA_DIR")}
	configFlag := &ucli.StringFlag{Name: "config", Usage: "YAML config file (store: kubernetes keeps the store in the API server)", Sources: ucli.EnvVars("AIMA_CONFIG")}
	storePath := func(cmd *ucli.Command) string {
		dir := cmd.String("data-dir")
		if dir == "" {
			dir = config.DefaultDataDir()
		}
		return filepath.Join(dir, "aima.db")
	}
	return &ucli.Command{
		Name:  "store",
		Usage: "inspect, back up, restore or migrate the daemon's state store without a daemon",
		Commands: []*ucli.Command{
			{
				Name:  "check",
				Usage: "inspect aima.db and its backup aima.db.bak: say whether each is sound and what is wrong (exit 5 when aima.db is not sound)",
				Description: "Reads the files without changing them and without a daemon (a running daemon's store shows as locked;\n" +
					"use `aima doctor` then). Reports, for the store and its backup: ok, missing, empty, truncated, corrupt or\n" +
					"locked, with what is wrong, the records by kind, and records that cannot be read.",
				Flags: []ucli.Flag{dataDir, configFlag},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					if cfg, err := storeConfig(cmd); err != nil {
						return err
					} else if cfg.Store == config.StoreKubernetes {
						return checkKubeStore(ctx, std, cmd, cfg)
					}
					path := storePath(cmd)
					rep := storeReport{Store: state.InspectBolt(path), Backup: state.InspectBolt(state.BackupPath(path))}
					format := cmd.Root().String("output")
					if format == "json" || format == "yaml" {
						if err := printDoc(std.Stdout, format, rep); err != nil {
							return err
						}
					} else {
						printFileReport(std.Stdout, "store", rep.Store)
						printFileReport(std.Stdout, "backup", rep.Backup)
					}
					if !rep.Store.OK() {
						return exitError{code: ExitCode(errs.Unavailable)}
					}
					return nil
				},
			},
			{
				Name:  "restore",
				Usage: "replace aima.db with its backup aima.db.bak (the daemon must be stopped; a damaged aima.db is kept as aima.db.damaged-<time>)",
				Description: "Copies the backup over the store after checking the backup is sound. The current file, if any, is kept\n" +
					"beside it. A sound aima.db is replaced only with --force, since the changes made after the backup\n" +
					"are lost. Engine containers are not touched: the next daemon adopts those its restored records know.",
				Flags: []ucli.Flag{dataDir, configFlag, &ucli.BoolFlag{Name: "force", Usage: "restore even over a sound aima.db (or over a store that holds records)"},
					&ucli.StringFlag{Name: "from", Usage: "a file written by `aima store backup` to restore instead (the only way for store: kubernetes)"}},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					if cmd.String("from") != "" {
						return restoreFromFile(ctx, std, cmd)
					}
					if cfg, err := storeConfig(cmd); err != nil {
						return err
					} else if cfg.Store == config.StoreKubernetes {
						return errs.Invalid("from", "store: kubernetes keeps no backup file of its own: restore one written by `aima store backup` with --from FILE")
					}
					res, err := state.RestoreBolt(storePath(cmd), cmd.Bool("force"))
					if err != nil {
						return err
					}
					format := cmd.Root().String("output")
					if format == "json" || format == "yaml" {
						return printDoc(std.Stdout, format, res)
					}
					fmt.Fprintf(std.Stdout, "restored %s from %s (written %s)%s\n", res.Restored, res.From,
						res.BackupTime.Local().Format(time.DateTime), recordCounts(res.Records))
					if res.MovedAside != "" {
						fmt.Fprintf(std.Stdout, "the previous file is kept as %s\n", res.MovedAside)
					}
					return nil
				},
			},
			backupCommand(std, dataDir, configFlag),
			migrateCommand(std, dataDir, configFlag),
		},
	}
}

// printFileReport prints one file's report as a few lines.
func printFileReport(w io.Writer, what string, r state.FileReport) {
	fmt.Fprintf(w, "%s: %s: %s", what, r.Path, r.Status)
	if r.Status == state.FileOK {
		fmt.Fprintf(w, " (%d bytes, modified %s)%s", r.SizeBytes, r.Modified.Local().Format(time.DateTime), recordCounts(r.Records))
	}
	fmt.Fprintln(w)
	if r.Problem != "" && r.Status != state.FileOK {
		fmt.Fprintf(w, "  %s\n", r.Problem)
	}
	for _, d := range r.Damaged {
		fmt.Fprintf(w, "  damaged record %s: %s\n", d.Key, d.Error)
	}
}

// recordCounts renders records by kind, e.g. ", records: 2 models, 5 services".
func recordCounts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return ", records: " + strings.Join(parts, ", ")
}
