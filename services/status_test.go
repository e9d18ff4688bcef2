package services

import (
	"strings"
	"testing"

	"aima/errs"
)

// wantTransitions is the lifecycle, written out independently of the
// table in status.go so that changing it has to be deliberate: every pair
// not listed here must be refused.
var wantTransitions = map[Status][]Status{
	StatusCreated:   {StatusCreating},
	StatusCreating:  {StatusRunning, StatusFailed, StatusStopping},
	StatusRunning:   {StatusUnhealthy, StatusFailed, StatusStopping, StatusSleeping},
	StatusUnhealthy: {StatusRunning, StatusFailed, StatusStopping},
	StatusSleeping:  {StatusRunning, StatusFailed, StatusStopping},
	StatusStopping:  {StatusStopped, StatusFailed},
	StatusStopped:   {StatusCreating},
	StatusFailed:    {StatusCreating, StatusStopped},
}

func allowed(from, to Status) bool {
	for _, s := range wantTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

func TestAllStatusesIsTheLifecycle(t *testing.T) {
	t.Parallel()
	want := []Status{"created", "creating", "running", "unhealthy", "sleeping", "stopping", "stopped", "failed"}
	if len(AllStatuses) != len(want) {
		t.Fatalf("AllStatuses = %v, want %v", AllStatuses, want)
	}
	for i := range want {
		if AllStatuses[i] != want[i] {
			t.Fatalf("AllStatuses = %v, want %v", AllStatuses, want)
		}
	}
	if len(wantTransitions) != len(AllStatuses) {
		t.Fatalf("the expected table covers %d statuses, AllStatuses has %d", len(wantTransitions), len(AllStatuses))
	}
}

func TestTransitionTable(t *testing.T) {
	t.Parallel()
	for _, from := range AllStatuses {
		for _, to := range AllStatuses {
			want := allowed(from, to)
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			err := CheckTransition(from, to)
			switch {
			case want && err != nil:
				t.Errorf("CheckTransition(%s, %s) = %v, want nil", from, to, err)
			case !want && err == nil:
				t.Errorf("CheckTransition(%s, %s) = nil, want a conflict", from, to)
			case !want:
				if k := errs.KindOf(err); k != errs.Conflict {
					t.Errorf("CheckTransition(%s, %s) kind = %s, want %s", from, to, k, errs.Conflict)
				}
				if msg := err.Error(); !strings.Contains(msg, string(from)) || !strings.Contains(msg, string(to)) {
					t.Errorf("CheckTransition(%s, %s) message %q does not name both states", from, to, msg)
				}
			}
		}
	}
}

func TestTransitionUnknownStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ from, to Status }{
		{"", StatusCreating},
		{"bogus", StatusRunning},
		{StatusCreated, "bogus"},
		{StatusRunning, ""},
	} {
		if CanTransition(tc.from, tc.to) {
			t.Errorf("CanTransition(%q, %q) = true", tc.from, tc.to)
		}
		if err := CheckTransition(tc.from, tc.to); !errs.Is(err, errs.Conflict) {
			t.Errorf("CheckTransition(%q, %q) = %v, want conflict", tc.from, tc.to, err)
		}
	}
}

func TestTerminal(t *testing.T) {
	t.Parallel()
	want := map[Status]bool{
		StatusCreated:   true,
		StatusCreating:  false,
		StatusRunning:   true,
		StatusUnhealthy: false,
		StatusSleeping:  true,
		StatusStopping:  false,
		StatusStopped:   true,
		StatusFailed:    true,
	}
	for _, s := range AllStatuses {
		w, ok := want[s]
		if !ok {
			t.Errorf("status %s has no expected Terminal value", s)
			continue
		}
		if got := s.Terminal(); got != w {
			t.Errorf("%s.Terminal() = %v, want %v", s, got, w)
		}
	}
	if Status("bogus").Terminal() {
		t.Error(`Status("bogus").Terminal() = true`)
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for _, s := range AllStatuses {
		got, err := ParseStatus("status", string(s))
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, tc := range []struct{ field, in string }{
		{"status", ""},
		{"status", "RUNNING"},
		{"for", "run"},
		{"for", " running"},
		{"status", "running "},
		{"x", "deleted"},
	} {
		got, err := ParseStatus(tc.field, tc.in)
		if err == nil {
			t.Errorf("ParseStatus(%q) = %q, want an error", tc.in, got)
			continue
		}
		if k := errs.KindOf(err); k != errs.InvalidArgument {
			t.Errorf("ParseStatus(%q) kind = %s, want invalid_argument", tc.in, k)
		}
		if f := errs.FieldOf(err); f != tc.field {
			t.Errorf("ParseStatus(%q) field = %q, want %q", tc.in, f, tc.field)
		}
		if !strings.Contains(err.Error(), "running") {
			t.Errorf("ParseStatus(%q) message %q does not list the valid statuses", tc.in, err)
		}
	}
}

func TestStartPhasesOrder(t *testing.T) {
	t.Parallel()
	want := []Phase{"cleanup", "schedule", "pull", "create", "start", "loading", "health_check"}
	if len(StartPhases) != len(want) {
		t.Fatalf("StartPhases = %v, want %v", StartPhases, want)
	}
	for i := range want {
		if StartPhases[i] != want[i] {
			t.Fatalf("StartPhases = %v, want %v", StartPhases, want)
		}
	}
}
