//go:build linux

package kubernetes

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// acceptor accepts the connections of every published port in one
// goroutine, from one epoll set of the listeners' sockets, where a
// goroutine parked in Accept per port cost each running service a
// goroutine stack (8–16 KiB, more when Go sized new stacks after a burst of
// deep ones: 17 MiB of stacks at 1,000 services) and, through the
// collector's goal, half as much heap again (docs/performance.md).
// Accepting is non-blocking: the socket is read only when epoll says a
// connection waits.
type acceptor struct {
	epfd   int
	mu     sync.Mutex
	fds    map[int32]*published
	closed bool // run ended and closed epfd
}

func newAcceptor() (*acceptor, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &acceptor{epfd: epfd, fds: map[int32]*published{}}, nil
}

// add watches pub's listener; each connection is handed to pub.serve.
func (a *acceptor) add(pub *published) error {
	raw, err := pub.ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return err
	}
	var ctlErr error
	err = raw.Control(func(fd uintptr) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.closed {
			ctlErr = net.ErrClosed
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if ctlErr = syscall.EpollCtl(a.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); ctlErr == nil {
			pub.fd = int32(fd)
			a.fds[pub.fd] = pub
		}
	})
	if err == nil {
		err = ctlErr
	}
	return os.NewSyscallError("epoll_ctl", err)
}

// remove stops watching pub's listener. It runs before the listener
// closes, so a later socket given the same number is never mistaken for
// it.
func (a *acceptor) remove(pub *published) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed && a.fds[pub.fd] == pub {
		delete(a.fds, pub.fd)
		_ = syscall.EpollCtl(a.epfd, syscall.EPOLL_CTL_DEL, int(pub.fd), nil)
	}
}

// acceptWait bounds how long the loop sleeps in epoll before it looks at
// ctx again.
const acceptWait = 200 * time.Millisecond

// run accepts until ctx ends, then closes the epoll set.
func (a *acceptor) run(ctx context.Context) {
	defer func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.closed = true
		_ = syscall.Close(a.epfd)
	}()
	events := make([]syscall.EpollEvent, 64)
	for ctx.Err() == nil {
		n, err := syscall.EpollWait(a.epfd, events, int(acceptWait/time.Millisecond))
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			time.Sleep(acceptWait) // not expected; do not spin
			continue
		}
		stalled := false
		for _, ev := range events[:n] {
			a.mu.Lock()
			pub := a.fds[ev.Fd]
			a.mu.Unlock()
			if pub != nil && !pub.acceptAll() {
				stalled = true
			}
		}
		if stalled {
			// Out of file descriptors, say: the connection stays queued
			// and epoll reports it again; give the system a moment.
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// acceptAll accepts the connections waiting on pub's listener without
// blocking, and hands each to pub.serve. It is false when accepting failed
// for another reason than none waiting.
func (pub *published) acceptAll() bool {
	raw, err := pub.ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return true // closed meanwhile
	}
	for {
		var nfd int
		var aerr error
		if err := raw.Control(func(fd uintptr) {
			nfd, _, aerr = syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		}); err != nil {
			return true // closed meanwhile
		}
		switch {
		case aerr == nil:
		case errors.Is(aerr, syscall.EAGAIN): // none waiting
			return true
		case errors.Is(aerr, syscall.ECONNABORTED), errors.Is(aerr, syscall.EINTR):
			continue
		default:
			return false
		}
		f := os.NewFile(uintptr(nfd), "published")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			continue
		}
		pub.serve(c)
	}
}
