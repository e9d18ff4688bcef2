package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"aima/cluster"
	"aima/config"
	"aima/errs"
	"aima/httperr"
	"aima/internal/contained"
	"aima/internal/kubeconf"
	"aima/runtime"
	"aima/state"
)

// A daemon with cluster.leader_election enabled is one replica of several
// sharing one store (store: kubernetes). runReplica opens the store (its
// watch keeps the cache warm) and takes part in the election, serving
// only /health and a not-ready /readyz while another replica leads, so
// the Service sends traffic to the leader alone. Once elected it builds
// the whole daemon on the warm store, with every runtime and store write
// fenced by the lease, and serves on the same listener. A replica that
// loses its lease stops serving and exits with an error, to start again as
// a follower (its Pod restarts): its memory of services is not trusted
// after another replica acted.

// fenced returns rt and s with their writes refused once fence does.
func fenced(rt runtime.Runtime, s state.Store, fence func(context.Context) error) (runtime.Runtime, state.Store) {
	return cluster.FenceRuntime(rt, fence), cluster.FenceStore(s, fence)
}

// errLostLease ends a replica that stopped leading.
var errLostLease = errs.New(errs.Unavailable, "this aima replica lost its leader lease; it exits so that it starts again as a follower")

func runReplica(ctx context.Context, opts Options, cfg config.Config, log *slog.Logger) error {
	k, le := cfg.Kubernetes, cfg.Cluster.LeaderElection
	restCfg, err := kubeconf.REST(k.Kubeconfig, k.Context, k.InCluster)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "aima/" + Version
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	store, err := OpenStore(octx, cfg, opts.DataDir, "aima/"+Version)
	cancel()
	if err != nil {
		return err
	}
	defer store.Close()
	el, err := cluster.New(cluster.Options{
		Rest: restCfg, Namespace: k.Namespace, LeaseName: le.LeaseName, Identity: le.Identity, Log: log,
		LeaseDuration: time.Duration(le.LeaseDuration), RenewDeadline: time.Duration(le.RenewDeadline), RetryPeriod: time.Duration(le.RetryPeriod),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "listen on %s", opts.Addr)
	}
	defer ln.Close()
	// The election outlives the daemon's shutdown: the lease is released
	// only once the leader's work has stopped.
	elCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	elDone := make(chan struct{})
	go func() {
		defer close(elDone)
		contained.Run(log, "leader election", func() { el.Run(elCtx) })
	}()
	defer func() { stopElection(); <-elDone }()

	log.Info("aima replica waiting for the leader lease", "addr", ln.Addr().String(), "identity", el.Identity(), "lease", le.LeaseName)
	if err := serveFollower(ctx, ln, el); err != nil || ctx.Err() != nil {
		return err
	}
	// The previous leader's last writes may not have come through the
	// watch yet: read the store afresh before building on it.
	if r, ok := store.(interface{ Resync(context.Context) error }); ok {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := r.Resync(rctx)
		cancel()
		if err != nil {
			return err
		}
	}
	opts.Store, opts.Fence = store, el.Fence
	d, err := New(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	leadCtx, cancelLead := context.WithCancel(ctx)
	defer cancelLead()
	go func() {
		select {
		case <-el.Lost():
			cancelLead()
		case <-leadCtx.Done():
		}
	}()
	if err := d.Serve(leadCtx, ln); err != nil {
		return err
	}
	if ctx.Err() == nil {
		return errLostLease
	}
	return nil
}

// serveFollower answers on ln as a follower until this replica is elected
// (nil), ctx ends (nil), or the election ends without it (an error); ln
// stays open for the leader's server.
func serveFollower(ctx context.Context, ln net.Listener, el *cluster.Elector) error {
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		return errs.New(errs.InvalidArgument, "leader election needs a TCP listener")
	}
	h := &handoff{TCPListener: tcp}
	hs := &http.Server{Handler: followerHandler(el), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(h) }()
	var err error
	select {
	case <-ctx.Done():
	case <-el.Elected():
	case <-el.Lost():
		err = errs.New(errs.Unavailable, "leader election ended before this replica led")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if hs.Shutdown(sctx) != nil {
		_ = hs.Close()
	}
	<-done
	_ = tcp.SetDeadline(time.Time{}) // the leader's server accepts from here on
	return err
}

// handoff lends a listener to the follower's server: its Close stops
// Accept without closing the listener.
type handoff struct {
	*net.TCPListener
	closed atomic.Bool
}

func (h *handoff) Accept() (net.Conn, error) {
	c, err := h.TCPListener.Accept()
	if h.closed.Load() {
		if c != nil {
			_ = c.Close() // arrived during the handover; the client retries
		}
		return nil, net.ErrClosed
	}
	return c, err
}

func (h *handoff) Close() error {
	h.closed.Store(true)
	return h.SetDeadline(time.Now()) // wakes Accept
}

// followerHandler is what a follower serves: alive on /health, not ready
// on /readyz, and every other request refused with the leader's name.
func followerHandler(el *cluster.Elector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"ready": false, "role": "follower", "identity": el.Identity(), "leader": el.Leader()}
		switch r.URL.Path {
		case "/health":
			body["status"] = "ok"
			writeJSON(w, http.StatusOK, body)
		case "/readyz":
			writeJSON(w, http.StatusServiceUnavailable, body)
		default:
			w.Header().Set("Retry-After", "1")
			httperr.Write(w, 0, errs.New(errs.Unavailable, "this aima replica (%s) is a follower; the leader is %q and serves the API", el.Identity(), el.Leader()))
		}
	})
}

// readyz answers 200 while the daemon may act (always, without leader
// election; while it holds its lease, with it) and 503 with the reason
// otherwise.
func (d *Daemon) readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"ready": true}
		if d.opts.Fence != nil {
			body["role"] = "leader"
			if err := d.opts.Fence(r.Context()); err != nil {
				body["ready"], body["error"] = false, err.Error()
				writeJSON(w, http.StatusServiceUnavailable, body)
				return
			}
		}
		writeJSON(w, http.StatusOK, body)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
