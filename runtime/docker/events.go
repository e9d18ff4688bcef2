package docker

import (
	"context"
	"maps"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"aima/runtime"
)

// Events streams container events of containers carrying all of
// eo.Labels, from eo.Since (zero = now; a past time replays what the engine still
// holds in its event buffer, typically the last 256 events). When Events returns without a value on the error channel, the
// subscription is live: events that happen afterwards are delivered.
//
// Action is the engine's string as is ("die", "health_status: healthy",
// "exec_start: ..."); ExitCode is set for "die"; Labels are the actor's
// attributes, which hold the container's labels plus name, image, exitCode
// and similar keys. The error channel receives exactly one error when the
// stream ends, then both channels are closed: the ctx error when ctx ended
// it, errs.Unavailable when the engine closed it or went away (resubscribe
// with since = the last event's time). The reader must drain events or
// cancel ctx; events are not dropped.
func (d *Docker) Events(ctx context.Context, eo runtime.EventOptions) (<-chan runtime.Event, <-chan error) {
	since := eo.Since
	f := make(client.Filters).Add("type", string(events.ContainerEventType))
	for k, v := range eo.Labels {
		f.Add("label", k+"="+v)
	}
	// The engine answers the subscription before it registers it; asking for
	// events since "now" closes that window (it replays from its ring buffer).
	if since.IsZero() {
		since = time.Now()
	}
	opts := client.EventsListOptions{Filters: f, Since: unixSeconds(since)}
	// Events returns once the engine has answered the subscription (or failed).
	res := d.c.Events(ctx, opts)
	out := make(chan runtime.Event, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		defer close(errc)
		for {
			select {
			case m := <-res.Messages:
				select {
				case out <- toEvent(m):
				case <-ctx.Done():
					errc <- streamEnd(ctx, nil, "docker events")
					return
				}
			case err := <-res.Err:
				if isDaemonAnswer(err) {
					errc <- classify(err, "docker events")
				} else {
					errc <- streamEnd(ctx, err, "docker events")
				}
				return
			}
		}
	}()
	return out, errc
}

func toEvent(m events.Message) runtime.Event {
	ev := runtime.Event{
		ContainerID: m.Actor.ID,
		Action:      string(m.Action),
		Labels:      maps.Clone(m.Actor.Attributes),
	}
	if m.TimeNano != 0 {
		ev.Time = time.Unix(0, m.TimeNano)
	} else {
		ev.Time = time.Unix(m.Time, 0)
	}
	if code, ok := m.Actor.Attributes["exitCode"]; ok {
		ev.ExitCode, _ = strconv.Atoi(code)
	}
	return ev
}
