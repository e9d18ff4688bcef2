package events_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"aima/events"
)

// memJournal is an in-memory events.Journal. Like a real one it keeps only
// durable events; it also counts every Append so tests can check that the
// bus never hands it a progress event.
type memJournal struct {
	mu       sync.Mutex
	byID     map[string][]events.Event
	appends  int
	progress int
}

func newMemJournal() *memJournal { return &memJournal{byID: map[string][]events.Event{}} }

func (j *memJournal) Load(serviceID string) ([]events.Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.byID[serviceID]), nil
}

func (j *memJournal) Append(ev events.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.appends++
	if !ev.Persistent() {
		j.progress++
		return nil
	}
	j.byID[ev.ServiceID] = append(j.byID[ev.ServiceID], ev)
	return nil
}

func (j *memJournal) stats() (appends, progress int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.appends, j.progress
}

// failingJournal fails every call.
type failingJournal struct{}

var errJournal = errors.New("journal broken")

func (failingJournal) Load(string) ([]events.Event, error) { return nil, errJournal }
func (failingJournal) Append(events.Event) error           { return errJournal }

// eventFor returns the i-th event of a deterministic mix: every third one
// is a progress event, the others alternate between phase and message.
func eventFor(svc string, i int) events.Event {
	switch i % 3 {
	case 0:
		return events.Event{ServiceID: svc, Type: events.TypeProgress, Phase: "pull", Current: int64(i), Total: 1 << 20}
	case 1:
		return events.Event{ServiceID: svc, Type: events.TypePhase, Phase: fmt.Sprintf("p%d", i)}
	default:
		return events.Event{ServiceID: svc, Type: events.TypeMessage, Message: fmt.Sprintf("m%d", i)}
	}
}

// readUntil reads from sub until its cursor reaches last and returns what it
// read. It never waits for wall-clock time: it only calls Next while events
// up to last are known to exist.
func readUntil(t *testing.T, sub *events.Subscription, last uint64) []events.Event {
	t.Helper()
	var got []events.Event
	for sub.Cursor() < last {
		ev, err := sub.Next(t.Context())
		if err != nil {
			t.Fatalf("Next after cursor %d: %v", sub.Cursor(), err)
		}
		got = append(got, ev)
	}
	return got
}

func seqs(evs []events.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func wantRange(t *testing.T, what string, got []events.Event, from, to uint64) {
	t.Helper()
	if uint64(len(got)) != to-from+1 {
		t.Fatalf("%s: got %d events, want %d (seq %d..%d)", what, len(got), to-from+1, from, to)
	}
	for i, e := range got {
		if want := from + uint64(i); e.Seq != want {
			t.Fatalf("%s: event %d has seq %d, want %d", what, i, e.Seq, want)
		}
	}
}

func strictlyAscending(t *testing.T, what string, got []events.Event) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("%s: seq %d follows seq %d (gap-free order broken or duplicate)", what, got[i].Seq, got[i-1].Seq)
		}
	}
}

func TestPublishAssignsSeqPerServiceAndTime(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bus := events.NewBus(events.WithClock(func() time.Time { return clock }))

	own := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		svc      string
		time     time.Time
		wantSeq  uint64
		wantTime time.Time
	}{
		{"a", time.Time{}, 1, clock},
		{"a", time.Time{}, 2, clock},
		{"b", time.Time{}, 1, clock},
		{"a", own, 3, own}, // a set Time is kept
		{"b", time.Time{}, 2, clock},
		{"c", own, 1, own},
	}
	for i, tc := range tests {
		ev := bus.Publish(events.Event{ServiceID: tc.svc, Type: events.TypeMessage, Message: fmt.Sprint(i), Time: tc.time})
		if ev.Seq != tc.wantSeq || !ev.Time.Equal(tc.wantTime) || ev.ServiceID != tc.svc || ev.Message != fmt.Sprint(i) {
			t.Errorf("publish %d on %s: got seq %d time %v, want seq %d time %v", i, tc.svc, ev.Seq, ev.Time, tc.wantSeq, tc.wantTime)
		}
	}
	for svc, want := range map[string]uint64{"a": 3, "b": 2, "c": 1, "none": 0} {
		if got := bus.LastSeq(svc); got != want {
			t.Errorf("LastSeq(%s) = %d, want %d", svc, got, want)
		}
	}
	// A Seq set by the caller is ignored.
	if ev := bus.Publish(events.Event{ServiceID: "a", Seq: 99, Type: events.TypeStatus}); ev.Seq != 4 {
		t.Errorf("publish with caller Seq 99: got seq %d, want 4", ev.Seq)
	}
	if h := bus.History("a", 0); !slices.Equal(seqs(h), []uint64{1, 2, 3, 4}) {
		t.Errorf("History(a, 0) seqs = %v, want [1 2 3 4]", seqs(h))
	}
}

func TestPersistent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ  events.Type
		want bool
	}{
		{events.TypeStatus, true},
		{events.TypePhase, true},
		{events.TypeMessage, true},
		{events.TypeProgress, false},
		{events.TypeCreated, true},
		{events.TypeDeleted, false},
	} {
		if got := (events.Event{Type: tc.typ}).Persistent(); got != tc.want {
			t.Errorf("Persistent(%s) = %v, want %v", tc.typ, got, tc.want)
		}
	}
}

// A subscriber that starts while a publisher is half-way sees the history
// and then the live events, with no gap and no duplicate.
func TestSubscribeMidStreamNoGapNoDuplicate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []events.Option
	}{
		// Without a journal the window must hold the whole run.
		{"window holds all", []events.Option{events.WithLogLimit(1000)}},
		// A small window with a journal: the subscriber may fall behind
		// the window, but every event here is durable.
		{"small window with journal", []events.Option{events.WithLogLimit(16), events.WithJournal(newMemJournal())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 1000
			bus := events.NewBus(tc.opts...)
			started := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 1; i <= n; i++ {
					bus.Publish(events.Event{ServiceID: "svc", Type: events.TypeMessage, Message: fmt.Sprint(i)})
					if i == n/3 {
						close(started)
					}
				}
			}()
			<-started
			sub := bus.Subscribe("svc", 0)
			got := readUntil(t, sub, n)
			<-done
			wantRange(t, "subscriber", got, 1, n)
			for i, e := range got {
				if e.Message != fmt.Sprint(i+1) {
					t.Fatalf("event seq %d carries message %q, want %q", e.Seq, e.Message, fmt.Sprint(i+1))
				}
			}
		})
	}
}

func TestLateSubscriberAfterN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after uint64
	}{
		{"after 0", 0},
		{"after 1", 1},
		{"after 37", 37},
		{"after last-1", 49},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bus := events.NewBus()
			for i := 0; i < 50; i++ {
				bus.Publish(events.Event{ServiceID: "svc", Type: events.TypePhase})
			}
			sub := bus.Subscribe("svc", tc.after)
			got := readUntil(t, sub, 50)
			wantRange(t, "replay", got, tc.after+1, 50)
			// Then live.
			bus.Publish(events.Event{ServiceID: "svc", Type: events.TypeStatus})
			ev, err := sub.Next(t.Context())
			if err != nil || ev.Seq != 51 {
				t.Fatalf("live event: got seq %d, err %v; want seq 51", ev.Seq, err)
			}
			if h := bus.History("svc", tc.after); len(h) != int(51-tc.after) || h[0].Seq != tc.after+1 {
				t.Errorf("History(svc, %d): got seqs %v, want %d..51", tc.after, seqs(h), tc.after+1)
			}
		})
	}
}

// A subscriber at the head sees nothing until the next publish.
func TestSubscriberAtHeadWaitsForNext(t *testing.T) {
	t.Parallel()
	bus := events.NewBus()
	for i := 0; i < 3; i++ {
		bus.Publish(events.Event{ServiceID: "svc", Type: events.TypePhase})
	}
	sub := bus.Subscribe("svc", 3)
	got := make(chan events.Event, 1)
	errc := make(chan error, 1)
	go func() {
		ev, err := sub.Next(t.Context())
		if err != nil {
			errc <- err
			return
		}
		got <- ev
	}()
	bus.Publish(events.Event{ServiceID: "other", Type: events.TypePhase}) // another service does not wake it with a wrong event
	bus.Publish(events.Event{ServiceID: "svc", Type: events.TypeStatus, Status: "running"})
	select {
	case ev := <-got:
		if ev.Seq != 4 || ev.Status != "running" {
			t.Fatalf("got %+v, want seq 4 status running", ev)
		}
	case err := <-errc:
		t.Fatalf("Next: %v", err)
	}
}

// A subscriber that never reads does not hold up Publish; afterwards it
// reads what the bus still has, in order and up to the newest event.
func TestSlowSubscriberDoesNotBlockPublish(t *testing.T) {
	t.Parallel()
	const n = 10000
	for _, tc := range []struct {
		name    string
		limit   int
		journal bool
		wantAll bool // every event comes back (all are durable and a journal holds them)
	}{
		// Not the default window of 4096: once the window is full every
		// Publish copies the whole window (see the report), which makes a
		// 10k run with -race take half a minute.
		{"window 500, no journal", 500, false, false},
		{"window 100, no journal", 100, false, false},
		{"window 100 with journal", 100, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := []events.Option{events.WithLogLimit(tc.limit)}
			if tc.journal {
				opts = append(opts, events.WithJournal(newMemJournal()))
			}
			bus := events.NewBus(opts...)
			sub := bus.Subscribe("svc", 0)
			// Publish runs in this goroutine: if it waited for the
			// subscriber, the test would deadlock here.
			for i := 0; i < n; i++ {
				bus.Publish(events.Event{ServiceID: "svc", Type: events.TypeMessage})
			}
			got := readUntil(t, sub, n)
			strictlyAscending(t, "slow subscriber", got)
			if got[len(got)-1].Seq != n {
				t.Fatalf("last event seq %d, want %d", got[len(got)-1].Seq, n)
			}
			if tc.wantAll {
				wantRange(t, "slow subscriber", got, 1, n)
			} else if len(got) != tc.limit {
				// Without a journal only the in-memory window survives.
				t.Fatalf("got %d events, want the window of %d", len(got), tc.limit)
			}
		})
	}
}

// With a window of 10 and a journal, a subscriber that lags far behind
// still receives every durable event in order; only progress events may be
// missed.
func TestLaggingSubscriberGetsEveryDurableEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		concurrent bool
	}{
		{"lag then read", false},
		{"read while publishing", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 3000
			j := newMemJournal()
			bus := events.NewBus(events.WithLogLimit(10), events.WithJournal(j))
			sub := bus.Subscribe("svc", 0)
			published := make([]events.Event, 0, n)
			publish := func() {
				for i := 0; i < n; i++ {
					published = append(published, bus.Publish(eventFor("svc", i)))
				}
			}
			var got []events.Event
			if tc.concurrent {
				done := make(chan struct{})
				go func() { defer close(done); publish() }()
				got = readUntil(t, sub, n)
				<-done
			} else {
				publish()
				got = readUntil(t, sub, n)
			}
			strictlyAscending(t, "lagging subscriber", got)
			var wantDurable, gotDurable []events.Event
			for _, e := range published {
				if e.Persistent() {
					wantDurable = append(wantDurable, e)
				}
			}
			for _, e := range got {
				if e.Persistent() {
					gotDurable = append(gotDurable, e)
				}
			}
			if len(gotDurable) != len(wantDurable) {
				t.Fatalf("got %d durable events, want %d", len(gotDurable), len(wantDurable))
			}
			for i := range wantDurable {
				w, g := wantDurable[i], gotDurable[i]
				if g.Seq != w.Seq || g.Type != w.Type || g.Phase != w.Phase || g.Message != w.Message {
					t.Fatalf("durable event %d: got %+v, want %+v", i, g, w)
				}
			}
			if appends, progress := j.stats(); progress != 0 || appends != len(wantDurable) {
				t.Errorf("journal saw %d appends (%d progress), want %d durable appends and no progress", appends, progress, len(wantDurable))
			}
		})
	}
}

// A new Bus over the same journal (a daemon restart) continues numbering
// after the last persisted event and replays the old history.
func TestRestartContinuesSeqAndHistory(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{events.DefaultLogLimit, 10} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			t.Parallel()
			j := newMemJournal()
			first := events.NewBus(events.WithLogLimit(limit), events.WithJournal(j))
			var durable []events.Event
			for i := 0; i < 50; i++ {
				ev := first.Publish(eventFor("svc", i))
				if ev.Persistent() {
					durable = append(durable, ev)
				}
			}
			// End on a durable event so "the last persisted one" is also
			// the last published one.
			last := first.Publish(events.Event{ServiceID: "svc", Type: events.TypeStatus, Status: "failed"})
			durable = append(durable, last)
			first.Publish(events.Event{ServiceID: "other", Type: events.TypePhase})

			second := events.NewBus(events.WithLogLimit(limit), events.WithJournal(j))
			if got := second.LastSeq("svc"); got != last.Seq {
				t.Fatalf("LastSeq after restart = %d, want %d", got, last.Seq)
			}
			h := second.History("svc", 0)
			if !slices.Equal(seqs(h), seqs(durable)) {
				t.Fatalf("History after restart = %v, want %v", seqs(h), seqs(durable))
			}
			for i := range h {
				if h[i].Message != durable[i].Message || h[i].Phase != durable[i].Phase || !h[i].Time.Equal(durable[i].Time) {
					t.Fatalf("History[%d] = %+v, want %+v", i, h[i], durable[i])
				}
			}
			next := second.Publish(events.Event{ServiceID: "svc", Type: events.TypePhase, Phase: "cleanup"})
			if next.Seq <= last.Seq {
				t.Fatalf("first seq after restart = %d, want > %d", next.Seq, last.Seq)
			}
			if ev := second.Publish(events.Event{ServiceID: "other", Type: events.TypePhase}); ev.Seq <= 1 {
				t.Errorf("other service: seq after restart = %d, want > 1", ev.Seq)
			}
			// A subscriber from 0 on the new bus gets the old durable
			// events then the new one.
			got := readUntil(t, second.Subscribe("svc", 0), next.Seq)
			if want := append(seqs(durable), next.Seq); !slices.Equal(seqs(got), want) {
				t.Fatalf("subscriber after restart = %v, want %v", seqs(got), want)
			}
		})
	}
}

// Byte-progress events are not journaled; numbers they used before a
// restart must not be handed out again, or a client holding such a cursor
// would miss new events.
func TestRestartNeverReusesProgressSeq(t *testing.T) {
	t.Parallel()
	j := newMemJournal()
	first := events.NewBus(events.WithJournal(j))
	first.Publish(events.Event{ServiceID: "svc", Type: events.TypePhase, Phase: "pull"})
	var cursor uint64
	for i := 0; i < 3; i++ {
		cursor = first.Publish(events.Event{ServiceID: "svc", Type: events.TypeProgress, Current: int64(i)}).Seq
	}
	second := events.NewBus(events.WithJournal(j))
	next := second.Publish(events.Event{ServiceID: "svc", Type: events.TypeStatus, Status: "failed"})
	if next.Seq <= cursor {
		t.Fatalf("seq after restart = %d, reuses a number up to %d", next.Seq, cursor)
	}
	got := readUntil(t, second.Subscribe("svc", cursor), next.Seq)
	if len(got) != 1 || got[0].Seq != next.Seq {
		t.Fatalf("a client at cursor %d got %v", cursor, seqs(got))
	}
}

func TestNextReturnsContextError(t *testing.T) {
	t.Parallel()
	bus := events.NewBus()
	bus.Publish(events.Event{ServiceID: "svc", Type: events.TypePhase})

	t.Run("already cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := bus.Subscribe("svc", 1).Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next on cancelled ctx: %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := bus.Subscribe("idle", 0).Next(ctx)
			errc <- err
		}()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Next: %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
		defer cancel()
		if _, err := bus.Subscribe("idle", 0).Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next: %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("cursor unchanged on error", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		sub := bus.Subscribe("svc", 1)
		_, _ = sub.Next(ctx)
		if sub.Cursor() != 1 {
			t.Fatalf("Cursor = %d, want 1", sub.Cursor())
		}
	})
}

func TestJournalErrorsDoNotStopPublication(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []error
	bus := events.NewBus(events.WithJournal(failingJournal{}), events.WithErrorHandler(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, err)
	}))
	for i := 0; i < 3; i++ {
		bus.Publish(events.Event{ServiceID: "svc", Type: events.TypePhase})
	}
	got := readUntil(t, bus.Subscribe("svc", 0), 3)
	wantRange(t, "subscriber", got, 1, 3)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("error handler was never called")
	}
	for _, err := range seen {
		if !errors.Is(err, errJournal) {
			t.Errorf("handler got %v, want the journal's error", err)
		}
	}
}

// Several publishers on different services (and two on the same one),
// several subscribers each; run with -race.
func TestConcurrentPublishersAndSubscribers(t *testing.T) {
	t.Parallel()
	const (
		perPublisher = 400
		subsPerSvc   = 3
	)
	services := []string{"s1", "s2", "s3", "s4"}
	// s1 has two publishers, so it ends at 2*perPublisher.
	publishers := []string{"s1", "s1", "s2", "s3", "s4"}
	total := map[string]uint64{"s1": 2 * perPublisher, "s2": perPublisher, "s3": perPublisher, "s4": perPublisher}

	j := newMemJournal()
	bus := events.NewBus(events.WithLogLimit(64), events.WithJournal(j))

	var wg sync.WaitGroup
	type result struct {
		svc string
		got []events.Event
		err error
	}
	results := make(chan result, len(services)*subsPerSvc)
	for _, svc := range services {
		for k := 0; k < subsPerSvc; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sub := bus.Subscribe(svc, 0)
				var got []events.Event
				for sub.Cursor() < total[svc] {
					ev, err := sub.Next(t.Context())
					if err != nil {
						results <- result{svc, got, err}
						return
					}
					got = append(got, ev)
					if ev.Seq%50 == 0 {
						_ = bus.History(svc, ev.Seq) // readers and History interleave
					}
				}
				results <- result{svc: svc, got: got}
			}()
		}
	}
	var pwg sync.WaitGroup
	var pmu sync.Mutex
	assigned := map[string][]uint64{}
	for _, svc := range publishers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			mine := make([]uint64, 0, perPublisher)
			for i := 0; i < perPublisher; i++ {
				// All durable, so every subscriber must see every event.
				mine = append(mine, bus.Publish(events.Event{ServiceID: svc, Type: events.TypeMessage}).Seq)
			}
			pmu.Lock()
			assigned[svc] = append(assigned[svc], mine...)
			pmu.Unlock()
		}()
	}
	pwg.Wait()
	wg.Wait()
	close(results)

	for svc, got := range assigned {
		slices.Sort(got)
		want := make([]uint64, total[svc])
		for i := range want {
			want[i] = uint64(i + 1)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: publishers were assigned %d seqs, not exactly 1..%d", svc, len(got), total[svc])
		}
	}
	for r := range results {
		if r.err != nil {
			t.Errorf("%s subscriber: %v after %d events", r.svc, r.err, len(r.got))
			continue
		}
		wantRange(t, r.svc+" subscriber", r.got, 1, total[r.svc])
		for _, e := range r.got {
			if e.ServiceID != r.svc {
				t.Fatalf("%s subscriber got an event of %s", r.svc, e.ServiceID)
			}
		}
	}
}

func TestStatsAndObserver(t *testing.T) {
	var seen []events.Event
	b := events.NewBus(events.WithObserver(func(ev events.Event) { seen = append(seen, ev) }))
	for i := range 3 {
		b.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage, Message: fmt.Sprint(i)})
	}
	if len(seen) != 3 || seen[2].Seq != 3 || seen[2].Message != "2" {
		t.Fatalf("observer saw %+v", seen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub := b.Subscribe("s", 0)
	for range 3 {
		if _, err := sub.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	go func() { _, err := sub.Next(ctx); got <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().Waiting != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := b.Stats()
	// The replay read three events at once: lags 2, 1, 0.
	if st.Published != 3 || st.Delivered != 3 || st.Waiting != 1 || st.LagSum != 3 || st.Services != 1 ||
		st.LagCounts[0] != 1 || st.LagCounts[1] != 1 || st.LagCounts[2] != 1 {
		t.Fatalf("stats %+v", st)
	}
	cancel()
	if err := <-got; err == nil {
		t.Fatal("Next returned no error after cancel")
	}
	if w := b.Stats().Waiting; w != 0 {
		t.Fatalf("waiting %d after the subscriber left", w)
	}
}

// blockingJournal is a memJournal whose Load blocks until release is
// closed, once entered is signalled: a journal read that stalls.
type blockingJournal struct {
	*memJournal
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (j *blockingJournal) Load(id string) ([]events.Event, error) {
	select {
	case <-j.entered:
	default:
		j.once.Do(func() { close(j.entered) })
		<-j.release
	}
	return j.memJournal.Load(id)
}

// A subscriber that fell behind the in-memory window reads the journal;
// while that read stalls, Publish of the same service still completes.
func TestLaggingSubscriberNeverBlocksPublish(t *testing.T) {
	t.Parallel()
	j := &blockingJournal{memJournal: newMemJournal(), entered: make(chan struct{}), release: make(chan struct{})}
	close(j.entered) // the bus's first load must not block
	bus := events.NewBus(events.WithJournal(j), events.WithLogLimit(4))
	for i := 0; i < 20; i++ {
		bus.Publish(events.Event{ServiceID: "s", Type: events.TypePhase, Phase: fmt.Sprint(i)})
	}
	j.entered = make(chan struct{}) // the next load (the lagging subscriber's) blocks
	sub := bus.Subscribe("s", 0)
	got := make(chan events.Event, 1)
	go func() {
		ev, err := sub.Next(t.Context())
		if err == nil {
			got <- ev
		}
	}()
	<-j.entered // the subscriber is inside the journal read
	published := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			bus.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage, Message: "live"})
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish waited for a subscriber's journal read")
	}
	close(j.release)
	if ev := <-got; ev.Seq != 1 {
		t.Fatalf("the lagging subscriber got seq %d first, want 1", ev.Seq)
	}
}

// Forget frees a service's log: its subscribers end with ErrForgotten and
// the bus holds no log for it any more.
func TestForgetFreesTheLog(t *testing.T) {
	t.Parallel()
	bus := events.NewBus()
	bus.Publish(events.Event{ServiceID: "gone", Type: events.TypePhase})
	bus.Publish(events.Event{ServiceID: "kept", Type: events.TypePhase})
	sub := bus.Subscribe("gone", bus.LastSeq("gone"))
	errc := make(chan error, 1)
	go func() {
		_, err := sub.Next(t.Context())
		errc <- err
	}()
	bus.Forget("gone")
	if err := <-errc; !errors.Is(err, events.ErrForgotten) {
		t.Fatalf("subscriber of a forgotten service: %v, want ErrForgotten", err)
	}
	if n := bus.Stats().Services; n != 1 {
		t.Fatalf("bus holds %d logs after Forget, want 1", n)
	}
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("svc-%d", i)
		bus.Publish(events.Event{ServiceID: id, Type: events.TypeStatus})
		bus.Forget(id)
	}
	if n := bus.Stats().Services; n != 1 {
		t.Fatalf("bus holds %d logs after 1000 deleted services, want 1", n)
	}
}

// A subscriber that had not yet read the deleted event published before
// Forget still reads it, then ends with ErrForgotten.
func TestForgetKeepsTheDeletedEvent(t *testing.T) {
	t.Parallel()
	bus := events.NewBus()
	bus.Publish(events.Event{ServiceID: "s", Type: events.TypeStatus})
	sub := bus.Subscribe("s", bus.LastSeq("s"))
	bus.Publish(events.Event{ServiceID: "s", Type: events.TypeDeleted})
	bus.Forget("s")
	ev, err := sub.Next(t.Context())
	if err != nil || ev.Type != events.TypeDeleted {
		t.Fatalf("first read after Forget: %+v, %v; want the deleted event", ev, err)
	}
	if _, err := sub.Next(t.Context()); !errors.Is(err, events.ErrForgotten) {
		t.Fatalf("second read: %v, want ErrForgotten", err)
	}
}

// Written files each live delivery by its time from Publish (the bus's
// clock) in events.SocketWriteBuckets, the last count being the slower ones.
func TestWrittenBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	b := events.NewBus(events.WithClock(func() time.Time { return now }))
	if got, want := len(b.Stats().SocketWriteCounts), len(events.SocketWriteBuckets)+1; got != want {
		t.Fatalf("%d write counts for %d buckets", got, len(events.SocketWriteBuckets))
	}
	ev := b.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage})
	for _, d := range []time.Duration{0, 1200 * time.Microsecond, 2 * time.Millisecond, 2001 * time.Microsecond, time.Hour} {
		now = ev.Time.Add(d)
		b.RecordSocketWrite(ev)
	}
	st := b.Stats()
	idx := func(le time.Duration) int { return slices.Index(events.SocketWriteBuckets, le) }
	want := make([]uint64, len(events.SocketWriteBuckets)+1)
	want[0]++                              // 0
	want[idx(1250*time.Microsecond)]++     // 1.2 ms
	want[idx(2*time.Millisecond)]++        // 2 ms: a bound is inclusive
	want[idx(2500*time.Microsecond)]++     // 2.001 ms
	want[len(events.SocketWriteBuckets)]++ // an hour
	if !slices.Equal(st.SocketWriteCounts, want) {
		t.Fatalf("write counts %v, want %v", st.SocketWriteCounts, want)
	}
	if want := 5201*time.Microsecond + time.Hour; st.SocketWriteSum != want {
		t.Fatalf("write sum %v, want %v", st.SocketWriteSum, want)
	}
}

// AwaitFanout waits until every subscriber the last Publish woke has taken
// the event and waits for the next, or has left.
func TestAwaitFanout(t *testing.T) {
	b := events.NewBus()
	b.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage, Message: "before"})
	if !b.AwaitFanout(t.Context(), "nobody") || !b.AwaitFanout(t.Context(), "s") {
		t.Fatal("a fan-out without subscribers is not complete")
	}
	type follower struct {
		next  chan struct{} // one Next call per receive
		got   chan error
		ctx   context.Context
		leave context.CancelFunc
	}
	var fs []*follower
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		f := &follower{next: make(chan struct{}), got: make(chan error, 1), ctx: ctx, leave: cancel}
		sub := b.Subscribe("s", 1)
		go func() {
			for range f.next {
				_, err := sub.Next(f.ctx)
				f.got <- err
			}
		}()
		f.next <- struct{}{}
		fs = append(fs, f)
	}
	t.Cleanup(func() {
		for _, f := range fs {
			f.leave()
			close(f.next)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Waiting != 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage, Message: "fanned"})
	for _, f := range fs {
		if err := <-f.got; err != nil {
			t.Fatal(err)
		}
	}
	short := func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		return b.AwaitFanout(ctx, "s")
	}
	if short() {
		t.Fatal("the fan-out is complete while no subscriber has come back for more")
	}
	fs[0].next <- struct{}{} // back for more
	fs[1].leave()            // back for more, then gone
	fs[1].next <- struct{}{}
	if err := <-fs[1].got; err == nil {
		t.Fatal("Next after leaving returned no error")
	}
	if short() {
		t.Fatal("the fan-out is complete while one subscriber still handles the event")
	}
	fs[2].next <- struct{}{}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if !b.AwaitFanout(ctx, "s") {
		t.Fatal("the fan-out did not complete once every woken subscriber came back or left")
	}
}
