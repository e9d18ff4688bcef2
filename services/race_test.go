package services

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"aima/errs"
	"aima/events"
	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// Races between a start and a stop or delete, and what Docker does after
// the client gave up on a call (fakeruntime's Completes faults): no
// container is left without a record, a removal in progress is waited
// for, and no service is left creating with no start running.

// stoppedAfterARun is a service that ran once and was stopped: its exited
// container is what the next start's cleanup removes.
func (h *harness) stoppedAfterARun() Service {
	h.t.Helper()
	s := h.running(serving(), nil)
	if _, err := h.m.Stop(h.ctx(), s.ID); err != nil {
		h.t.Fatal(err)
	}
	return h.get(s.ID)
}

// labelled lists the service's containers, whatever the API's faults.
func (h *harness) labelled(id string) []runtime.ContainerState {
	return h.fr.Containers(map[string]string{runtime.LabelService: id})
}

// awaitNoContainer waits until the service has no container left.
func (h *harness) awaitNoContainer(id string) {
	h.t.Helper()
	h.awaitFact("no container of "+id, func() bool { return len(h.labelled(id)) == 0 })
}

// wantNotStranded checks that no service is creating or stopping with
// nothing driving it.
func (h *harness) wantNotStranded() {
	h.t.Helper()
	stranded, err := h.m.Stranded(h.ctx())
	if err != nil || len(stranded) != 0 {
		h.t.Errorf("stranded services: %+v %v", stranded, err)
	}
}

// deleteAsync runs Delete in the background.
func (h *harness) deleteAsync(id string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := h.m.Delete(h.ctx(), id)
		done <- err
	}()
	return done
}

// awaitLocked waits until a lifecycle call holds the service's lock (a
// delete or stop that has begun, and cancelled the start right after).
func (h *harness) awaitLocked(id string) {
	h.t.Helper()
	h.awaitFact("a lifecycle call holding "+id, func() bool {
		if unlock, free := h.m.locks.TryLock(id); free {
			unlock()
			return false
		}
		return true
	})
}

// A delete cancels a start while Docker is creating its container, and
// Docker creates it anyway: the start waits for Docker's answer (within
// mutationGrace) and removes the container it no longer wants, so the
// delete leaves nothing behind. (Cutting the create at once left a Created
// container with no record.)
func TestDeleteDuringCreateLeavesNoContainer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.m.mutationGrace = waitLimit
	h.run()
	s := h.create(serving(), nil)
	h.fr.Inject(fakeruntime.OpCreate, fakeruntime.Fault{Hang: true, Completes: true})
	h.start(s.ID)
	if err := h.fr.WaitCalls(h.ctx(), fakeruntime.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	done := h.deleteAsync(s.ID)
	h.awaitLocked(s.ID)
	h.fr.Clear(fakeruntime.OpCreate) // Docker answers: the container exists
	if err := <-done; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if cs := h.labelled(s.ID); len(cs) != 0 {
		t.Fatalf("containers after the delete: %+v", cs)
	}
	if !slices.ContainsFunc(h.fr.Recorded(), func(ev runtime.Event) bool {
		return ev.Action == runtime.ActionCreate && ev.Labels[runtime.LabelService] == s.ID
	}) {
		t.Fatal("the create never happened: the race was not reproduced")
	}
	if _, err := h.m.Get(h.ctx(), s.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("record after the delete: %v", err)
	}
}

// When Docker answers the create only after mutationGrace, the start has
// given up on it and the delete has finished: the container Docker then
// creates belongs to no record, and the events watcher removes it (only
// this store's containers; under the service lock, so the delete either
// listed it or was over).
func TestContainerCreatedAfterDeleteIsRemoved(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const otherID = "svc-07e57070"
	otherSeen := make(chan struct{})
	h.m.hooks.eventHandled = func(ev runtime.Event) {
		if ev.Action == runtime.ActionCreate && ev.Labels[runtime.LabelService] == otherID {
			close(otherSeen)
		}
	}
	h.run()
	s := h.create(serving(), nil)
	h.fr.Inject(fakeruntime.OpCreate, fakeruntime.Fault{Hang: true, Completes: true})
	h.start(s.ID)
	if err := h.fr.WaitCalls(h.ctx(), fakeruntime.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Delete(h.ctx(), s.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	h.fr.Clear(fakeruntime.OpCreate) // Docker carries out the abandoned create now
	h.awaitFact("the late container destroyed", func() bool {
		return slices.ContainsFunc(h.fr.Recorded(), func(ev runtime.Event) bool {
			return ev.Action == runtime.ActionDestroy && ev.Labels[runtime.LabelService] == s.ID
		})
	})
	if cs := h.labelled(s.ID); len(cs) != 0 {
		t.Fatalf("containers of the deleted service: %+v", cs)
	}
	// A container of another store without a record here is never touched.
	other := serviceLabels(otherID)
	other[runtime.LabelStore] = "another-store"
	runContainer(t, h.fr, "aima-"+otherID+"-r1", 0, other)
	select {
	case <-otherSeen:
	case <-time.After(waitLimit):
		t.Fatal("the watcher never saw the other store's container")
	}
	if cs := h.fr.Containers(other); len(cs) != 1 {
		t.Errorf("another store's container: %+v", cs)
	}
}

// A stop cancels a start while Docker starts its container, and Docker
// starts it anyway: the stop waits for that answer, then stops the
// container, so a stopped service has no running container. (Cutting the
// start call at once left it running under a stopped record.)
func TestStopDuringContainerStartLeavesItStopped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.m.mutationGrace = waitLimit
	h.run()
	s := h.create(serving(), nil)
	h.fr.Inject(fakeruntime.OpStart, fakeruntime.Fault{Hang: true, Completes: true})
	h.start(s.ID)
	// The start call must be in Docker's hands before the stop: the phase
	// event comes before the call, and a stop landing between them ends
	// the start without any call to wait for.
	if err := h.fr.WaitCalls(h.ctx(), fakeruntime.OpStart, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.m.Stop(h.ctx(), s.ID)
		done <- err
	}()
	h.awaitLocked(s.ID)
	h.fr.Clear(fakeruntime.OpStart)
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := h.get(s.ID); got.Status != StatusStopped {
		t.Fatalf("after the stop: %+v", got)
	}
	for _, c := range h.labelled(s.ID) {
		if c.Running || c.Status == runtime.StateCreated {
			t.Errorf("container %s is %s under a stopped record", c.Name, c.Status)
		}
	}
	h.wantNotStranded()
}

// A stop cuts a start's cleanup while Docker removes the previous run's
// container, and Docker carries the removal on: the container is
// "removing". The next start's cleanup (or a delete) waits for that removal
// instead of failing with "removal already in progress", and the start
// runs. (Before, start --wait failed in cleanup, and a delete left the
// record creating with no start.)
func TestRemovalInProgressIsWaitedFor(t *testing.T) {
	t.Parallel()
	for _, then := range []string{"start", "delete"} {
		t.Run(then, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.run()
			s := h.stoppedAfterARun()
			h.fr.Inject(fakeruntime.OpRemove, fakeruntime.Fault{Hang: true, Completes: true, Times: 1})
			h.start(s.ID)
			h.container(s.ID, func(c runtime.ContainerState) bool { return c.Status == runtime.StateRemoving })
			// The stop gives up on the removal after mutationGrace; Docker
			// goes on with it.
			if res, err := h.m.Stop(h.ctx(), s.ID); err != nil || res.Service.Status != StatusStopped {
				t.Fatalf("stop: %+v %v", res, err)
			}
			if then == "start" {
				h.start(s.ID)
				if err := h.fr.WaitCalls(h.ctx(), fakeruntime.OpRemove, 2); err != nil {
					t.Fatal(err)
				}
				h.fr.Clear(fakeruntime.OpRemove) // the removal in progress ends
				got := h.await(s.ID, "running its third run", func(x Service) bool { return x.Status == StatusRunning && x.Run == 3 })
				if cs := h.labelled(s.ID); len(cs) != 1 || cs[0].ID != got.ContainerID {
					t.Errorf("containers: %+v", cs)
				}
				return
			}
			done := h.deleteAsync(s.ID)
			if err := h.fr.WaitCalls(h.ctx(), fakeruntime.OpRemove, 2); err != nil {
				t.Fatal(err)
			}
			h.fr.Clear(fakeruntime.OpRemove)
			if err := <-done; err != nil {
				t.Fatalf("delete: %v", err)
			}
			if cs := h.labelled(s.ID); len(cs) != 0 {
				t.Errorf("containers after the delete: %+v", cs)
			}
		})
	}
}

// A delete that cancels a start and then fails to remove the container
// records the start as failed (stop_failed: the container may remain), so
// the service is not left creating with no start running; a delete after
// the runtime recovers removes it.
func TestFailedDeleteSettlesTheStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.create(loadsForever(), nil)
	h.start(s.ID)
	h.awaitPhase(s.ID, PhaseLoading)
	h.fr.Inject(fakeruntime.OpRemove, fakeruntime.Fault{Err: errs.New(errs.Internal, "remove: device or resource busy")})
	if _, err := h.m.Delete(h.ctx(), s.ID); err == nil {
		t.Fatal("delete succeeded with the removal refused")
	}
	got := h.awaitStatus(s.ID, StatusFailed)
	wantFailed(t, got, FailureStopFailed, PhaseLoading, "delete did not complete", "device or resource busy")
	h.wantNotStranded()
	h.fr.Clear(fakeruntime.OpRemove)
	if _, err := h.m.Delete(h.ctx(), s.ID); err != nil {
		t.Fatalf("delete after the runtime recovered: %v", err)
	}
	h.awaitNoContainer(s.ID)
}

// A deletion ends every wait and follow of the service at once with
// not_found, through the deleted event (the last of its history).
func TestDeletionEndsWaits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.create(loadsForever(), nil)
	h.start(s.ID)
	h.awaitPhase(s.ID, PhaseLoading)
	sub := h.m.Bus().Subscribe(s.ID, h.m.Bus().LastSeq(s.ID))
	waited := make(chan error, 1)
	go func() {
		_, err := h.m.Wait(h.ctx(), s.ID, StatusRunning, time.Hour)
		waited <- err
	}()
	if _, err := h.m.Delete(h.ctx(), s.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		// (not_found too when the wait began only after the delete)
		if !errs.Is(err, errs.NotFound) {
			t.Fatalf("wait: %v, want not_found", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("the wait did not end with the delete")
	}
	var last events.Event
	for {
		ev, err := sub.Next(h.ctx())
		if err != nil {
			t.Fatalf("follow: %v; want a deleted event", err)
		}
		if last = ev; DeletedError(ev) != nil {
			break
		}
	}
	if !errs.Is(DeletedError(last), errs.NotFound) || last.ServiceID != s.ID {
		t.Errorf("last event %+v", last)
	}
}

// Stranded lists a service creating with no start (or stopping with no
// stop); a start in progress is not stranded; a stop settles it.
func TestStranded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	loading := h.create(loadsForever(), nil)
	h.start(loading.ID)
	h.awaitPhase(loading.ID, PhaseLoading)
	lost := h.create(serving(), nil)
	h.edit(lost.ID, func(x *Service) { x.Status, x.Phase = StatusCreating, PhaseCleanup })
	got, err := h.m.Stranded(h.ctx())
	if err != nil || len(got) != 1 || got[0].ID != lost.ID {
		t.Fatalf("stranded: %+v %v, want only %s", got, err, lost.ID)
	}
	if _, err := h.m.Stop(h.ctx(), lost.ID); err != nil {
		t.Fatal(err)
	}
	h.wantNotStranded()
}

// An engine that dies right after its first HTTP 200, while the start is
// about to record running: the watcher handles the die event while the
// record still says creating. The death is reported at once (not after
// unhealthy_grace, which is an hour here), whatever the interleaving.
func TestDeathWhileRecordingRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.LivenessInterval, o.UnhealthyGrace = time.Hour, time.Hour })
	died := make(chan struct{})
	var dying atomic.Value // the container ID
	dying.Store("")
	h.m.hooks.eventHandled = func(ev runtime.Event) {
		if ev.Action == runtime.ActionDie && ev.ContainerID == dying.Load() {
			close(died)
		}
	}
	h.m.hooks.beforeRunning = func(s Service) {
		// The engine answered 200; it dies now, and the watcher handles
		// the die before the start records running.
		cid := h.get(s.ID).ContainerID
		dying.Store(cid)
		if err := h.fr.Log(cid, "stderr", "RuntimeError: CUDA error: an illegal memory access was encountered"); err != nil {
			t.Error(err)
		}
		if err := h.fr.Exit(cid, 1); err != nil {
			t.Error(err)
		}
		select {
		case <-died:
		case <-time.After(waitLimit):
			t.Error("the watcher never handled the die event")
		}
	}
	h.run()
	s := h.create(serving(), nil)
	h.start(s.ID)
	got := h.awaitStatus(s.ID, StatusFailed)
	wantFailed(t, got, FailureExited, "", "container exited with code 1 while running", "CUDA error")
	if st := h.statuses(s.ID); !slices.Equal(st, []Status{StatusCreating, StatusRunning, StatusFailed}) {
		t.Errorf("statuses %v", st)
	}
}
