package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"aima/errs"
	"aima/events"
	"aima/runtime"
	"aima/services"
)

// ServiceLogsInput selects log lines.
type ServiceLogsInput struct {
	ServiceID  string `json:"service_id" jsonschema:"service ID (or service name)"`
	Follow     bool   `json:"follow,omitempty" jsonschema:"keep streaming new lines until the caller disconnects (streaming front-ends only)"`
	Tail       *int   `json:"tail,omitempty" jsonschema:"only the last N lines (default 200; -1 for all)"`
	Since      string `json:"since,omitempty" jsonschema:"only lines after this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (10m)"`
	Timestamps bool   `json:"timestamps,omitempty" jsonschema:"prefix each line's text with its timestamp in text renderings"`
	Previous   bool   `json:"previous,omitempty" jsonschema:"the last lines of the previous run instead (kept when a restart replaced its container)"`
}

// LogLine is one output line of an engine's container, as every front-end
// carries it (a Reporter's Log, the logs output); the runtime's own line
// type stays below the operation layer.
type LogLine struct {
	Stream string    `json:"stream" jsonschema:"stdout or stderr"`
	Time   time.Time `json:"time"`
	Text   string    `json:"text"`
}

// LogsOutput holds a service's log lines.
type LogsOutput struct {
	ServiceID   string    `json:"service_id"`
	ContainerID string    `json:"container_id,omitempty"`
	Lines       []LogLine `json:"lines" jsonschema:"the lines, oldest first (empty when follow streamed them)"`
	Total       int       `json:"total" jsonschema:"number of lines returned or streamed"`
	Timestamps  bool      `json:"-"`
}

// ServiceList is service_list's output: the record list envelope. On the
// daemon's side it holds the services' JSON encodings kept by the record
// cache instead of decoded Items (see services.Manager.ListJSON), and is
// written from them as they are, so listing 10,000 services neither copies
// nor encodes each one; a client decodes the document into Items as usual.
type ServiceList struct {
	RecordList[services.Service]
	encoded []json.RawMessage // the listed services' encodings, in place of Items; nil when Items hold them
}

// services returns the listed services, decoding the encodings when the
// list holds those (a text rendering in the daemon's process).
func (l ServiceList) services() []services.Service {
	if l.encoded == nil {
		return l.Items
	}
	out := make([]services.Service, len(l.encoded))
	for i, e := range l.encoded {
		_ = json.Unmarshal(e, &out[i]) // the daemon's own encoding of a Service
	}
	return out
}

// MarshalJSON implements json.Marshaler: the document RecordList encodes
// to.
func (l ServiceList) MarshalJSON() ([]byte, error) {
	if l.encoded == nil {
		return json.Marshal(l.RecordList)
	}
	n := 64
	for _, e := range l.encoded {
		n += len(e) + 1
	}
	b := bytes.NewBuffer(make([]byte, 0, n))
	if err := l.WriteJSON(b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteJSON writes the document MarshalJSON returns to w, a piece at a
// time: the HTTP API streams a list of 10,000 services (megabytes) to its
// client instead of holding it whole.
func (l ServiceList) WriteJSON(w io.Writer) error {
	if l.encoded == nil {
		b, err := json.Marshal(l.RecordList)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	var damaged []byte
	if len(l.Damaged) > 0 {
		var err error
		if damaged, err = json.Marshal(l.Damaged); err != nil {
			return err
		}
	}
	buf := bufio.NewWriterSize(w, 64<<10) // an error sticks; Flush reports it
	buf.WriteString(`{"items":[`)
	for i, e := range l.encoded {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e)
	}
	buf.WriteString(`],"total":`)
	buf.WriteString(strconv.Itoa(len(l.encoded)))
	if damaged != nil {
		buf.WriteString(`,"damaged":`)
		buf.Write(damaged)
	}
	buf.WriteByte('}')
	return buf.Flush()
}

// ServiceEventsInput selects history.
type ServiceEventsInput struct {
	ServiceID string `json:"service_id" jsonschema:"service ID (or service name)"`
	After     uint64 `json:"after,omitempty" jsonschema:"only events with seq greater than this (see events_from of service_start)"`
	Follow    bool   `json:"follow,omitempty" jsonschema:"after the history, keep streaming new events until the caller disconnects (streaming front-ends only)"`
}

// HistoryEntry is one event with its duration.
type HistoryEntry struct {
	events.Event
	DurationMS *int64 `json:"duration_ms,omitempty" jsonschema:"for phases: how long the phase lasted (until the next phase or status)"`
}

// EventsOutput is a service's history.
type EventsOutput struct {
	ServiceID string         `json:"service_id"`
	Items     []HistoryEntry `json:"items" jsonschema:"events, oldest first"`
	Total     int            `json:"total"`
}

const defaultTail = 200

// parseSince accepts RFC 3339 or a duration ago, from 1970 on: the
// runtime counts log times from the Unix epoch, so an earlier time is a
// mistake to point out, not a runtime error.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d, derr := time.ParseDuration(s)
		if derr != nil || d < 0 {
			return time.Time{}, errs.Invalid("since", "since %q: want RFC 3339 time or a duration like 10m", s)
		}
		t = now.Add(-d)
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, errs.Invalid("since", "since %q is %s, before 1970-01-01T00:00:00Z; want a later time", s, t.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// withDurations fills each phase's duration from the next phase or status
// event of the same run.
func withDurations(evs []events.Event) []HistoryEntry {
	out := make([]HistoryEntry, len(evs))
	for i, ev := range evs {
		out[i] = HistoryEntry{Event: ev}
		if ev.Type != events.TypePhase {
			continue
		}
		for _, next := range evs[i+1:] {
			if next.Run == ev.Run && (next.Type == events.TypePhase || next.Type == events.TypeStatus) {
				d := next.Time.Sub(ev.Time).Milliseconds()
				out[i].DurationMS = &d
				break
			}
		}
	}
	return out
}

func serviceObserveOps() []Op {
	return []Op{
		Declare(Spec[ServiceListInput, ServiceList]{
			Name:        "service_list",
			Description: "List services, oldest first, with status (created, creating with its phase, running, unhealthy, stopping, stopped, failed with reason), engine, model, port and endpoint. Service records the state store cannot read are listed apart under damaged; delete them with service_delete.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, dom *Domain, in ServiceListInput, _ Reporter) (ServiceList, error) {
				var st services.Status
				if in.Status != "" {
					var err error
					if st, err = services.ParseStatus("status", in.Status); err != nil {
						return ServiceList{}, err
					}
				}
				enc, err := dom.Services.ListJSON(ctx, st)
				if err != nil {
					return ServiceList{}, err
				}
				damaged, err := dom.Services.Damaged(ctx)
				if len(damaged) == 0 {
					damaged = nil
				}
				l := RecordList[services.Service]{Total: len(enc), Damaged: damaged}
				return ServiceList{RecordList: l, encoded: enc}, err
			},
			Render: func(l ServiceList) string {
				s := fmt.Sprintf("%d service(s)", l.Total)
				for _, x := range l.services() {
					s += "\n" + renderService(x)
				}
				return s + renderDamaged(l.Damaged)
			},
		}),
		Declare(Spec[ServiceRef, services.Service]{
			Name:        "service_status",
			Description: "Show one service's record: status, phase of a start in progress, reason of a failure (engine error line, exit code, OOM flag, last log lines), endpoint, container and timestamps. This is the same record service_list and service_wait read.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Positional:  "service_id",
			Run: func(ctx context.Context, dom *Domain, in ServiceRef, _ Reporter) (services.Service, error) {
				return dom.Services.Get(ctx, in.ServiceID)
			},
			Render: renderService,
		}),
		Declare(Spec[ServiceLogsInput, LogsOutput]{
			Name:        "service_logs",
			Description: "Read the real output (stdout and stderr) of a service's own engine container: start-up lines, errors, request logs. Defaults to the last 200 lines. Logs of a failed start stay readable.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Positional:  "service_id",
			Run:         runLogs,
			Render: func(o LogsOutput) string {
				var b strings.Builder
				for _, l := range o.Lines {
					b.WriteString(FormatLogLine(l, o.Timestamps))
					b.WriteByte('\n')
				}
				return strings.TrimSuffix(b.String(), "\n")
			},
		}),
		Declare(Spec[ServiceEventsInput, EventsOutput]{
			Name:        "service_events",
			Description: "Show a service's history: every start phase and status change with timestamps and durations, pull progress and engine milestones, oldest first. Pass after=events_from from service_start to see just that start. With follow, a deletion of the service ends the stream with not_found.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Positional:  "service_id",
			Run:         runEvents,
			Render: func(o EventsOutput) string {
				var b strings.Builder
				for _, e := range o.Items {
					b.WriteString(eventText(e.Event))
					if e.DurationMS != nil {
						fmt.Fprintf(&b, " (%s)", time.Duration(*e.DurationMS)*time.Millisecond)
					}
					b.WriteByte('\n')
				}
				return strings.TrimSuffix(b.String(), "\n")
			},
		}),
		Declare(Spec[ServiceWaitInput, services.Service]{
			Name:        "service_wait",
			Description: "Block until a service reaches a status (running, stopped or failed) and return its record. Fails at once, with the service's reason, if the service settles in a status from which the wanted one cannot follow (e.g. failed while waiting for running), and with not_found if it is deleted; fails with deadline_exceeded after timeout_seconds (default 600).",
			Annotations: Annotations{ReadOnly: true, Idempotent: true, LongRunning: true},
			Positional:  "service_id",
			Run: func(ctx context.Context, dom *Domain, in ServiceWaitInput, _ Reporter) (services.Service, error) {
				want, err := waitFor(in.For)
				if err != nil {
					return services.Service{}, err
				}
				timeout, err := timeoutOf(in.TimeoutSeconds, "timeout_seconds")
				if err != nil {
					return services.Service{}, err
				}
				if timeout == 0 {
					timeout = 600 * time.Second
				}
				return dom.Services.Wait(ctx, in.ServiceID, want, timeout)
			},
			Render: renderService,
		}),
	}
}

// FormatLogLine renders a line as the CLI prints it.
func FormatLogLine(l LogLine, timestamps bool) string {
	if timestamps && !l.Time.IsZero() {
		return l.Time.UTC().Format(time.RFC3339Nano) + " " + l.Text
	}
	return l.Text
}

func runLogs(ctx context.Context, dom *Domain, in ServiceLogsInput, rep Reporter) (LogsOutput, error) {
	tail := defaultTail
	if in.Tail != nil {
		tail = *in.Tail
	}
	if tail < -1 || tail > 100000 {
		return LogsOutput{}, errs.Invalid("tail", "tail must be -1 (all) or 0-100000")
	}
	since, err := parseSince(in.Since, time.Now())
	if err != nil {
		return LogsOutput{}, err
	}
	if in.Previous {
		s, err := dom.Services.Get(ctx, in.ServiceID)
		if err != nil {
			return LogsOutput{}, err
		}
		if len(s.PreviousLogs) == 0 {
			return LogsOutput{}, errs.NotFoundf("service %s has no previous run with kept logs", s.ID)
		}
		out := LogsOutput{ServiceID: s.ID, Lines: []LogLine{}, Timestamps: in.Timestamps}
		lines := s.PreviousLogs
		if tail >= 0 && len(lines) > tail {
			lines = lines[len(lines)-tail:]
		}
		for _, l := range lines {
			out.Lines = append(out.Lines, LogLine{Stream: "stdout", Text: l})
		}
		out.Total = len(out.Lines)
		return out, nil
	}
	sink, streams := rep.(LogSink)
	req := services.LogsRequest{Follow: in.Follow, Tail: tail, Since: since, NoTimes: streams && !sink.NeedsTimes(in.Timestamps)}
	if streams && in.Follow {
		// A follow that caught up delivers what it holds; a read of a
		// finished log is written in full buffers.
		req.OnWait = sink.Flush
	}
	ls, err := dom.Services.Logs(ctx, in.ServiceID, req)
	if err != nil {
		return LogsOutput{}, err
	}
	out := LogsOutput{ServiceID: ls.Service.ID, ContainerID: ls.Service.ContainerID, Lines: []LogLine{}, Timestamps: in.Timestamps}
	if streams {
		sink.BeginLogs(out)
	}
	err = ls.Read(ctx, func(rl runtime.LogLine) error {
		out.Total++
		l := LogLine{Stream: rl.Stream, Time: rl.Time, Text: rl.Text}
		switch {
		case streams:
			sink.Log(l)
		case in.Follow:
			rep.Log(l)
		default:
			out.Lines = append(out.Lines, l)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return out, err
	}
	return out, nil
}

func runEvents(ctx context.Context, dom *Domain, in ServiceEventsInput, rep Reporter) (EventsOutput, error) {
	s, evs, err := dom.Services.Events(ctx, in.ServiceID, in.After)
	if err != nil {
		return EventsOutput{}, err
	}
	out := EventsOutput{ServiceID: s.ID, Items: withDurations(evs), Total: len(evs)}
	if !in.Follow {
		return out, nil
	}
	for _, ev := range evs {
		rep.Event(ev)
		if err := services.DeletedError(ev); err != nil {
			return out, err
		}
	}
	cursor := in.After
	if len(evs) > 0 {
		cursor = evs[len(evs)-1].Seq
	}
	sub := dom.Services.Bus().Subscribe(s.ID, cursor)
	for {
		ev, err := sub.Next(ctx)
		if errors.Is(err, events.ErrForgotten) {
			return out, services.ErrDeleted(s.ID)
		}
		if err != nil {
			return out, nil // the caller disconnected: following ends normally
		}
		rep.Event(ev)
		out.Total++
		if err := services.DeletedError(ev); err != nil {
			return out, err // the service is gone: following ends
		}
	}
}
