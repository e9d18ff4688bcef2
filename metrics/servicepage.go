package metrics

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"aima/gpu"
	"aima/services"
)

// The per-service families are written as text by hand: with 1,000
// services they are ten thousand series, and going through client_golang
// (a const metric each, checked, hashed, sorted and encoded on every
// scrape) cost most of a scrape's CPU. A service's lines are rendered once
// and kept until its record changes (docs/decisions.md). Their Descs are
// still described to the registry, so no collector can take their names.
const (
	leaseName     = "aima_service_gpu_lease_fraction"
	recordsUpName = "aima_service_records_up"
	restartsName  = "aima_service_restarts_total"
	statusName    = "aima_service_status"
)

const (
	statusHelp    = "The service's status as a state set: 1 for its current status, 0 for the others (created, creating, running, unhealthy, sleeping, stopping, stopped, failed)."
	restartsHelp  = "Automatic restarts of the service by its on-failure restart policy."
	recordsUpHelp = "1 when the service records could be read for this scrape, else 0 (the service series are then absent)."
	leaseHelp     = "The share of a GPU's memory a service holds a lease on (1 = the whole GPU), from its schedule phase until it stops or fails; sleeping is 1 while the service sleeps (the lease keeps the GPU for its wake but leaves it to others)."
)

var pageDescs = []*prometheus.Desc{
	prometheus.NewDesc(statusName, statusHelp, []string{"service", "engine", "status"}, nil),
	prometheus.NewDesc(restartsName, restartsHelp, []string{"service", "engine"}, nil),
	prometheus.NewDesc(recordsUpName, recordsUpHelp, nil, nil),
	prometheus.NewDesc(leaseName, leaseHelp, []string{"service", "engine", "gpu", "uuid", "sleeping"}, nil),
}

// pageFamily is one hand-written family. pageFamilies are in name order,
// so they merge into the registry's sorted families.
type pageFamily struct {
	name   string
	header []byte // # HELP and # TYPE lines
}

// Indexes into pageFamilies and serviceRows.lines.
const (
	famLease = iota
	famRecordsUp
	famRestarts
	famStatus
	famCount
)

var pageFamilies = [famCount]pageFamily{
	famLease:     family(leaseName, leaseHelp, "gauge"),
	famRecordsUp: family(recordsUpName, recordsUpHelp, "gauge"),
	famRestarts:  family(restartsName, restartsHelp, "counter"),
	famStatus:    family(statusName, statusHelp, "gauge"),
}

func family(name, help, typ string) pageFamily {
	return pageFamily{name: name, header: []byte("# HELP " + name + " " + helpEscaper.Replace(help) + "\n# TYPE " + name + " " + typ + "\n")}
}

// The text format's escaping (as expfmt writes it).
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// serviceRows are one service's rendered lines. They are immutable once
// made (a scrape may still be writing them when the next one replaces them).
type serviceRows struct {
	engine   string
	status   services.Status
	restarts int
	lease    *gpu.Lease // the record's own pointer: a new lease is a new pointer
	lines    [famCount][]byte
}

// current reports whether r still renders s.
func (r *serviceRows) current(s *services.Service) bool {
	return r.engine == s.EngineType && r.status == s.Status && r.restarts == s.RestartCount && r.lease == s.GPULease
}

// renderRows renders a service's series. Labels are in name order, as
// client_golang writes them.
func renderRows(s *services.Service) *serviceRows {
	r := &serviceRows{engine: s.EngineType, status: s.Status, restarts: s.RestartCount, lease: s.GPULease}
	id, eng := labelValue(s.ID), labelValue(s.EngineType)
	var b []byte
	for _, st := range sortedStatuses {
		b = append(b, statusName+`{engine="`...)
		b = append(b, eng...)
		b = append(b, `",service="`...)
		b = append(b, id...)
		b = append(b, `",status="`...)
		b = append(b, labelValue(string(st))...)
		if st == s.Status {
			b = append(b, "\"} 1\n"...)
		} else {
			b = append(b, "\"} 0\n"...)
		}
	}
	r.lines[famStatus] = b
	b = append([]byte(restartsName+`{engine="`), eng...)
	b = append(b, `",service="`...)
	b = append(b, id...)
	b = append(b, `"} `...)
	b = strconv.AppendInt(b, int64(s.RestartCount), 10)
	r.lines[famRestarts] = append(b, '\n')
	if l := s.GPULease; l != nil {
		b = nil
		sleeping := strconv.FormatBool(s.Status == services.StatusSleeping)
		for _, d := range l.Devices {
			b = append(b, leaseName+`{engine="`...)
			b = append(b, eng...)
			b = append(b, `",gpu="`...)
			b = strconv.AppendInt(b, int64(d.Index), 10)
			b = append(b, `",service="`...)
			b = append(b, id...)
			b = append(b, `",sleeping="`...)
			b = append(b, sleeping...)
			b = append(b, `",uuid="`...)
			b = append(b, labelValue(d.UUID)...)
			b = append(b, `"} `...)
			b = appendFloat(b, l.Fraction)
			b = append(b, '\n')
		}
		r.lines[famLease] = b
	}
	return r
}

// labelValue is v escaped for a quoted label value, made valid UTF-8
// (client_golang refuses a series with an invalid label value).
func labelValue(v string) string {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return labelEscaper.Replace(v)
}

// appendFloat formats a sample value as expfmt does.
func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// servicePage keeps every service's rendered lines between scrapes.
type servicePage struct {
	m *Metrics

	mu   sync.Mutex
	rows map[string]pageEntry // by service ID
	gen  uint64               // scrapes so far: an entry not seen in this one is gone
}

type pageEntry struct {
	rows *serviceRows
	gen  uint64
}

// pageSnapshot is what one scrape writes: the services' rows in ID order.
type pageSnapshot struct {
	up   bool // the records could be read
	rows []*serviceRows
}

// snapshot reads the records and brings the kept lines up to date,
// rendering only the services whose record changed. ok is false when
// there are no sources yet (nothing to write).
func (p *servicePage) snapshot(ctx context.Context) (snap pageSnapshot, ok bool) {
	src := p.m.sources()
	if src == nil || src.Services == nil {
		return snap, false
	}
	all, err := src.Services.ListShared(ctx) // in ID order, the cached records themselves
	if err != nil {
		return snap, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rows == nil {
		p.rows = map[string]pageEntry{}
	}
	p.gen++
	rows := make([]*serviceRows, 0, len(all))
	for _, s := range all {
		e, found := p.rows[s.ID]
		if !found || !e.rows.current(s) {
			e.rows = renderRows(s)
		}
		e.gen = p.gen
		p.rows[s.ID] = e
		rows = append(rows, e.rows)
	}
	if len(p.rows) != len(rows) {
		for id, e := range p.rows {
			if e.gen != p.gen {
				delete(p.rows, id)
			}
		}
	}
	p.m.lifecycle.forgetExcept(func(id string) bool { _, ok := p.rows[id]; return ok })
	snap.up, snap.rows = true, rows
	return snap, true
}

// write writes family f of the snapshot, if it has series.
func (s *pageSnapshot) write(w *bufio.Writer, f int) {
	if f == famRecordsUp {
		_, _ = w.Write(pageFamilies[f].header)
		v := "0"
		if s.up {
			v = "1"
		}
		_, _ = w.WriteString(recordsUpName + " " + v + "\n")
		return
	}
	wrote := false
	for _, r := range s.rows {
		if len(r.lines[f]) == 0 {
			continue
		}
		if !wrote {
			_, _ = w.Write(pageFamilies[f].header)
			wrote = true
		}
		_, _ = w.Write(r.lines[f])
	}
}

// gather returns the page as metric families, for the formats other than
// text (protobuf) that client_golang encodes: it parses the page's text, so
// both are the same series.
func (p *servicePage) gather() ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	snap, ok := p.snapshot(ctx)
	if !ok {
		return nil, nil
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for f := range famCount {
		snap.write(w, f)
	}
	_ = w.Flush()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	return out, nil
}
