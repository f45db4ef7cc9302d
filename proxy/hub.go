package proxy

import (
	"hash/maphash"
	"sync"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

const hubShards = 64

// Hub maps local channel names to connections and hands each channel-layer
// message to its connection. Sharded so that deliveries and connects on
// different sockets rarely share a lock.
type Hub struct {
	seed   maphash.Seed
	shards [hubShards]hubShard
	onMiss func()
}

type hubShard struct {
	mu    sync.RWMutex
	conns map[string]*conn
}

// NewHub returns an empty hub. onMiss, if not nil, is called for every
// message addressed to a channel with no connection (a socket that just
// closed).
func NewHub(onMiss func()) *Hub {
	h := &Hub{seed: maphash.MakeSeed(), onMiss: onMiss}
	for i := range h.shards {
		h.shards[i].conns = make(map[string]*conn)
	}
	return h
}

func (h *Hub) shard(channel string) *hubShard {
	return &h.shards[maphash.String(h.seed, channel)%hubShards]
}

func (h *Hub) add(c *conn) {
	s := h.shard(c.channel)
	s.mu.Lock()
	s.conns[c.channel] = c
	s.mu.Unlock()
}

func (h *Hub) remove(c *conn) {
	s := h.shard(c.channel)
	s.mu.Lock()
	if s.conns[c.channel] == c {
		delete(s.conns, c.channel)
	}
	s.mu.Unlock()
}

// Deliver is the channel layer's Handler: it passes msg to the connection
// that owns channel. It never blocks on a client.
func (h *Hub) Deliver(channel string, msg bridge.Message) {
	s := h.shard(channel)
	s.mu.RLock()
	c := s.conns[channel]
	s.mu.RUnlock()
	if c == nil {
		if h.onMiss != nil {
			h.onMiss()
		}
		return
	}
	c.onEvent(msg)
}

// Len returns the number of connections.
func (h *Hub) Len() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		n += len(s.conns)
		s.mu.RUnlock()
	}
	return n
}

// closeAll closes every connection with a close code and reason.
func (h *Hub) closeAll(code int, reason string) {
	var all []*conn
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, c := range s.conns {
			all = append(all, c)
		}
		s.mu.RUnlock()
	}
	for _, c := range all {
		c.close(code, reason)
	}
}
