package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"aima/errs"
	"aima/httperr"
)

// maxBodyBytes caps a JSON-RPC message: tool arguments are capped at
// tools.MaxInputBytes (1 MiB), plus room for the envelope. mcp-go itself
// reads bodies without a limit.
const maxBodyBytes = 4 << 20

// readBody reads and restores r's body within maxBodyBytes; false means a
// 413 was written.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil {
		return nil, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httperr.Write(w, http.StatusRequestEntityTooLarge, errs.Invalid("", "request body exceeds 4 MiB"))
			return nil, false
		}
		httperr.Write(w, 0, errs.Invalid("", "reading the request body: %v", err))
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

// isStatelessCancel recognises the notifications/cancelled that the
// official go-sdk (v1.8.0) sends when a 2026-07-28 call's context ends: it
// carries the protocol version in the MCP-Protocol-Version header but not in
// _meta, and mcp-go v1.2.1 answers such a message with 400, after which the
// go-sdk client marks its whole connection failed. In that era every
// request has its own HTTP exchange and the client also closes it, which
// cancels the handler; the notification has nothing left to do, so transport
// acknowledges it with 202 as the transport requires for notifications.
func isStatelessCancel(r *http.Request, body []byte) bool {
	if r.Method != http.MethodPost || !mcpgo.IsModernProtocol(r.Header.Get(mcpgo.HeaderProtocolVersion)) {
		return false
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Meta map[string]any `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.ID != nil || msg.Method != string(mcpgo.MethodNotificationCancelled) {
		return false
	}
	_, hasVersion := msg.Params.Meta[mcpgo.MetaKeyProtocolVersion]
	return !hasVersion
}
