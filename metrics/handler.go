package metrics

import (
	"bufio"
	"context"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Handler serves /metrics. The text format, which Prometheus asks for
// unless configured to scrape protobuf, is written here: the registry's
// families, encoded by expfmt, merged in name order with the service page's
// hand-written ones. Other formats (and name[] filters) go through promhttp
// with the page as one more gatherer, parsed back from its text.
func (m *Metrics) Handler() http.Handler {
	other := promhttp.HandlerFor(prometheus.Gatherers{m.reg, prometheus.GathererFunc(m.page.gather)},
		promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, DisableCompression: true})
	return gzipped(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
		if format.FormatType() != expfmt.TypeTextPlain || r.URL.Query().Has("name[]") {
			other.ServeHTTP(w, r)
			return
		}
		m.serveText(w, r, format)
	}))
}

// textWriters buffer the page on its way to the client (or the gzip
// writer): expfmt writes a line in many small pieces.
var textWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// serveText writes the text exposition as promhttp would with
// ContinueOnError: a gather error with some families still serves them.
func (m *Metrics) serveText(w http.ResponseWriter, r *http.Request, format expfmt.Format) {
	ctx, cancel := context.WithTimeout(r.Context(), listTimeout)
	defer cancel()
	snap, withPage := m.page.snapshot(ctx)
	mfs, err := m.reg.Gather()
	if err != nil && len(mfs) == 0 && !withPage {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Add("Vary", "Accept")
	w.Header().Set("Content-Type", string(format))
	bw := textWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil)
		textWriters.Put(bw)
	}()
	next := 0 // the page's next family
	pageUpTo := func(name string) {
		for withPage && next < famCount && (name == "" || pageFamilies[next].name < name) {
			snap.write(bw, next)
			next++
		}
	}
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		pageUpTo(mf.GetName())
		if enc.Encode(mf) != nil {
			return // the client went away
		}
	}
	pageUpTo("")
	_ = bw.Flush()
}
