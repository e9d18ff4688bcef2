package httpguard

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// bodyDeadline bounds the time a request's body may take to arrive: the
// connection's read deadline is set to now+d as the request starts and
// cleared once the body has been read to its end. The bound is on the
// body only, never on the answer: SSE streams, log follows, MCP streams
// and streamed /v1 answers have no body left to read while they stream,
// and the server's read that notices a client going away runs without a
// deadline. A body that trickles past d ends with a read error; the
// handler answers it and the connection is closed. A body the handler
// does not read (a refusal) is discarded by the server under the same
// deadline. Requests without a body are left alone.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			next.ServeHTTP(w, r) // not a network connection (a test recorder)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once the body has been read to
// its end.
type deadlineBody struct {
	io.ReadCloser
	clear func()
	once  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.clear)
	}
	return n, err
}
