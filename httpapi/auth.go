package httpapi

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"aima/errs"
)

// RequireToken wraps h so every request but GET /health must carry
// `Authorization: Bearer <token>`. The daemon uses it whenever a token is
// configured; it is mandatory when the daemon listens beyond loopback,
// because the API starts containers.
func RequireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && r.Method == http.MethodGet {
			h.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aima"`)
			writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: ErrorDetail{Code: errs.InvalidArgument,
				Message: "missing or wrong bearer token: send Authorization: Bearer $AIMA_TOKEN"}})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// IsLoopback reports whether a listen address only accepts local clients.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
