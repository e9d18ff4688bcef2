package httpguard

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimits bound the connections the daemon holds open at once.
type ConnLimits struct {
	// Max is the bound in all; PerClient the bound per client address
	// (ClientKey). The daemon passes the config's http section (its
	// defaults, config.DefaultHTTP, say why they are what they are); zero
	// or less means no bound.
	Max, PerClient int
}

// ConnStats are a ConnLimiter's figures, for /metrics.
type ConnStats struct {
	Open int
	// RefusedTotal and RefusedPerClient count connections closed at once
	// because the daemon, or their client, already held the maximum.
	RefusedTotal, RefusedPerClient int64
}

// ConnLimiter counts the daemon's open connections and refuses those past
// its limits: they are accepted (so the kernel's backlog never fills up
// and other clients still get in), answered 503 with a one-line reason,
// and closed at once, without a goroutine or a read. It is the one place
// connections are counted; Listen puts it in front of a listener.
type ConnLimiter struct {
	limits ConnLimits
	log    *slog.Logger

	mu        sync.Mutex
	open      int
	perClient map[ClientKey]int // entries go when their count reaches 0

	refusedTotal, refusedPerClient atomic.Int64
	lastLog                        atomic.Int64 // unix nanos of the last refusal logged
}

// NewConnLimiter builds a limiter; a nil logger means slog.Default().
func NewConnLimiter(l ConnLimits, log *slog.Logger) *ConnLimiter {
	for _, n := range []*int{&l.Max, &l.PerClient} {
		if *n <= 0 {
			*n = math.MaxInt
		}
	}
	if log == nil {
		log = slog.Default()
	}
	return &ConnLimiter{limits: l, log: log, perClient: map[ClientKey]int{}}
}

// Stats returns the current figures.
func (c *ConnLimiter) Stats() ConnStats {
	c.mu.Lock()
	open := c.open
	c.mu.Unlock()
	return ConnStats{Open: open, RefusedTotal: c.refusedTotal.Load(), RefusedPerClient: c.refusedPerClient.Load()}
}

// Listen returns ln with the limits applied to what it accepts.
func (c *ConnLimiter) Listen(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, c: c}
}

type limitedListener struct {
	net.Listener
	c *ConnLimiter
}

// Accept returns the next connection within the limits; those past them
// are refused on the way.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKeyOf(conn.RemoteAddr().String())
		why := l.c.admit(key)
		if why == "" {
			return &limitedConn{Conn: conn, c: l.c, key: key}, nil
		}
		l.c.refuse(conn, key, why)
	}
}

// admit counts a new connection of key, or says why it is refused.
func (c *ConnLimiter) admit(key ClientKey) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.open >= c.limits.Max:
		c.refusedTotal.Add(1)
		return fmt.Sprintf("the daemon already holds %d connections (http.max_connections)", c.limits.Max)
	case c.perClient[key] >= c.limits.PerClient:
		c.refusedPerClient.Add(1)
		return fmt.Sprintf("%s already holds %d connections to the daemon (http.max_connections_per_client)", key, c.limits.PerClient)
	}
	c.open++
	c.perClient[key]++
	return ""
}

func (c *ConnLimiter) release(key ClientKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if c.perClient[key]--; c.perClient[key] <= 0 {
		delete(c.perClient, key)
	}
}

// refuseWriteTimeout bounds the write of a refusal: a fresh socket's send
// buffer takes it at once, so this only matters to a peer that is gone.
const refuseWriteTimeout = 100 * time.Millisecond

// refuse answers a connection past the limits and closes it. The answer
// is written before any of the request is read, which HTTP/1.1 clients
// read as the response to what they send; the body is the HTTP API's
// error body (unavailable). Refusals are logged at most every 10 s, with
// the counts, so a flood does not flood the log too.
func (c *ConnLimiter) refuse(conn net.Conn, key ClientKey, why string) {
	body := fmt.Sprintf(`{"error":{"code":"unavailable","message":"connection refused: %s; close idle connections or try again later"}}`+"\n", why)
	_ = conn.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = conn.Close()
	now := time.Now().UnixNano()
	if last := c.lastLog.Load(); now-last >= int64(10*time.Second) && c.lastLog.CompareAndSwap(last, now) {
		s := c.Stats()
		c.log.Warn("connection refused", "client", key.String(), "why", why, "open", s.Open,
			"refused_total", s.RefusedTotal, "refused_per_client", s.RefusedPerClient)
	}
}

// limitedConn gives its slot back when it is closed (by the server, or by
// whoever hijacked it), once.
type limitedConn struct {
	net.Conn
	c    *ConnLimiter
	key  ClientKey
	once sync.Once
}

func (lc *limitedConn) Close() error {
	err := lc.Conn.Close()
	lc.once.Do(func() { lc.c.release(lc.key) })
	return err
}

// CloseWrite passes the half-close through: net/http uses it to let a
// client read an error answer before the connection is reset.
func (lc *limitedConn) CloseWrite() error {
	if cw, ok := lc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the connection's own (sendfile, splice) copy.
func (lc *limitedConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(lc.Conn, r) }
