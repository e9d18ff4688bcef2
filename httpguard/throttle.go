package httpguard

import (
	"sync"
	"time"
)

// Failed-authentication throttle: a client address may get the token wrong
// a few times (a typo, a stale token in a script); after that each further
// failure locks it out for twice as long as the last, from 1 s up to 5
// min, and a lockout refuses every attempt from the address with 429,
// the right token included, without checking it (else the lockout would
// only slow the answers, not the guessing). Ten minutes without a failure
// forgive the address; a success does not (on a shared address, loopback
// above all, a legitimate client's successes would otherwise hand a
// guesser new free attempts). Once the lockout has grown, one token every
// 5 minutes can be tried from an address: guessing a token is hopeless,
// and a locked-out operator is not locked out for long.
const (
	freeFailures  = 5
	firstLockout  = time.Second
	maxLockout    = 5 * time.Minute
	forgetFailure = 10 * time.Minute
	// maxTracked bounds the addresses remembered; past it, new addresses
	// share one entry (so many addresses cannot evade the throttle, nor
	// grow the table).
	maxTracked = 10000
)

// throttle remembers failed authentications per client address.
type throttle struct {
	now func() time.Time

	mu     sync.Mutex
	m      map[ClientKey]*failures
	pruned time.Time // when forgiven entries were last dropped
}

type failures struct {
	n     int       // failures in a row
	last  time.Time // of the last failure
	until time.Time // the lockout's end (zero: none)
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, m: map[ClientKey]*failures{}}
}

// overflow is the shared entry of addresses past maxTracked.
var overflow = ClientKey{}

// lockedOut reports how long key is still locked out (0: it is not).
func (t *throttle) lockedOut(key ClientKey) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.m[key]
	if !ok {
		if len(t.m) < maxTracked {
			return 0
		}
		if f, ok = t.m[overflow]; !ok {
			return 0
		}
	}
	if left := f.until.Sub(t.now()); left > 0 {
		return left
	}
	return 0
}

// fail records a failure of key and returns how many failures in a row it
// has and the lockout this one starts (0: none yet).
func (t *throttle) fail(key ClientKey) (int, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if now.Sub(t.pruned) >= forgetFailure {
		t.pruneLocked(now)
	}
	f, ok := t.m[key]
	if !ok {
		if len(t.m) >= maxTracked {
			t.pruneLocked(now)
		}
		if len(t.m) >= maxTracked {
			key = overflow
			f = t.m[key]
		}
		if f == nil {
			f = &failures{}
			t.m[key] = f
		}
	}
	if now.Sub(f.last) >= forgetFailure && !now.Before(f.until) {
		f.n = 0
	}
	f.n++
	f.last = now
	var lock time.Duration
	if f.n > freeFailures {
		lock = maxLockout
		if shift := f.n - freeFailures - 1; shift < 20 {
			lock = min(firstLockout<<shift, maxLockout)
		}
		f.until = now.Add(lock)
	}
	return f.n, lock
}

// pruneLocked drops the entries that are forgiven by now.
func (t *throttle) pruneLocked(now time.Time) {
	t.pruned = now
	for k, f := range t.m {
		if now.Sub(f.last) >= forgetFailure && !now.Before(f.until) {
			delete(t.m, k)
		}
	}
}

// len is how many addresses are remembered.
func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
