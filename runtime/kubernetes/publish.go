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
// once, so streamed responses stream). One goroutine accepts for every
// port (acceptor), and in proxy mode one HTTP server serves them all: a
// running service costs no goroutine of its own while nobody talks to it.
type publisher struct {
	k      *Kube
	kickc  chan struct{}
	accept *acceptor
	// proxy mode: the one HTTP server of every published port, fed by
	// the acceptor through proxyLn
	proxyLn  *connQueue
	proxySrv *http.Server

	mu     sync.Mutex
	open   map[string]*published // by Pod name
	closed bool                  // closeAll ran: publish nothing more
}

type published struct {
	uid   string
	addr  string
	ln    net.Listener
	fd    int32                 // the listener's socket, in the acceptor's set
	serve func(c net.Conn)      // takes one accepted connection
	proxy http.Handler          // proxy mode: to the Pod through the API server
	conns map[net.Conn]struct{} // the connections open, closed with the port
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
	p.mu.Lock()
	if p.closed { // Close came first: a server started now would never be closed
		p.mu.Unlock()
		return
	}
	acc, err := newAcceptor()
	if err != nil {
		p.mu.Unlock()
		p.k.log.Error("publish engine ports: no acceptor", "err", err)
		return
	}
	p.accept = acc
	if p.k.endpoint == EndpointProxy {
		p.proxyLn = newConnQueue()
		p.proxySrv = &http.Server{Handler: http.HandlerFunc(servePublished), ReadHeaderTimeout: 30 * time.Second,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, publishedKey{}, c.(*publishedConn).pub)
			}}
		srv, ln := p.proxySrv, p.proxyLn
		p.k.wg.Add(1)
		go func() {
			defer p.k.wg.Done()
			_ = srv.Serve(ln)
		}()
	}
	p.mu.Unlock()
	p.k.wg.Add(1)
	go func() {
		defer p.k.wg.Done()
		acc.run(ctx)
	}()
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
	if p.closed || p.accept == nil {
		return false
	}
	for name, pub := range p.open {
		if pod, ok := want[name]; !ok || string(pod.UID) != pub.uid {
			p.unpublish(pub)
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
	if id := p.k.opts.StoreID; id != "" && labelOf(pod, runtime.LabelStore) != id {
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
		if pub.proxy, err = k.podProxy(pod.Name, cport); err != nil {
			ln.Close()
			return nil, err
		}
		queue := p.proxyLn
		pub.serve = func(c net.Conn) {
			pc := &publishedConn{Conn: c, pub: pub}
			if !pub.track(pc) || !queue.put(pc) {
				_ = pc.Close()
			}
		}
	} else {
		target := net.JoinHostPort(pod.Status.PodIP, cport)
		pub.serve = func(c net.Conn) {
			k.wg.Add(1)
			go func() {
				defer k.wg.Done()
				pub.pipe(c, target)
			}()
		}
	}
	if err := p.accept.add(pub); err != nil {
		ln.Close()
		return nil, err
	}
	return pub, nil
}

// unpublish closes pub's port and its connections.
func (p *publisher) unpublish(pub *published) {
	if p.accept != nil {
		p.accept.remove(pub)
	}
	pub.close()
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

func (pub *published) pipe(c net.Conn, target string) {
	defer c.Close()
	d := net.Dialer{Timeout: 10 * time.Second}
	up, err := d.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	if !pub.track(c) || !pub.track(up) {
		return
	}
	defer pub.untrack(c)
	defer pub.untrack(up)
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

// track notes a connection of pub's, so that closing the port closes it;
// false once the port is closed.
func (pub *published) track(c net.Conn) bool {
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if pub.conns == nil {
		return false
	}
	pub.conns[c] = struct{}{}
	return true
}

func (pub *published) untrack(c net.Conn) {
	pub.mu.Lock()
	defer pub.mu.Unlock()
	delete(pub.conns, c)
}

func (pub *published) close() {
	_ = pub.ln.Close()
	pub.mu.Lock()
	conns := pub.conns
	pub.conns = nil
	pub.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

func (p *publisher) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for name, pub := range p.open {
		p.unpublish(pub)
		delete(p.open, name)
	}
	if p.proxySrv != nil {
		_ = p.proxySrv.Close()
	}
}

// publishedConn is a connection accepted on a published port, so the
// shared proxy server knows which Pod it is for.
type publishedConn struct {
	net.Conn
	pub  *published
	once sync.Once
}

func (c *publishedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.pub.untrack(c) })
	return err
}

type publishedKey struct{}

// servePublished answers a request on a published port in proxy mode:
// through the API server's Pod proxy of the port's Pod.
func servePublished(w http.ResponseWriter, r *http.Request) {
	r.Context().Value(publishedKey{}).(*published).proxy.ServeHTTP(w, r)
}

// connQueue is a net.Listener whose connections come from the acceptor:
// the shared proxy server's listener.
type connQueue struct {
	c    chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{c: make(chan net.Conn), done: make(chan struct{})}
}

// put hands c to the server; false once the queue is closed.
func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.c <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.c:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return queueAddr{} }

type queueAddr struct{}

func (queueAddr) Network() string { return "published" }
func (queueAddr) String() string  { return "published ports" }
