package web_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"aima/web"
)

func get(t *testing.T, h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// The page's files come with their types and a strict content security
// policy; directories are not listed; only GET and HEAD are served.
func TestFiles(t *testing.T) {
	t.Parallel()
	h := web.Handler(web.Options{})
	for _, tc := range []struct {
		path, contentType string
	}{
		{"/ui/", "text/html"},
		{"/ui/index.html", ""}, // FileServer redirects it to /ui/
		{"/ui/style.css", "text/css"},
		{"/ui/js/app.js", "text/javascript"},
		{"/ui/favicon.svg", "image/svg+xml"},
	} {
		w := get(t, h, http.MethodGet, tc.path, nil)
		if tc.contentType == "" {
			if w.Code != http.StatusMovedPermanently {
				t.Errorf("GET %s: %d", tc.path, w.Code)
			}
			continue
		}
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), tc.contentType) {
			t.Errorf("GET %s: %d %q", tc.path, w.Code, w.Header().Get("Content-Type"))
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: headers %v", tc.path, w.Header())
		}
	}
	for path, want := range map[string]int{"/ui/js/": 404, "/ui/nope.js": 404, "/": 302, "/ui": 302} {
		if w := get(t, h, http.MethodGet, path, nil); w.Code != want {
			t.Errorf("GET %s: %d, want %d", path, w.Code, want)
		} else if want == 302 && w.Header().Get("Location") != web.Prefix {
			t.Errorf("GET %s: Location %q", path, w.Header().Get("Location"))
		}
	}
	if w := get(t, h, http.MethodPost, "/ui/", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d", w.Code)
	}
}

// GET /ui/session tells the page whether to ask for the token, from the
// guard's word.
func TestSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		required, authorized bool
		want                 web.Session
	}{
		{false, false, web.Session{TokenRequired: false, Authenticated: true}},
		{true, false, web.Session{TokenRequired: true, Authenticated: false}},
		{true, true, web.Session{TokenRequired: true, Authenticated: true}},
	} {
		h := web.Handler(web.Options{TokenRequired: func() bool { return tc.required }, Authorized: func(*http.Request) bool { return tc.authorized }})
		w := get(t, h, http.MethodGet, web.SessionPath, nil)
		var got web.Session
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got != tc.want || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("required %v authorized %v: %s %v, want %+v", tc.required, tc.authorized, w.Body, err, tc.want)
		}
	}
}

func TestPublic(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{"/": true, "/ui": true, "/ui/": true, "/ui/js/app.js": true, web.SessionPath: true,
		"/api/service/list": false, "/api/events": false, "/uix": false, "/mcp": false} {
		if got := web.Public(path); got != want {
			t.Errorf("Public(%q) = %v", path, got)
		}
	}
}

var (
	importRE = regexp.MustCompile(`import \{([^}]*)\} from '\./([\w.]+)'`)
	exportRE = regexp.MustCompile(`export (?:async )?(?:function|const|let|class) (\w+)`)
	srcRE    = regexp.MustCompile(`(?:src|href)="/ui/([^"]+)"`)
)

// Every name a module imports is exported by the module it names, and
// every file the page links is embedded: a broken link fails here, without
// a browser, instead of as a blank page.
func TestModulesLink(t *testing.T) {
	t.Parallel()
	root := filepath.Join("static")
	exports := map[string][]string{}
	sources := map[string]string{}
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(root, p))
		sources[p] = string(b)
		for _, m := range exportRE.FindAllStringSubmatch(string(b), -1) {
			exports[p] = append(exports[p], m[1])
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, src := range sources {
		for _, m := range importRE.FindAllStringSubmatch(src, -1) {
			target := filepath.ToSlash(filepath.Join(filepath.Dir(p), m[2]))
			if _, ok := sources[target]; !ok {
				t.Errorf("%s imports %s, which does not exist", p, target)
				continue
			}
			for _, name := range strings.Split(m[1], ",") {
				if name = strings.TrimSpace(name); name != "" && !slices.Contains(exports[target], name) {
					t.Errorf("%s imports %s from %s, which does not export it", p, name, target)
				}
			}
		}
	}
	h := web.Handler(web.Options{})
	for _, m := range srcRE.FindAllStringSubmatch(sources["index.html"], -1) {
		if w := get(t, h, http.MethodGet, web.Prefix+m[1], nil); w.Code != http.StatusOK {
			t.Errorf("index.html links /ui/%s: %d", m[1], w.Code)
		}
	}
	if sources["js/app.js"] == "" {
		t.Error("no js/app.js")
	}
}
