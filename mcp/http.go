package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"aima/errs"
	"aima/httperr"
)

// Path is where the daemon serves MCP over streamable HTTP.
const Path = "/mcp"

// Session limits of the 2025-11-25 era (the 2026-07-28 era has no
// sessions). A client that stays idle past the TTL, or whose session is the
// least recently used one when the table is full and a new client
// initializes, gets 404 and initializes again, as the specification asks of
// clients.
const (
	DefaultMaxSessions    = 1000
	DefaultSessionIdleTTL = time.Hour
)

// HTTPOptions configure Handler.
type HTTPOptions struct {
	// Logger receives transport errors; nil means slog.Default().
	Logger *slog.Logger
	// MaxSessions and SessionIdleTTL bound the 2025-11-25 sessions; zero
	// means the defaults.
	MaxSessions    int
	SessionIdleTTL time.Duration
}

// Handler serves s over MCP streamable HTTP at Path, for both protocol eras
// at once: mcp-go v1.2.1 decides per request. A request that declares
// 2026-07-28 (MCP-Protocol-Version header and _meta) is stateless; anything
// else takes the 2025-11-25 path (initialize, then Mcp-Session-Id).
//
// Access control (Host, Origin, content type, token) is the daemon's one
// guard (package httpguard), in front of every route; mcp-go's own Host
// check is switched off so that there is one check with one JSON error
// body. In front of mcp-go, transport enforces what mcp-go v1.2.1 leaves
// open in the sessions era: ids are issued by aima and checked (a request
// other than initialize without Mcp-Session-Id is 400, an id aima did not
// issue, or that ended, expired or was evicted, is 404), DELETE ends a
// session, and the table is bounded (sessions). It also caps bodies at
// 4 MiB and absorbs one go-sdk/mcp-go disagreement (isStatelessCancel).
//
// No write timeout applies: a service_start with wait=true may stream
// progress for minutes, and ends when the start ends or the client goes
// away (request ctx), never on a transport timer. The daemon's deadlines
// bound a request's headers and body and an idle connection, never an
// answer, which is what this needs (net/http lifts the request's read
// deadline once readBody has read the body to its end).
func Handler(s *server.MCPServer, opts HTTPOptions) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	sess := newSessions(opts.MaxSessions, opts.SessionIdleTTL, time.Now)
	h := server.NewStreamableHTTPServer(s,
		server.WithEndpointPath(Path),
		server.WithDisableLocalhostProtection(true),
		server.WithSessionIdManager(sess),
		server.WithSessionIdleTTL(sess.ttl),
		server.WithStreamableHTTPLogger(logger),
	)
	return &transport{next: h, sessions: sess}
}

// transport applies the session and body rules in front of mcp-go.
type transport struct {
	next     http.Handler
	sessions *sessions
}

func (t *transport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Sessions evicted to make room are cleaned out of mcp-go too, so its
	// per-session state is bounded by the same table.
	defer t.forgetEvicted()
	var body []byte
	if r.Method == http.MethodPost {
		var ok bool
		if body, ok = readBody(w, r); !ok {
			return
		}
		if isStatelessCancel(r, body) {
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	if err := t.checkSession(r, body); err != nil {
		httperr.Write(w, 0, err)
		return
	}
	t.next.ServeHTTP(w, r)
}

// checkSession applies the 2025-11-25 session rules; requests of the
// stateless era, and initialize, pass.
func (t *transport) checkSession(r *http.Request, body []byte) error {
	if mcpgo.IsModernProtocol(r.Header.Get(mcpgo.HeaderProtocolVersion)) {
		return nil
	}
	switch r.Method {
	case http.MethodPost:
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Meta *mcpgo.Meta `json:"_meta"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &msg) != nil {
			return nil // not one JSON object: mcp-go answers with its protocol error
		}
		if msg.Method == string(mcpgo.MethodInitialize) || mcpgo.IsModernProtocol(msg.Params.Meta.ProtocolVersion()) {
			return nil
		}
	case http.MethodGet, http.MethodDelete:
	default:
		return nil
	}
	id := r.Header.Get(server.HeaderKeySessionID)
	if id == "" {
		return errs.Invalid(server.HeaderKeySessionID, "Mcp-Session-Id header is required: send the id the initialize response carried (or use protocol version 2026-07-28, which has no sessions)")
	}
	if !t.sessions.known(id) {
		return errs.NotFoundf("MCP session %q not found: it ended, expired or was never issued; initialize a new session", truncate(id, 80))
	}
	return nil
}

// forgetEvicted asks mcp-go to drop the state of evicted sessions, through
// its own DELETE path (the one public way to reach its cleanup).
func (t *transport) forgetEvicted() {
	for _, id := range t.sessions.takeEvicted() {
		req, err := http.NewRequest(http.MethodDelete, Path, nil)
		if err != nil {
			continue
		}
		req.Header.Set(server.HeaderKeySessionID, id)
		t.next.ServeHTTP(discard{}, req)
	}
}

// discard is a ResponseWriter that throws the answer away.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
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
