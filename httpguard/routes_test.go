package httpguard_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"aima/daemon"
	"aima/runtime/fakeruntime"
	"aima/tools"
)

// TestMatrixCoversEveryRoute fails when the daemon serves a route that no
// family of the browser matrix reaches, so a route mounted later joins the
// matrix. The daemon's routes are its own list (daemon.Routes, recorded as
// they are mounted); a family reaches the pattern net/http's ServeMux
// would pick for its request. The operations' routes (/api/<group>/<verb>)
// are one family served by one handler: the matrix must reach a read-only
// one and a state-changing one, not each.
func TestMatrixCoversEveryRoute(t *testing.T) {
	rt := fakeruntime.New()
	defer rt.Close()
	d, err := daemon.New(daemon.Options{Addr: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "data"), Runtime: rt,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	opRoutes := map[string]tools.Op{}
	for _, op := range tools.Visible(false) {
		opRoutes["/api/"+op.Group()+"/"+op.Verb()] = op
	}
	mux := http.NewServeMux()
	routes := d.Routes()
	for _, p := range routes {
		mux.Handle(p, http.NotFoundHandler())
	}
	reached := map[string]bool{}
	for _, f := range families("/models/x") {
		_, p := mux.Handler(httptest.NewRequest(f.method, f.path, nil))
		if op, ok := opRoutes[p]; ok {
			p = map[bool]string{true: "operation (read-only)", false: "operation (state-changing)"}[op.Annotations().ReadOnly]
		}
		reached[p] = true
	}
	for _, p := range append(routes, "operation (read-only)", "operation (state-changing)") {
		if _, op := opRoutes[p]; !op && !reached[p] {
			t.Errorf("the daemon serves %q but no family of the browser matrix (families in matrix_test.go) reaches it", p)
		}
	}
	if len(routes) < len(opRoutes)+3 {
		t.Errorf("daemon.Routes lists %d routes, fewer than the operations alone: %q", len(routes), routes)
	}
}
