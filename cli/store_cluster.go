package cli

import (
	"context"
	"fmt"

	ucli "github.com/urfave/cli/v3"

	"aima/config"
	"aima/daemon"
	"aima/errs"
	"aima/state"
)

// The store commands for any backend: `aima store backup` (the whole
// store to a bbolt file), `aima store restore --from` (such a file into
// the configured store) and `aima store migrate` (between the data dir's
// aima.db and the Kubernetes API server), and `aima store check` of a
// store kept by the API server. All of them are state.Copy.

// storeConfig is the config the store commands read (--config), checked
// as the daemon checks it.
func storeConfig(cmd *ucli.Command) (config.Config, error) {
	path := cmd.String("config")
	cfg, _, err := daemon.LoadConfig(path)
	return cfg, err
}

// openStore opens the store the config names, as the daemon does.
func openStore(ctx context.Context, cmd *ucli.Command, cfg config.Config) (state.Store, error) {
	dir := cmd.String("data-dir")
	if dir == "" {
		dir = config.DefaultDataDir()
	}
	return daemon.OpenStore(ctx, cfg, dir, "aima-cli")
}

// checkKubeStore is `aima store check` of store: kubernetes: can the
// records be read, how many of each kind, and which are damaged.
func checkKubeStore(ctx context.Context, std IO, cmd *ucli.Command, cfg config.Config) error {
	s, err := openStore(ctx, cmd, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	rep := state.FileReport{Path: state.Describe(s).Path, Status: state.FileOK}
	if rep.Records, rep.Damaged, err = state.Check(ctx, s); err != nil {
		return err
	}
	if format := cmd.Root().String("output"); format == "json" || format == "yaml" {
		return printDoc(std.Stdout, format, map[string]any{"store": rep})
	}
	fmt.Fprintf(std.Stdout, "store: kubernetes %s: ok%s\n", rep.Path, recordCounts(rep.Records))
	for _, d := range rep.Damaged {
		fmt.Fprintf(std.Stdout, "  damaged record %s: %s\n", d.Key, d.Error)
	}
	return nil
}

// restoreFromFile is `aima store restore --from FILE`.
func restoreFromFile(ctx context.Context, std IO, cmd *ucli.Command) error {
	from := cmd.String("from")
	entries, err := state.ReadBoltFile(from)
	if err != nil {
		return err
	}
	cfg, err := storeConfig(cmd)
	if err != nil {
		return err
	}
	dst, err := openStore(ctx, cmd, cfg)
	if err != nil {
		return err
	}
	defer dst.Close()
	res, err := state.Copy(ctx, dst, state.Entries(entries), cmd.Bool("force"))
	if err != nil {
		return err
	}
	return printCopy(std, cmd, res, fmt.Sprintf("restored %s into %s", from, describe(dst)))
}

func backupCommand(std IO, dataDir, configFlag ucli.Flag) *ucli.Command {
	return &ucli.Command{
		Name:  "backup",
		Usage: "write every record of the state store to a new file (a bbolt store file, like aima.db)",
		Description: "Exports the store the config names (store: kubernetes reads the API server; a bolt store must not be held\n" +
			"by a running daemon) to --to. `aima store restore --from FILE` imports it again, into any store.",
		Flags: []ucli.Flag{dataDir, configFlag, &ucli.StringFlag{Name: "to", Usage: "the file to write (must not exist)", Required: true}},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			cfg, err := storeConfig(cmd)
			if err != nil {
				return err
			}
			src, err := openStore(ctx, cmd, cfg)
			if err != nil {
				return err
			}
			defer src.Close()
			res, err := state.ExportBolt(ctx, src, cmd.String("to"))
			if err != nil {
				return err
			}
			return printCopy(std, cmd, res, fmt.Sprintf("backed up %s to %s", describe(src), cmd.String("to")))
		},
	}
}

func migrateCommand(std IO, dataDir, configFlag ucli.Flag) *ucli.Command {
	return &ucli.Command{
		Name:  "migrate",
		Usage: "copy the state store between the data dir's aima.db and the Kubernetes API server (daemons stopped)",
		Description: "--to kubernetes copies aima.db into the API server of the config's kubernetes section (namespace and\n" +
			"cluster.store_name); --to bolt copies it back. The store's identity goes along, so the engines the\n" +
			"records know are adopted by the next daemon. A destination that holds records is replaced only with --force.",
		Flags: []ucli.Flag{dataDir, configFlag, &ucli.StringFlag{Name: "to", Usage: "kubernetes or bolt", Required: true},
			&ucli.BoolFlag{Name: "force", Usage: "replace a destination that holds records"}},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			cfg, err := storeConfig(cmd)
			if err != nil {
				return err
			}
			kcfg, bcfg := cfg, cfg
			kcfg.Store, bcfg.Store = config.StoreKubernetes, state.BackendBolt
			var src, dst config.Config
			switch cmd.String("to") {
			case "kubernetes":
				src, dst = bcfg, kcfg
			case "bolt":
				src, dst = kcfg, bcfg
			default:
				return errs.Invalid("to", "--to %q: want kubernetes or bolt", cmd.String("to"))
			}
			from, err := openStore(ctx, cmd, src)
			if err != nil {
				return err
			}
			defer from.Close()
			to, err := openStore(ctx, cmd, dst)
			if err != nil {
				return err
			}
			defer to.Close()
			res, err := state.Copy(ctx, to, from, cmd.Bool("force"))
			if err != nil {
				return err
			}
			return printCopy(std, cmd, res, fmt.Sprintf("migrated %s to %s", describe(from), describe(to)))
		},
	}
}

func describe(s state.Store) string {
	info := state.Describe(s)
	if info.Path == "" {
		return info.Backend
	}
	return info.Backend + " " + info.Path
}

func printCopy(std IO, cmd *ucli.Command, res state.CopyResult, what string) error {
	if format := cmd.Root().String("output"); format == "json" || format == "yaml" {
		return printDoc(std.Stdout, format, res)
	}
	fmt.Fprintf(std.Stdout, "%s%s\n", what, recordCounts(res.Records))
	if res.Removed > 0 {
		fmt.Fprintf(std.Stdout, "removed %d records the source does not have\n", res.Removed)
	}
	return nil
}
