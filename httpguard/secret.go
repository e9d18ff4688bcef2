package httpguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"

	"aima/errs"
)

// Secret is a bearer token. It prints, logs and marshals as "[redacted]",
// so a token inside a struct that reaches a log line, an error message or a
// panic value shows nothing; Reveal is the one way to read it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the token itself, for the Authorization header.
func (s Secret) Reveal() string { return string(s) }

// Format implements fmt.Formatter for every verb (%v, %s, %q, %x, %#v).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler (and so JSON and YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// equal compares got with s in constant time. Both sides are hashed first,
// so neither the content nor the length of the token leaks through timing.
func (s Secret) equal(got string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Environment variables that carry the token to the daemon and its clients.
const (
	TokenEnv     = "AIMA_TOKEN"
	TokenFileEnv = "AIMA_TOKEN_FILE"
)

// maxTokenFileBytes caps the token file: a token is a line, not a document.
const maxTokenFileBytes = 4 << 10

// TokenFromEnv returns the token from AIMA_TOKEN, or read from the file
// AIMA_TOKEN_FILE names (surrounding white space trimmed), or "" when
// neither is set. The daemon and every client (CLI, aima mcp, aima rpc) use
// it, so a token kept in a file never has to appear in a process listing or
// a shell history. Setting both is an error, and so is a file that is not a
// regular file, is empty or is larger than 4 KiB; errors name the file,
// never its content.
func TokenFromEnv(getenv func(string) string) (Secret, error) {
	tok, file := getenv(TokenEnv), getenv(TokenFileEnv)
	switch {
	case tok != "" && file != "":
		return "", errs.Invalid(TokenFileEnv, "both %s and %s are set; set one", TokenEnv, TokenFileEnv)
	case file == "":
		return Secret(strings.TrimSpace(tok)), nil
	}
	raw, err := readTokenFile(file)
	if err != nil {
		return "", err
	}
	tok = strings.TrimSpace(string(raw))
	if tok == "" {
		return "", errs.Invalid(TokenFileEnv, "%s %s is empty", TokenFileEnv, file)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", errs.Invalid(TokenFileEnv, "%s %s holds more than one line; the token is one line", TokenFileEnv, file)
	}
	return Secret(tok), nil
}

// readTokenFile opens path without blocking (a FIFO planted under the name
// must not hang the caller), then checks that what it opened is a regular
// file of at most maxTokenFileBytes.
func readTokenFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errs.Invalid(TokenFileEnv, "%s %s: %v", TokenFileEnv, path, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, errs.Invalid(TokenFileEnv, "%s %s: %v", TokenFileEnv, path, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return nil, errs.Invalid(TokenFileEnv, "%s %s is not a regular file (%s)", TokenFileEnv, path, st.Mode().Type())
	}
	if st.Size() > maxTokenFileBytes {
		return nil, errs.Invalid(TokenFileEnv, "%s %s is %d bytes; a token file holds one line of at most %d", TokenFileEnv, path, st.Size(), maxTokenFileBytes)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return nil, errs.Invalid(TokenFileEnv, "%s %s: %v", TokenFileEnv, path, errors.Unwrap(err))
	}
	return raw, nil
}
