package ratelimit

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DefaultLocalMaxKeys is the number of keys a Local limiter keeps when
// NewLocal is given 0.
const DefaultLocalMaxKeys = 100000

// Local is a Limiter that keeps its windows in this process, with the same
// semantics as Redis: a log of accepted hits per key, exact over a rolling
// window.
//
// Memory is bounded: a key whose newest hit has left its window holds no
// budget and is dropped on a later call, and when more than maxKeys keys
// are in use the least recently used key is forgotten, which gives that
// key a fresh budget. Each key holds at most limit hits.
type Local struct {
	mu      sync.Mutex
	maxKeys int
	now     func() time.Time
	base    time.Time
	keys    map[string]*list.Element
	lru     *list.List // of *localKey, most recently used first
}

// localKey is one key's log of accepted hits.
type localKey struct {
	key string
	// hits are the accepted hits inside the window, oldest first, in
	// nanoseconds since the limiter's base time.
	hits []int64
	// idleAt is when the newest hit leaves its window: from then on the
	// key holds nothing and may be dropped.
	idleAt int64
}

// NewLocal returns an in-process limiter that keeps at most maxKeys keys
// (DefaultLocalMaxKeys when maxKeys is 0 or less).
func NewLocal(maxKeys int) *Local {
	return newLocalWithClock(maxKeys, time.Now)
}

// newLocalWithClock lets tests drive time.
func newLocalWithClock(maxKeys int, now func() time.Time) *Local {
	if maxKeys <= 0 {
		maxKeys = DefaultLocalMaxKeys
	}
	return &Local{
		maxKeys: maxKeys,
		now:     now,
		base:    now(),
		keys:    make(map[string]*list.Element),
		lru:     list.New(),
	}
}

// Allow decides one hit. It never blocks on anything but a short lock, and
// its only error is an invalid argument (ErrInvalidArgument).
func (l *Local) Allow(_ context.Context, key string, limit int, window time.Duration) (Result, error) {
	if err := checkArgs(key, limit, window); err != nil {
		return Result{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := int64(l.now().Sub(l.base))
	l.dropIdle(now)
	var k *localKey
	if el, ok := l.keys[key]; ok {
		l.lru.MoveToFront(el)
		k = el.Value.(*localKey)
	} else {
		k = &localKey{key: key}
		l.keys[key] = l.lru.PushFront(k)
		for len(l.keys) > l.maxKeys {
			l.remove(l.lru.Back())
		}
	}
	w := int64(window)
	i := 0
	for i < len(k.hits) && k.hits[i] <= now-w {
		i++
	}
	k.hits = k.hits[i:]
	if len(k.hits) < limit {
		k.hits = append(k.hits, now)
		k.idleAt = max(k.idleAt, now+w)
		return Result{Allowed: true, Remaining: limit - len(k.hits)}, nil
	}
	retry := k.hits[len(k.hits)-limit] + w - now
	return Result{RetryAfter: time.Duration(max(retry, 1))}, nil
}

// Len returns the number of keys held.
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// dropIdle removes least recently used keys whose hits have all left their
// window; it stops at the first key still holding a hit, so each call does
// little work.
func (l *Local) dropIdle(now int64) {
	for el := l.lru.Back(); el != nil; el = l.lru.Back() {
		if el.Value.(*localKey).idleAt > now {
			return
		}
		l.remove(el)
	}
}

func (l *Local) remove(el *list.Element) {
	k := l.lru.Remove(el).(*localKey)
	delete(l.keys, k.key)
}
