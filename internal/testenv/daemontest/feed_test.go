package daemontest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"aima/events"
	"aima/services"
	"aima/tools"
)

// GET /api/events without a service id streams every service's events from
// the moment it opens: a service created, started and deleted by another
// client shows up with its created, phase, status and deleted events, and
// nothing from before the stream opened.
func TestDaemonWideEventStream(t *testing.T) {
	t.Parallel()
	d := fakeDaemon(t, newFake(t), "", false)
	before := call[services.Service](t, d, "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: "before"})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /api/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := make(chan events.Event, 100)
	go func() {
		defer close(got)
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && name == "progress":
				var ev events.Event
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev) == nil {
					got <- ev
				}
			}
		}
	}()

	s := call[services.Service](t, d, "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: "after"})
	call[tools.StartOutput](t, d, "service_start", tools.ServiceStartInput{ServiceID: s.ID, Wait: true, TimeoutSeconds: 30})
	call[services.Service](t, d, "service_delete", tools.ServiceRef{ServiceID: s.ID})

	var types []string
	for ev := range got {
		if ev.ServiceID == before.ID {
			t.Fatalf("the stream replayed an event from before it opened: %+v", ev)
		}
		types = append(types, string(ev.Type)+":"+ev.Status+":"+ev.Phase)
		if ev.Type == events.TypeDeleted {
			break
		}
	}
	seq := strings.Join(types, " ")
	for _, want := range []string{"created:created:", "phase:creating:cleanup", "phase:creating:health_check", "status:running:", "deleted::"} {
		if !strings.Contains(seq, want) {
			t.Errorf("stream %q lacks %q", seq, want)
		}
	}
	if !strings.HasPrefix(seq, "created:") {
		t.Errorf("stream %q does not begin with the created event", seq)
	}
}

// Parameters other than a service id are refused with the field named.
func TestDaemonWideEventStreamRejectsAfterAlone(t *testing.T) {
	t.Parallel()
	d := fakeDaemon(t, newFake(t), "", false)
	resp, err := http.Get(d.URL + "/api/events?after=3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET /api/events?after=3: %d", resp.StatusCode)
	}
}

// An event stream reports each live event it writes to the bus, so the
// publish → socket time is in the bus's stats and on /metrics
// (aima_event_bus_publish_to_socket_seconds); the history it replays first
// is not counted: its age says nothing about delivery.
func TestEventStreamReportsPublishToSocket(t *testing.T) {
	t.Parallel()
	d := fakeDaemon(t, newFake(t), "", false)
	s := call[services.Service](t, d, "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm"})
	bus := d.Domain.Services.Bus()
	bus.Publish(events.Event{ServiceID: s.ID, Type: events.TypeMessage, Message: "history"})
	written := func() (n uint64) {
		for _, c := range bus.Stats().SocketWriteCounts {
			n += c
		}
		return n
	}
	base := written()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+"/api/events?service_id="+s.ID+"&after=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	readMessage := func(want string) {
		t.Helper()
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"message":"`+want+`"`) {
				return
			}
		}
		t.Fatalf("the stream ended before %q: %v", want, sc.Err())
	}
	readMessage("history")
	for _, m := range []string{"live 1", "live 2", "live 3"} {
		bus.Publish(events.Event{ServiceID: s.ID, Type: events.TypeMessage, Message: m})
		readMessage(m)
	}
	// Written follows the write the client has just read: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for written()-base < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := written() - base; n != 3 {
		t.Fatalf("%d live events reported written, want 3 (the replayed one is not counted)", n)
	}
	mresp, err := http.Get(d.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	body, _ := io.ReadAll(mresp.Body)
	if !strings.Contains(string(body), fmt.Sprintf("aima_event_bus_publish_to_socket_seconds_count %d\n", base+3)) {
		t.Fatalf("/metrics lacks the publish → socket histogram with %d events:\n%s", base+3, body)
	}
}
