package testenv

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// SoakReps is how many times a soak test repeats its leader kills:
// AIMA_SOAK_REPS (`make soak` sets 10), else once.
func SoakReps(t testing.TB) int {
	t.Helper()
	v := os.Getenv("AIMA_SOAK_REPS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("AIMA_SOAK_REPS=%q: want a positive integer", v)
	}
	return n
}

// Median of the samples (the mean of the middle two for an even count; 0
// for none), for the figures benchmarks print. The samples are not
// reordered.
func Median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile of sorted samples, nearest rank (p from 0 to 1; 0 for none).
func Percentile[T any](sorted []T, p float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Ms is d in milliseconds, the unit benchmarks report times in.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
