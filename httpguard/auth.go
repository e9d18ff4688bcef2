package httpguard

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"aima/errs"
	"aima/httpapi"
)

// Routes the guard serves itself: the login that turns the token into a
// cookie for pages that cannot send headers (EventSource), and the logout.
const (
	LoginPath  = "/auth/login"
	LogoutPath = "/auth/logout"
)

// Paths lists the routes the guard serves itself (any method; all but POST
// are answered 405), for the daemon's list of what it serves.
func Paths() []string { return []string{LoginPath, LogoutPath} }

// CookieName is the login cookie.
const CookieName = "aima_session"

// CookieTTL is how long a login cookie is valid.
const CookieTTL = 24 * time.Hour

// maxLoginBody caps the login request: {"token": "..."}.
const maxLoginBody = 8 << 10

// Authorized reports whether r may use the daemon: no token is configured,
// or r carries it (as a bearer token or a login cookie). Pages served
// without the token (Options.Public) ask it whether to show a login form.
func (g *Guard) Authorized(r *http.Request) bool { return g.token == "" || g.authorized(r) }

// TokenRequired reports whether the daemon has a token.
func (g *Guard) TokenRequired() bool { return g.token != "" }

// authorized reports whether r carries the token: as a bearer token, or as
// a login cookie minted from it.
func (g *Guard) authorized(r *http.Request) bool {
	if scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok &&
		strings.EqualFold(scheme, "Bearer") && g.token.equal(strings.TrimSpace(cred)) {
		return true
	}
	c, err := r.Cookie(CookieName)
	return err == nil && g.validCookie(c.Value)
}

// A login cookie is "v1.<expiry unix seconds>.<MAC>", MAC being
// HMAC-SHA256 over the expiry, keyed by a hash of the token. It is checked
// without server-side state (so it survives daemon restarts), a stolen
// cookie is not the token and stops working at its expiry, and changing the
// token invalidates every cookie.
func (g *Guard) mintCookie(exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return "v1." + e + "." + base64.RawURLEncoding.EncodeToString(g.cookieMAC(e))
}

func (g *Guard) validCookie(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || g.now().Unix() >= exp {
		return false
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[2])
	return err == nil && hmac.Equal(mac, g.cookieMAC(parts[1]))
}

func (g *Guard) cookieMAC(exp string) []byte {
	key := sha256.Sum256([]byte("aima login cookie\x00" + g.token.Reveal()))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(exp))
	return m.Sum(nil)
}

// LoginResult is the answer of POST /auth/login and /auth/logout.
type LoginResult struct {
	Authenticated bool `json:"authenticated"`
	// TokenRequired is false when the daemon has no token: every request is
	// accepted and no cookie is set.
	TokenRequired bool       `json:"token_required"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
}

// login is POST /auth/login {"token": "..."}: with the right token it sets
// the login cookie (HttpOnly, SameSite=Strict, Path=/, Secure over TLS).
func (g *Guard) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"token"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err != nil {
		httpapi.WriteError(w, http.StatusRequestEntityTooLarge, errs.Invalid("", "login body exceeds %d bytes", maxLoginBody))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		httpapi.WriteError(w, 0, errs.Invalid("token", `login body: want {"token": "<the daemon's token>"}`))
		return
	}
	if g.token == "" {
		writeResult(w, LoginResult{Authenticated: true})
		return
	}
	if in.Token == "" || !g.token.equal(in.Token) {
		g.unauthorized(w, "wrong token")
		return
	}
	exp := g.now().Add(CookieTTL).UTC().Truncate(time.Second)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: g.mintCookie(exp), Path: "/", MaxAge: int(CookieTTL / time.Second), Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeResult(w, LoginResult{Authenticated: true, TokenRequired: true, ExpiresAt: &exp})
}

// logout is POST /auth/logout: it clears the login cookie.
func (g *Guard) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeResult(w, LoginResult{TokenRequired: g.token != ""})
}

func (g *Guard) unauthorized(w http.ResponseWriter, why string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="aima"`)
	httpapi.WriteError(w, 0, errs.New(errs.Unauthenticated,
		"%s: send \"Authorization: Bearer <token>\" with the daemon's token (AIMA_TOKEN or AIMA_TOKEN_FILE), or log in with POST %s", why, LoginPath))
}

func writeResult(w http.ResponseWriter, res LoginResult) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(res)
}
