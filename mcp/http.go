package mcp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"aima/errs"
)

// Path is where the daemon serves MCP over streamable HTTP.
const Path = "/mcp"

// sessionIdleTTL bounds how long the state of a 2025-11-25 session whose
// client vanished without DELETE is kept.
const sessionIdleTTL = time.Hour

// HTTPOptions configure Handler.
type HTTPOptions struct {
	// Token, when set, must arrive as "Authorization: Bearer <token>". It is
	// required whenever the daemon listens beyond loopback (CheckExposure):
	// anyone who can reach /mcp can start containers.
	Token string
	// Logger receives transport errors; nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves s over MCP streamable HTTP at Path, for both protocol eras
// at once: mcp-go v1.2.1 decides per request. A request that declares
// 2026-07-28 (MCP-Protocol-Version header and _meta) is stateless; anything
// else takes the 2025-11-25 path (initialize, then Mcp-Session-Id).
//
// In front of it, guard rejects DNS rebinding (a loopback listener reached
// with a foreign Host), foreign browser Origins, and, with a token, missing
// credentials; it caps bodies at 4 MiB and absorbs one go-sdk/mcp-go
// disagreement (isStatelessCancel). mcp-go's own Host check is switched off
// so that there is one check with one JSON error body.
//
// No write timeout applies: a service_start with wait=true may stream
// progress for minutes, and ends when the start ends or the client goes
// away (request ctx), never on a transport timer. The daemon's http.Server
// sets only ReadHeaderTimeout, which is what this needs.
func Handler(s *server.MCPServer, opts HTTPOptions) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	h := server.NewStreamableHTTPServer(s,
		server.WithEndpointPath(Path),
		server.WithDisableLocalhostProtection(true),
		server.WithSessionIdleTTL(sessionIdleTTL),
		server.WithStreamableHTTPLogger(logger),
	)
	return &guard{next: h, token: opts.Token}
}

// guard applies the HTTP access rules in front of the MCP transport.
type guard struct {
	next  http.Handler
	token string
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && local != nil &&
		isLoopbackHost(local.String()) && !isLoopbackHost(r.Host) {
		deny(w, http.StatusForbidden, codeForbidden, fmt.Sprintf(
			"Host %q is not allowed on a loopback listener (DNS rebinding protection); use localhost or 127.0.0.1", r.Host))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !isLoopbackOrigin(origin) {
		deny(w, http.StatusForbidden, codeForbidden, fmt.Sprintf(
			"Origin %q is not allowed: aima's MCP endpoint accepts browser requests only from http://localhost, http://127.0.0.1 or http://[::1]", origin))
		return
	}
	if g.token != "" && !bearerMatches(r.Header.Get("Authorization"), g.token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aima"`)
		deny(w, http.StatusUnauthorized, codeUnauthenticated,
			"missing or wrong bearer token: send \"Authorization: Bearer <token>\" with the daemon's AIMA_TOKEN")
		return
	}
	if r.Method == http.MethodPost {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		if isStatelessCancel(r, body) {
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// Transport-level error codes. They are not errs kinds: they refuse a
// request before any operation runs.
const (
	codeForbidden       = "permission_denied"
	codeUnauthenticated = "unauthenticated"
)

// deny writes the JSON error body the HTTP API uses.
func deny(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func bearerMatches(header, token string) bool {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), []byte(token)) == 1
}

// isLoopbackOrigin accepts http(s)://localhost, 127.0.0.0/8 and [::1], on
// any port.
func isLoopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || (u.Path != "" && u.Path != "/") {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

// isLoopbackHost reports whether a host or host:port names loopback.
func isLoopbackHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// CheckExposure refuses to serve MCP over HTTP on a listen address beyond
// loopback without a token: /mcp can start containers and read logs, so on
// a LAN it must not be open. An empty host (":9090") listens everywhere.
func CheckExposure(listenAddr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		host = listenAddr
	}
	if host != "" && isLoopbackHost(host) {
		return nil
	}
	return errs.New(errs.Unavailable, "MCP over HTTP is disabled: the daemon listens on %s, beyond loopback, "+
		"and AIMA_TOKEN is not set; set AIMA_TOKEN (clients send it as a bearer token) or listen on 127.0.0.1", listenAddr)
}

// Disabled answers every request with err as a 503 JSON error; the daemon
// mounts it at Path when CheckExposure refuses, so clients learn why.
func Disabled(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		deny(w, http.StatusServiceUnavailable, string(errs.KindOf(err)), err.Error())
	})
}

// ServeStdio serves s over stdin/stdout until stdin ends or ctx is done.
// Only protocol messages go to out; mcp-go's own errors go to errOut.
// mcp-go keeps the stdio session in a package variable, so one process
// serves one stdio connection.
func ServeStdio(ctx context.Context, s *server.MCPServer, in io.Reader, out, errOut io.Writer) error {
	ss := server.NewStdioServer(s)
	ss.SetErrorLogger(log.New(errOut, "aima mcp: ", log.LstdFlags))
	err := ss.Listen(ctx, in, out)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}
