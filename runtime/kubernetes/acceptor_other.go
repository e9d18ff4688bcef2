//go:build !linux

package kubernetes

import "context"

// acceptor, where there is no epoll: a goroutine per published port,
// parked in Accept (see acceptor_linux.go).
type acceptor struct{}

func newAcceptor() (*acceptor, error) { return &acceptor{}, nil }

func (a *acceptor) add(pub *published) error {
	go func() {
		for {
			c, err := pub.ln.Accept()
			if err != nil {
				return
			}
			pub.serve(c)
		}
	}()
	return nil
}

func (a *acceptor) remove(*published) {}

func (a *acceptor) run(ctx context.Context) { <-ctx.Done() }
