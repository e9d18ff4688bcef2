package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// SockProxy is a Unix-socket proxy between a program under test and an
// upstream Unix socket (the Docker engine's), that the test can sever and
// restore: fault injection for "the Docker API went away".
//
// Every accepted connection is forwarded byte for byte to a fresh upstream
// connection (io.Copy both ways, half-closes passed on). Cut closes every
// live connection and makes the proxy close new ones at once, until Restore.
// The listener, the connections and every goroutine are owned by the proxy
// and ended by Close (at t.Cleanup for StartSockProxy's).
type SockProxy struct {
	path     string
	network  string // the upstream's: unix or tcp
	upstream string
	ln       net.Listener
	wg       sync.WaitGroup

	mu       sync.Mutex
	cut      bool
	closed   bool
	conns    map[net.Conn]struct{}
	accepted int // connections forwarded so far
	refused  int // connections closed at once because the proxy was cut
	peak     int // most connections live at once
}

// StartSockProxy listens on a new Unix socket in a temporary directory and
// forwards to upstream (e.g. /var/run/docker.sock). Point a Docker client at
// it with DOCKER_HOST=unix://<p.Path()>.
func StartSockProxy(t testing.TB, upstream string) *SockProxy {
	t.Helper()
	// A short directory: Unix socket paths are limited to ~108 bytes, and
	// t.TempDir() embeds the (long) test name.
	dir, err := os.MkdirTemp("", "aimasp")
	if err != nil {
		t.Fatalf("sockproxy: %v", err)
	}
	path := filepath.Join(dir, "docker.sock")
	p, err := ListenProxy("unix", path, "unix", upstream)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("sockproxy: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		_ = os.RemoveAll(dir)
	})
	return p
}

// ListenProxy listens on network/addr (unix or tcp) and forwards each
// connection to upstream on upNetwork, until Close. It is for proxies that
// outlive one test (StartSockProxy's end with the test).
func ListenProxy(network, addr, upNetwork, upstream string) (*SockProxy, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	p := &SockProxy{path: addr, network: upNetwork, upstream: upstream, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Close stops accepting, closes every live connection and waits until
// the proxy's goroutines have ended. It is safe to call twice.
func (p *SockProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.closeAll()
	p.wg.Wait()
}

// Path is the proxy's socket path (its address, for a TCP proxy).
func (p *SockProxy) Path() string { return p.path }

// Host is the DOCKER_HOST value that reaches the proxy.
func (p *SockProxy) Host() string { return "unix://" + p.path }

// Cut severs the link: every live connection is closed, and connections
// accepted from now on are closed at once, until Restore.
func (p *SockProxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.closeAll()
}

// Restore lets new connections through again (connections closed by Cut
// stay closed; clients reconnect).
func (p *SockProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// IsCut reports whether the link is severed.
func (p *SockProxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Stats returns how many connections were forwarded, refused while cut,
// and are live now (each forwarded connection counts its two ends as one).
func (p *SockProxy) Stats() (accepted, refused, live int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.refused, len(p.conns) / 2
}

// PeakLive returns the most connections that were live at once.
func (p *SockProxy) PeakLive() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// closeAll closes every live connection and forgets it at once, so Stats
// counts it as gone as soon as Cut returns (not when its pipes wind down).
func (p *SockProxy) closeAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
		delete(p.conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *SockProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		p.mu.Lock()
		cut, closed := p.cut, p.closed
		if cut {
			p.refused++
		}
		p.mu.Unlock()
		if cut || closed {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward links one client connection to a new upstream connection.
func (p *SockProxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial(p.network, p.upstream)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed { // cut while dialling
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.accepted++
	p.conns[c] = struct{}{}
	p.conns[up] = struct{}{}
	p.peak = max(p.peak, len(p.conns)/2)
	p.mu.Unlock()

	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); pipe(up, c) }()
	go func() { defer both.Done(); pipe(c, up) }()
	both.Wait()
	_ = c.Close()
	_ = up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// pipe copies src to dst, then passes the end of src on as a half-close of
// dst (or a full close when dst cannot half-close), so a peer that finished
// sending still gets the answer.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		_ = cw.CloseWrite()
		return
	}
	// An error (a Cut, a reset) ends both directions.
	_ = dst.Close()
	_ = src.Close()
}
