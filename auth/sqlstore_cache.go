package auth

import (
	"container/list"
	"sync"
	"time"
)

// rowCache keeps rows read from the database for a short while, so that a
// burst of handshakes or critical frames costs one query. It holds at most
// size entries and drops the least recently used first. The caller says at
// each get how old an entry may be, because handshakes and re-checks
// tolerate different ages. It is safe for concurrent use.
type rowCache[K comparable, V any] struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *rowEntry[K, V], most recently used first
	items map[K]*list.Element
}

type rowEntry[K comparable, V any] struct {
	key     K
	value   V
	fetched time.Time
}

func newRowCache[K comparable, V any](size int) *rowCache[K, V] {
	if size < 1 {
		size = 1
	}
	return &rowCache[K, V]{size: size, order: list.New(), items: make(map[K]*list.Element)}
}

// get returns the value stored for key if it was fetched less than maxAge
// before now. An entry fetched after now (a clock step back) counts as
// stale. A non-positive maxAge never hits.
func (c *rowCache[K, V]) get(key K, maxAge time.Duration, now time.Time) (V, bool) {
	var zero V
	if maxAge <= 0 {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*rowEntry[K, V])
	age := now.Sub(e.fetched)
	if age < 0 || age >= maxAge {
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

// put stores value for key, fetched at now, evicting the least recently
// used entry when full.
func (c *rowCache[K, V]) put(key K, value V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*rowEntry[K, V])
		e.value, e.fetched = value, now
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*rowEntry[K, V]).key)
	}
	c.items[key] = c.order.PushFront(&rowEntry[K, V]{key: key, value: value, fetched: now})
}

// len returns the number of entries.
func (c *rowCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
