package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
	"aima/state"
)

// The store commands on the API server's store, as an operator runs them:
// migrate an aima.db in, check it, back it up, restore it, migrate it back.
func TestStoreCommandsOnTheAPIServer(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t)
	ns := c.Namespace(t)
	bin := testenv.BuildAima(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aima.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "store: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n", c.Kubeconfig, ns), 0o600); err != nil {
		t.Fatal(err)
	}
	aima := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("aima %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	src := filepath.Join(dir, "src")
	s, err := state.OpenBolt(filepath.Join(src, "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if _, err := s.Put(ctx, fmt.Sprintf("services/svc-%d", i), fmt.Appendf(nil, `{"id":"svc-%d"}`, i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "models/m", []byte(`{"id":"m"}`), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	aima("store", "migrate", "--to", "kubernetes", "--config", cfg, "--data-dir", src)
	var rep struct {
		Store state.FileReport `json:"store"`
	}
	if err := json.Unmarshal([]byte(aima("-o", "json", "store", "check", "--config", cfg)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Store.Status != state.FileOK || rep.Store.Records["services"] != 5 || rep.Store.Records["models"] != 1 {
		t.Fatalf("check after migrate: %+v", rep.Store)
	}
	backup := filepath.Join(dir, "backup.db")
	aima("store", "backup", "--config", cfg, "--to", backup)
	aima("store", "restore", "--config", cfg, "--from", backup, "--force")
	back := filepath.Join(dir, "back")
	aima("store", "migrate", "--to", "bolt", "--config", cfg, "--data-dir", back)
	for _, f := range []string{backup, filepath.Join(back, "aima.db")} {
		entries, err := state.ReadBoltFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := state.Count(entries); n["services"] != 5 || n["models"] != 1 {
			t.Errorf("%s holds %v", f, n)
		}
	}
}
