package kubernetes

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	"aima/runtime"
)

// publisher publishes each running engine Pod's port on the daemon's host,
// at the host IP and port of the container spec, as Docker publishes a
// container's port: the services' health checks, the metrics scrape, the
// gateway and a user's curl all reach the engine at the service's endpoint
// whatever runtime runs it. Behind the port the connection goes to the
// Pod's IP (EndpointPodIP: bytes copied both ways) or through the API
// server's Pod proxy (EndpointProxy: an HTTP reverse proxy that flushes at
// once, so streamed responses stream).
type publisher struct {
	k     *Kube
	kickc chan struct{}

	mu     sync.Mutex
	open   map[string]*published // by Pod name
	closed bool                  // closeAll ran: publish nothing more
}

type published struct {
	uid  string
	addr string
	ln   net.Listener
	srv  *http.Server // proxy mode
	// pod IP mode: the connections being forwarded, closed with the port
	conns map[net.Conn]struct{}
	mu    sync.Mutex
}

func newPublisher(k *Kube) *publisher {
	return &publisher{k: k, kickc: make(chan struct{}, 1), open: map[string]*published{}}
}

// kick asks for a resync of the published ports; it never blocks.
func (p *publisher) kick() {
	select {
	case p.kickc <- struct{}{}:
	default:
	}
}

// republishDelay is how soon a port that could not be bound is tried again.
const republishDelay = time.Second

func (p *publisher) run(ctx context.Context) {
	retry := time.NewTimer(republishDelay)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kickc:
		case <-retry.C:
		}
		failed := p.sync()
		retry.Reset(republishDelay)
		if !failed {
			retry.Stop()
		}
	}
}

// sync opens the ports of running Pods and closes those of Pods that no
// longer run; it reports whether a port could not be bound.
func (p *publisher) sync() (failed bool) {
	k := p.k
	pods, err := k.podLister.Pods(k.ns).List(labels.Everything())
	if err != nil {
		return true
	}
	want := map[string]*corev1.Pod{}
	for _, pod := range pods {
		if p.wanted(pod) {
			want[pod.Name] = pod
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for name, pub := range p.open {
		if pod, ok := want[name]; !ok || string(pod.UID) != pub.uid {
			pub.close()
			delete(p.open, name)
		}
	}
	for name, pod := range want {
		if _, ok := p.open[name]; ok {
			continue
		}
		pub, err := p.publish(pod)
		if err != nil {
			k.log.Warn("publish the engine port of a pod", "pod", name, "err", err)
			failed = true
			continue
		}
		p.open[name] = pub
	}
	return failed
}

// wanted: a Pod of this store whose engine runs, with a host port.
func (p *publisher) wanted(pod *corev1.Pod) bool {
	if id := p.k.opts.StoreID; id != "" && labelsOf(pod)[runtime.LabelStore] != id {
		return false
	}
	cs := engineStatus(pod)
	if pod.DeletionTimestamp != nil || cs == nil || cs.State.Running == nil {
		return false
	}
	hp, _ := strconv.Atoi(pod.Annotations[annHostPort])
	cp, _ := strconv.Atoi(pod.Annotations[annContainerPort])
	return hp > 0 && cp > 0 && (p.k.endpoint == EndpointProxy || pod.Status.PodIP != "")
}

func (p *publisher) publish(pod *corev1.Pod) (*published, error) {
	k := p.k
	addr := net.JoinHostPort(pod.Annotations[annHostIP], pod.Annotations[annHostPort])
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	pub := &published{uid: string(pod.UID), addr: addr, ln: ln, conns: map[net.Conn]struct{}{}}
	cport := pod.Annotations[annContainerPort]
	if k.endpoint == EndpointProxy {
		h, err := k.podProxy(pod.Name, cport)
		if err != nil {
			ln.Close()
			return nil, err
		}
		pub.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			_ = pub.srv.Serve(ln)
		}()
		return pub, nil
	}
	target := net.JoinHostPort(pod.Status.PodIP, cport)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		pub.forward(k, target)
	}()
	return pub, nil
}

// podProxy is a reverse proxy to the Pod's port through the API server.
func (k *Kube) podProxy(pod, port string) (http.Handler, error) {
	base, err := url.Parse(k.rest.Host)
	if err != nil {
		return nil, err
	}
	if base.Scheme == "" {
		base.Scheme = "https"
	}
	tr, err := rest.TransportFor(k.rest)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(base.Path, "/") + "/api/v1/namespaces/" + k.ns + "/pods/" + pod + ":" + port + "/proxy"
	return &httputil.ReverseProxy{
		Transport:     tr,
		FlushInterval: -1,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = base.Scheme, base.Host
			r.Out.URL.Path = prefix + r.In.URL.Path
			r.Out.URL.RawPath = ""
			r.Out.Host = base.Host
		},
	}, nil
}

// forward copies connections to target until the listener closes.
func (pub *published) forward(k *Kube, target string) {
	for {
		c, err := pub.ln.Accept()
		if err != nil {
			return
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			pub.pipe(c, target)
		}()
	}
}

func (pub *published) pipe(c net.Conn, target string) {
	defer c.Close()
	d := net.Dialer{Timeout: 10 * time.Second}
	up, err := d.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	pub.mu.Lock()
	pub.conns[c], pub.conns[up] = struct{}{}, struct{}{}
	pub.mu.Unlock()
	defer func() {
		pub.mu.Lock()
		delete(pub.conns, c)
		delete(pub.conns, up)
		pub.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(c, up)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
}

func (pub *published) close() {
	if pub.srv != nil {
		_ = pub.srv.Close()
	}
	_ = pub.ln.Close()
	pub.mu.Lock()
	for c := range pub.conns {
		_ = c.Close()
	}
	pub.mu.Unlock()
}

func (p *publisher) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for name, pub := range p.open {
		pub.close()
		delete(p.open, name)
	}
}
