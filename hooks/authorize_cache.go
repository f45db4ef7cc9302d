package hooks

import (
	"container/list"
	"encoding/json"
	"sync"
	"time"
)

// authorizeCache keeps successful authorize answers for a while, bounded
// in size, evicting the least recently used. One mutex is enough: an entry
// is touched once per handshake, and the work under the lock is a map
// lookup and a list move.
type authorizeCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	size    int
	entries map[string]*list.Element
	order   *list.List // front: most recently used
}

type cacheEntry struct {
	key     string
	resp    *Response
	expires time.Time
}

func newAuthorizeCache(ttl time.Duration, size int) *authorizeCache {
	return &authorizeCache{ttl: ttl, size: size, entries: make(map[string]*list.Element), order: list.New()}
}

// authorizeKey identifies an answer: the hook path, the event, the route,
// the user and the path parameters. The socket's channel is left out on
// purpose: it differs on every connection. A JSON array keeps the parts
// apart whatever characters they hold, and sorts the parameters' keys.
func authorizeKey(path string, r *Request) (string, error) {
	b, err := json.Marshal([]any{path, r.Event, r.Route, r.UserID, r.Authenticated, r.Params})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// get returns the cached answer for key, if there is one and it is fresh.
func (c *authorizeCache) get(key string, now time.Time) (*Response, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.resp, true
}

// put stores an answer until now+ttl, evicting the least recently used
// entry when the cache is full.
func (c *authorizeCache) put(key string, resp *Response, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.resp, e.expires = resp, now.Add(c.ttl)
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, resp: resp, expires: now.Add(c.ttl)})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

func (c *authorizeCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
