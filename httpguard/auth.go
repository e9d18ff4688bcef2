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
	"aima/httperr"
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
// A bearer token checked here counts like anywhere else: a wrong one is a
// failure of its address, and a locked-out address is never authorized,
// so this is no way around the throttle.
func (g *Guard) Authorized(r *http.Request) bool {
	if g.token == "" || g.hasCookie(r) {
		return true
	}
	v, _, _ := g.checkBearer(r)
	return v == bearerOK
}

// TokenRequired reports whether the daemon has a token.
func (g *Guard) TokenRequired() bool { return g.token != "" }

// bearer returns the credential of r's "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(cred), true
}

func (g *Guard) hasCookie(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	return err == nil && g.validCookie(c.Value)
}

// What checkBearer found.
type bearerVerdict int

const (
	noBearer bearerVerdict = iota
	bearerOK
	bearerWrong
	bearerLockedOut
)

// checkBearer checks r's bearer token, unless its client address is
// locked out (then the token is not even compared: else the lockout would
// slow the answers, not the guessing). A wrong token counts against the
// address and is logged. It returns the address and, when locked out, for
// how long still.
func (g *Guard) checkBearer(r *http.Request) (bearerVerdict, ClientKey, time.Duration) {
	cred, sent := bearer(r)
	if !sent {
		return noBearer, ClientKey{}, 0
	}
	key := clientKeyOf(r.RemoteAddr)
	if left := g.failures.lockedOut(key); left > 0 {
		return bearerLockedOut, key, left
	}
	if g.token.equal(cred) {
		return bearerOK, key, 0
	}
	g.failed(r, key, "bearer token")
	return bearerWrong, key, 0
}

// authenticate applies rule 5 to a request that needs the token, and
// answers it when it fails. A valid login cookie passes (it cannot be
// guessed: it is a MAC); a bearer token as checkBearer says.
func (g *Guard) authenticate(w http.ResponseWriter, r *http.Request) bool {
	if g.hasCookie(r) {
		return true
	}
	switch v, key, left := g.checkBearer(r); v {
	case bearerOK:
		return true
	case bearerLockedOut:
		g.lockedOut(w, key, left)
	case bearerWrong:
		g.unauthorized(w, "wrong token")
	default:
		why := "missing token"
		if _, err := r.Cookie(CookieName); err == nil {
			why = "login cookie expired or not valid for this token, and no token"
		}
		g.unauthorized(w, why)
	}
	return false
}

// failed counts and logs one wrong token from key; how is "login" or
// "bearer token". The token itself is never logged.
func (g *Guard) failed(r *http.Request, key ClientKey, how string) {
	n, lock := g.failures.fail(key)
	attrs := []any{"client", key.String(), "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "credential", how, "failures_in_a_row", n}
	if lock > 0 {
		attrs = append(attrs, "locked_out_for", lock.String())
	}
	g.log.Warn("authentication failed: wrong token", attrs...)
}

// lockedOut answers a request from a locked-out address: 429, kind
// unavailable (asking again later cures it), Retry-After in seconds.
func (g *Guard) lockedOut(w http.ResponseWriter, key ClientKey, left time.Duration) {
	secs := int((left + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Connection", "close")
	httperr.Write(w, http.StatusTooManyRequests, errs.New(errs.Unavailable,
		"too many wrong tokens from %s: every token from it is refused for %d s more; try again after that", key, secs))
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
		httperr.Write(w, http.StatusRequestEntityTooLarge, errs.Invalid("", "login body exceeds %d bytes", maxLoginBody))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		httperr.Write(w, 0, errs.Invalid("token", `login body: want {"token": "<the daemon's token>"}`))
		return
	}
	if g.token == "" {
		writeResult(w, LoginResult{Authenticated: true})
		return
	}
	key := clientKeyOf(r.RemoteAddr)
	if left := g.failures.lockedOut(key); left > 0 {
		g.lockedOut(w, key, left)
		return
	}
	if in.Token == "" || !g.token.equal(in.Token) {
		g.failed(r, key, "login")
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

// logout is POST /auth/logout: it clears the login cookie in the browser
// that sends it. The cookie is stateless (a MAC of its expiry), so a copy
// taken before stays valid until it expires or the token changes; the
// token itself is not revoked either.
func (g *Guard) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeResult(w, LoginResult{TokenRequired: g.token != ""})
}

// unauthorized answers 401 and closes the connection, so a client without
// the token holds no connection after its answer.
func (g *Guard) unauthorized(w http.ResponseWriter, why string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="aima"`)
	w.Header().Set("Connection", "close")
	httperr.Write(w, 0, errs.New(errs.Unauthenticated,
		"%s: send \"Authorization: Bearer <token>\" with the daemon's token (AIMA_TOKEN or AIMA_TOKEN_FILE), or log in with POST %s", why, LoginPath))
}

func writeResult(w http.ResponseWriter, res LoginResult) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(res)
}
