// Package web is aima's dashboard: a page at /ui/ that shows the services
// live (one Server-Sent Events connection to the daemon-wide event stream,
// GET /api/events), a service's start as a timeline of phases, its logs,
// events and engine figures, the models, engines, GPUs and the daemon's
// health, with the same controls as the CLI.
//
// The page is hand-written HTML, CSS and JavaScript modules embedded in the
// binary (no build step, nothing fetched from elsewhere). It holds no data:
// it reads everything through the HTTP API, with same-origin JSON POSTs
// that pass the access guard like any client, so the files themselves are
// served without the token (the daemon lists them as public); with a token
// set the page logs in (POST /auth/login sets an HttpOnly cookie, which
// EventSource sends too).
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
)

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// SessionPath answers whether the page must log in first.
const SessionPath = Prefix + "session"

//go:embed static
var static embed.FS

// Options configure Handler.
type Options struct {
	// TokenRequired reports whether the daemon has a token, and
	// Authorized whether a request carries it (the access guard's word).
	TokenRequired func() bool
	Authorized    func(*http.Request) bool
}

// Session is the answer of GET /ui/session.
type Session struct {
	TokenRequired bool `json:"token_required"`
	Authenticated bool `json:"authenticated"`
}

// Public reports whether a path belongs to the page's own files (and the
// redirect to them), which the daemon serves without the token: they carry
// no data. The guard's Host and Origin rules still apply.
func Public(path string) bool {
	return path == "/" || path == strings.TrimSuffix(Prefix, "/") || strings.HasPrefix(path, Prefix)
}

// Handler serves the page's files under Prefix, GET /ui/session, and
// redirects / and /ui to /ui/. Mount it at "/ui/", "/ui" and "GET /{$}".
func Handler(o Options) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		securityHeaders(w.Header())
		switch {
		case r.URL.Path == "/" || r.URL.Path == strings.TrimSuffix(Prefix, "/"):
			http.Redirect(w, r, Prefix, http.StatusFound)
		case r.URL.Path == SessionPath:
			s := Session{TokenRequired: o.TokenRequired != nil && o.TokenRequired()}
			s.Authenticated = !s.TokenRequired || (o.Authorized != nil && o.Authorized(r))
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(s)
		case strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != Prefix:
			http.NotFound(w, r) // no directory listings
		default:
			// The files change with the binary: a browser must not keep
			// an old page after an upgrade.
			w.Header().Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		}
	})
}

// contentSecurityPolicy allows the page only its own files and its own
// daemon: no inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
