package daemontest

import (
	"io"
	"net/http"
	"testing"

	"aima/httpapi"
	"aima/internal/testenv"
	"aima/tools"
)

// A daemon that starts no service needs no Docker.
func TestStart(t *testing.T) {
	t.Parallel()
	var mountedEnv *tools.Env
	d := Start(t, testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef}), Options{ReadOnly: true, Mounts: []Mount{
		func(srv *httpapi.Server, env *tools.Env) {
			mountedEnv = env
			srv.Handle("/extra", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "mounted") }))
		},
	}})
	if mountedEnv != d.Env || !d.Env.ReadOnly {
		t.Errorf("mount got env %p (read-only %v), daemon's is %p", mountedEnv, d.Env.ReadOnly, d.Env)
	}
	for path, want := range map[string]string{"/health": "", "/extra": "mounted"} {
		resp, err := http.Get(d.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (want != "" && string(b) != want) {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, b)
		}
	}
}
