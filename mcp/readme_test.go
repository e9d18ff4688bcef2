package mcp_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
)

// readmeServer is one server entry of an MCP client config snippet
// (Claude Desktop, Claude Code and Cursor use mcpServers, VS Code servers).
type readmeServer struct {
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	URL     string            `json:"url"`
}

// TestReadmeSnippets parses every JSON snippet of the README and of
// docs/reference/mcp.md and, for each
// MCP client config in them, checks it: a stdio server whose command is
// aima is started (the built binary, pointed at a test daemon through the
// snippet's own AIMA_ADDR key) and must initialize and list the tools; an
// HTTP server's URL must be the daemon's /mcp, which a client then reaches;
// an mcp-remote bridge must point at /mcp.
func TestReadmeSnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the aima binary")
	}
	var docs []byte
	for _, page := range []string{"README.md", "docs/reference/mcp.md"} {
		b, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), page))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b...)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(docs), -1)
	if len(blocks) < 6 {
		t.Fatalf("found %d JSON snippets in the README and docs/reference/mcp.md", len(blocks))
	}
	bin := testenv.BuildAima(t)
	url := fakeDaemonURL(t)
	addr := strings.TrimPrefix(url, "http://")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	stdio, http := 0, 0
	for i, b := range blocks {
		var doc struct {
			MCPServers map[string]readmeServer `json:"mcpServers"`
			Servers    map[string]readmeServer `json:"servers"`
		}
		if err := json.Unmarshal([]byte(b[1]), &doc); err != nil {
			t.Errorf("README JSON snippet %d does not parse: %v\n%s", i+1, err, b[1])
			continue
		}
		servers := doc.MCPServers
		if len(doc.Servers) > 0 {
			servers = doc.Servers
		}
		for name, s := range servers {
			switch {
			case s.Command == "aima":
				stdio++
				if s.Type != "" && s.Type != "stdio" {
					t.Errorf("snippet %d server %s: type %q with a command", i+1, name, s.Type)
				}
				cmd := exec.Command(bin, s.Args...)
				cmd.Env = append(os.Environ(), "AIMA_ADDR="+addr)
				for k, v := range s.Env {
					if k == "AIMA_ADDR" {
						v = addr // the snippet's key, the test daemon's address
					}
					cmd.Env = append(cmd.Env, k+"="+v)
				}
				checkServes(ctx, t, &sdk.CommandTransport{Command: cmd}, "snippet "+name)
			case s.Command == "npx":
				if !strings.Contains(strings.Join(s.Args, " "), "mcp-remote http://127.0.0.1:9090/mcp") {
					t.Errorf("snippet %d server %s: mcp-remote bridge %v does not point at the daemon's /mcp", i+1, name, s.Args)
				}
			case s.URL != "":
				http++
				if s.URL != "http://127.0.0.1:9090/mcp" || (s.Type != "" && s.Type != "http") {
					t.Errorf("snippet %d server %s: url %q type %q", i+1, name, s.URL, s.Type)
				}
				endpoint := url + strings.TrimPrefix(s.URL, "http://127.0.0.1:9090")
				checkServes(ctx, t, &sdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, "snippet "+name)
			default:
				t.Errorf("snippet %d server %s: neither a command nor a URL: %+v", i+1, name, s)
			}
		}
	}
	if stdio < 4 || http < 2 {
		t.Errorf("the README has %d stdio and %d HTTP MCP configs; want the clients' setups (at least 4 and 2)", stdio, http)
	}
}

// checkServes connects, initializes and lists the tools.
func checkServes(ctx context.Context, t *testing.T, tr sdk.Transport, what string) {
	t.Helper()
	cl := sdk.NewClient(&sdk.Implementation{Name: "readme-test", Version: "1"}, nil)
	cs, err := cl.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: legacy})
	if err != nil {
		t.Errorf("%s: initialize: %v", what, err)
		return
	}
	defer cs.Close()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Errorf("%s: tools/list: %v", what, err)
	} else if len(res.Tools) < 10 {
		t.Errorf("%s: tools/list: %d tools", what, len(res.Tools))
	}
}
