package daemontest

import (
	"bufio"
	"context"
	"encoding/json"
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
