package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"aima/events"
)

// progress renders a start's events on stderr: one line per phase and
// milestone, and for the image pull a byte bar per layer (mpb) when stderr
// is a terminal, or a throttled plain line per layer when it is not.
type progress struct {
	w        io.Writer
	tty      bool
	mu       sync.Mutex
	bars     *mpb.Progress
	layers   map[string]*mpb.Bar
	lastLine map[string]time.Time
	started  time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, layers: map[string]*mpb.Bar{}, lastLine: map[string]time.Time{}, started: time.Now()}
	p.tty = isTerminal(w)
	return p
}

func (p *progress) event(ev events.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Type {
	case events.TypeProgress:
		p.pullProgress(ev)
	case events.TypePhase:
		p.finishBars()
		fmt.Fprintf(p.w, "==> %-13s %s\n", ev.Phase, ev.Message)
	case events.TypeStatus:
		p.finishBars()
		fmt.Fprintf(p.w, "==> %-13s %s (%.1fs)\n", ev.Status, ev.Message, time.Since(p.started).Seconds())
	default:
		p.finishBars()
		fmt.Fprintf(p.w, "    %s\n", ev.Message)
	}
}

func (p *progress) pullProgress(ev events.Event) {
	if ev.Total <= 0 {
		if !p.tty {
			fmt.Fprintf(p.w, "    %s\n", ev.Message)
		}
		return
	}
	if !p.tty {
		if time.Since(p.lastLine[ev.Layer]) < time.Second && ev.Current < ev.Total {
			return
		}
		p.lastLine[ev.Layer] = time.Now()
		fmt.Fprintf(p.w, "    %s\n", ev.Message)
		return
	}
	if p.bars == nil {
		p.bars = mpb.New(mpb.WithOutput(p.w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	}
	bar, ok := p.layers[ev.Layer]
	if !ok {
		bar = p.bars.AddBar(ev.Total,
			mpb.PrependDecorators(decor.Name(ev.Layer+" "), decor.Name(ev.Status, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)))
		p.layers[ev.Layer] = bar
	}
	bar.SetTotal(ev.Total, false)
	bar.SetCurrent(ev.Current)
}

// finishBars completes and flushes the layer bars before plain lines.
func (p *progress) finishBars() {
	if p.bars == nil {
		return
	}
	for _, b := range p.layers {
		b.SetTotal(-1, true)
	}
	p.bars.Wait()
	p.bars, p.layers = nil, map[string]*mpb.Bar{}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishBars()
}
