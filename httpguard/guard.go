// Package httpguard is the one gate in front of every HTTP route of the
// daemon (/api, /rpc, /mcp, SSE streams, /health, and whatever is mounted
// later): it keeps browsers and DNS-rebinding pages from driving the daemon,
// and checks the token.
//
// The rules, in order (each refusal is the HTTP API's JSON error body):
//
//  1. Host must be a loopback name or address (any port), the address the
//     connection arrived at, or an allowed_hosts entry: 403 permission_denied
//     otherwise (DNS rebinding).
//  2. A request with an Origin must come from an allowed_origins entry or
//     from the daemon's own origin (scheme and Host of the request); "null"
//     and anything else are 403 permission_denied. A browser request without
//     Origin that Fetch Metadata marks as cross-site or same-site (and not a
//     navigation) is refused the same way.
//  3. OPTIONS is answered here: configured origins get a CORS preflight
//     grant, nobody else gets one.
//  4. Methods other than GET, HEAD and a body-less DELETE must carry
//     Content-Type: application/json: 415 otherwise. This turns every
//     state-changing browser request into one that needs a CORS preflight,
//     which only configured origins pass. (MCP's DELETE, which ends a
//     session, has no body; browsers preflight DELETE anyway.)
//  5. With a token, every route but GET /health, the login/logout routes
//     and the static files Options.Public names needs it, as a bearer token
//     or as the login cookie: 401 unauthenticated otherwise. Wrong tokens
//     (a bearer token or a login) are logged and throttled per client
//     address (throttle.go): past a few, the address is locked out for a
//     growing time and answered 429 (unavailable) with Retry-After.
//
// Connections are bounded by a ConnLimiter (conns.go), which sits in
// front of the listener.
package httpguard

import (
	"context"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"aima/errs"
	"aima/httperr"
)

// Options configure New.
type Options struct {
	// AllowedHosts and AllowedOrigins are the config file's allowed_hosts
	// and allowed_origins.
	AllowedHosts   []string
	AllowedOrigins []string
	// Token, when set, is required on every route but GET /health, the
	// login routes and what Public accepts.
	Token Secret
	// Public, when set, names more GET and HEAD requests served without the
	// token: files that carry no data (the web dashboard's HTML, CSS and
	// JavaScript, which then log in). The Host and Origin rules still apply.
	Public func(path string) bool
	// Logger receives refusals at debug level; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of login cookies and the login throttle; nil means
	// time.Now.
	Now func() time.Time
}

// Guard is the access gate; Wrap puts it in front of a handler.
type Guard struct {
	hosts   []HostPattern
	origins map[string]bool // canonical form, see CanonicalOrigin
	token   Secret
	public  func(path string) bool
	log     *slog.Logger
	now     func() time.Time
	// failures throttles wrong tokens per client address.
	failures *throttle
}

// New checks the options and builds the guard.
func New(o Options) (*Guard, error) {
	g := &Guard{origins: map[string]bool{}, token: o.Token, public: o.Public, log: o.Logger, now: o.Now}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.failures = newThrottle(g.now)
	for _, h := range o.AllowedHosts {
		p, err := ParseHostPattern(h)
		if err != nil {
			return nil, errs.Invalid("allowed_hosts", "%v", err)
		}
		g.hosts = append(g.hosts, p)
	}
	for _, s := range o.AllowedOrigins {
		c, err := CanonicalOrigin(s)
		if err != nil {
			return nil, errs.Invalid("allowed_origins", "allowed_origins: %v", err)
		}
		g.origins[c] = true
	}
	return g, nil
}

// Headers a configured origin may send and read.
const (
	corsMethods = "GET, HEAD, POST, DELETE"
	corsHeaders = "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, MCP-Protocol-Version"
	corsExpose  = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate"
)

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r) {
			g.deny(w, r, http.StatusForbidden, errs.New(errs.PermissionDenied,
				"Host %q is not allowed: aima answers loopback names and addresses and the allowed_hosts of its config (DNS rebinding protection)", r.Host))
			return
		}
		cors, err := g.checkOrigin(r)
		if err != nil {
			g.deny(w, r, http.StatusForbidden, err)
			return
		}
		if cors {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", corsExpose)
		}
		if r.Header.Get("Origin") != "" {
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			g.options(w, r, cors)
			return
		}
		if err := contentTypeOK(r); err != nil {
			g.deny(w, r, http.StatusUnsupportedMediaType, err)
			return
		}
		switch r.URL.Path {
		case LoginPath, LogoutPath:
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				httperr.Write(w, http.StatusMethodNotAllowed, errs.Invalid("", "method %s not allowed; use POST with a JSON body", r.Method))
				return
			}
			if r.URL.Path == LoginPath {
				g.login(w, r)
			} else {
				g.logout(w, r)
			}
			return
		}
		if g.token != "" && !g.isPublic(r) && !g.authenticate(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isPublic: GET /health answers without the token, so a supervisor can
// probe the daemon without holding it; so do the paths Options.Public names.
func (g *Guard) isPublic(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == "/health" || (g.public != nil && g.public(r.URL.Path))
}

func (g *Guard) deny(w http.ResponseWriter, r *http.Request, status int, err error) {
	g.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "host", r.Host,
		"origin", r.Header.Get("Origin"), "status", status, "err", err)
	httperr.Write(w, status, err)
}

// options answers OPTIONS: a preflight from a configured origin gets its
// grant; every other OPTIONS gets the methods and no grant.
func (g *Guard) options(w http.ResponseWriter, r *http.Request, cors bool) {
	h := w.Header()
	h.Set("Allow", "GET, HEAD, POST, DELETE, OPTIONS")
	if cors && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", "600")
		h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
	}
	w.WriteHeader(http.StatusNoContent)
}

// hostAllowed applies rule 1.
func (g *Guard) hostAllowed(r *http.Request) bool {
	host, port, err := SplitHost(r.Host)
	if err != nil || host == "" {
		return false
	}
	if IsLoopbackHost(host) {
		return true
	}
	for _, p := range g.hosts {
		if p.Matches(host, port) {
			return true
		}
	}
	// An address literal cannot be rebound: a Host naming the very address
	// the connection arrived at is what a client that dialled it sends.
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap() == localIP(r.Context())
}

func localIP(ctx context.Context) netip.Addr {
	if a, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok && a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// checkOrigin applies rule 2; cors reports a configured cross origin, which
// gets CORS headers.
func (g *Guard) checkOrigin(r *http.Request) (cors bool, err error) {
	origin, has := r.Header["Origin"]
	if !has {
		site := r.Header.Get("Sec-Fetch-Site")
		if (site == "cross-site" || site == "same-site") && r.Header.Get("Sec-Fetch-Mode") != "navigate" {
			return false, errs.New(errs.PermissionDenied, "a %s browser request without an Origin is not allowed", site)
		}
		return false, nil
	}
	o := strings.Join(origin, ",")
	if o == "null" {
		return false, errs.New(errs.PermissionDenied, `Origin "null" (a sandboxed or local-file page) is not allowed`)
	}
	c, err := CanonicalOrigin(o)
	if err != nil {
		return false, errs.New(errs.PermissionDenied, "Origin %q is not allowed: not an http(s) origin", o)
	}
	if g.origins[c] {
		return true, nil
	}
	if c == ownOrigin(r) {
		return false, nil
	}
	return false, errs.New(errs.PermissionDenied,
		"Origin %q is not allowed: aima accepts browser requests from its own pages and from the allowed_origins of its config", o)
}

// ownOrigin is the canonical origin of the daemon as this request reached
// it, or "" when the Host cannot be one.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c, err := CanonicalOrigin(scheme + "://" + r.Host)
	if err != nil {
		return ""
	}
	return c
}

// contentTypeOK applies rule 4.
func contentTypeOK(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return nil
	case http.MethodDelete:
		if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
			return nil
		}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return errs.New(errs.InvalidArgument, "%s requests must have Content-Type: application/json (got %s)", r.Method, ct)
}

// IsLoopbackHost reports whether host (a name or address, without port)
// names this machine's loopback interface.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// IsLoopback reports whether a listen address (host:port) only accepts
// local clients. An empty host (":9090") listens everywhere.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return host != "" && IsLoopbackHost(host)
}
