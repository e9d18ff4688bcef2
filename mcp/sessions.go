package mcp

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"aima/errs"
)

// sessions is the mcp-go SessionIdManager of the 2025-11-25 era: it issues
// random ids, knows which are live, and bounds them. mcp-go's own managers
// either accept any well-formed id (the default) or remember every ended id
// forever; this one keeps at most max live sessions, least recently used
// first out, and forgets a session idle for ttl or ended by DELETE. An id
// it does not know is refused (404), whatever the reason.
type sessions struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	byID    map[string]*list.Element // of *sessionEntry
	lru     *list.List               // front: most recently used
	evicted []string                 // removed to make room; mcp-go's state still to drop
}

type sessionEntry struct {
	id   string
	last time.Time
}

func newSessions(max int, ttl time.Duration, now func() time.Time) *sessions {
	if max <= 0 {
		max = DefaultMaxSessions
	}
	if ttl <= 0 {
		ttl = DefaultSessionIdleTTL
	}
	return &sessions{max: max, ttl: ttl, now: now, byID: map[string]*list.Element{}, lru: list.New()}
}

// Generate issues the id of a new session (on initialize).
func (s *sessions) Generate() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "aima-" + hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	for s.lru.Len() >= s.max {
		e := s.lru.Remove(s.lru.Back()).(*sessionEntry)
		delete(s.byID, e.id)
		s.evicted = append(s.evicted, e.id)
	}
	s.byID[id] = s.lru.PushFront(&sessionEntry{id: id, last: now})
	return id
}

// Validate accepts a live id and marks it used.
func (s *sessions) Validate(id string) (isTerminated bool, err error) {
	if !s.known(id) {
		return false, errs.NotFoundf("MCP session not found")
	}
	return false, nil
}

// Terminate ends a session (DELETE, or mcp-go's idle sweeper). Ending an
// unknown session is not an error: it is gone either way.
func (s *sessions) Terminate(id string) (isNotAllowed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		s.lru.Remove(el)
		delete(s.byID, id)
	}
	return false, nil
}

// known reports whether id is live, and if so marks it used.
func (s *sessions) known(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	el, ok := s.byID[id]
	if !ok {
		return false
	}
	el.Value.(*sessionEntry).last = now
	s.lru.MoveToFront(el)
	return true
}

// expireLocked drops sessions idle for ttl; they sit at the back.
func (s *sessions) expireLocked(now time.Time) {
	for el := s.lru.Back(); el != nil; el = s.lru.Back() {
		e := el.Value.(*sessionEntry)
		if now.Sub(e.last) < s.ttl {
			return
		}
		s.lru.Remove(el)
		delete(s.byID, e.id)
		s.evicted = append(s.evicted, e.id)
	}
}

// takeEvicted returns the ids removed to make room or for idleness since
// the last call.
func (s *sessions) takeEvicted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.evicted
	s.evicted = nil
	return out
}

// len is the number of live sessions.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}
