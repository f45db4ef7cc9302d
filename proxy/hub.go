package proxy

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

const hubShards = 64

// Hub routes channel-layer messages to local sockets.
//
// Each group with local sockets is joined once, through one layer channel
// of its own (a groupSub), so Django's group_send costs one Redis write per
// sidecar process however many sockets listen. Each socket also has a
// channel of its own for direct send()s. Lookups are sharded so that
// deliveries and connects on different channels rarely share a lock.
type Hub struct {
	seed   maphash.Seed
	layer  bridge.Layer
	onMiss func()

	targets [hubShards]targetShard // layer channel -> conn or groupSub
	groups  [hubShards]groupShard  // group name -> groupSub
}

// target is what a layer channel delivers to.
type target interface {
	deliver(msg bridge.Message)
}

type targetShard struct {
	mu sync.RWMutex
	m  map[string]target
}

type groupShard struct {
	mu sync.Mutex
	m  map[string]*groupSub
}

// groupSub is this process's membership of one group.
type groupSub struct {
	hub     *Hub
	name    string
	channel string
	users   int // guarded by the group shard lock; includes joins in progress

	mu      sync.Mutex // serializes the layer's GroupAdd/GroupDiscard for the group
	joined  bool
	members atomic.Pointer[[]*conn] // copy-on-write, read without locks on fan-out
}

// NewHub returns an empty hub. onMiss, if not nil, is called for every
// message addressed to a channel with no socket (one that just closed).
func NewHub(onMiss func()) *Hub {
	h := &Hub{seed: maphash.MakeSeed(), onMiss: onMiss}
	for i := range h.targets {
		h.targets[i].m = make(map[string]target)
		h.groups[i].m = make(map[string]*groupSub)
	}
	return h
}

// SetLayer gives the hub the layer it joins groups on. It must be called
// before the first socket connects; the layer is built with Deliver as its
// handler, hence the two steps.
func (h *Hub) SetLayer(l bridge.Layer) { h.layer = l }

func (h *Hub) targetShard(channel string) *targetShard {
	return &h.targets[maphash.String(h.seed, channel)%hubShards]
}

func (h *Hub) groupShard(group string) *groupShard {
	return &h.groups[maphash.String(h.seed, group)%hubShards]
}

func (h *Hub) setTarget(channel string, t target) {
	s := h.targetShard(channel)
	s.mu.Lock()
	s.m[channel] = t
	s.mu.Unlock()
}

func (h *Hub) dropTarget(channel string, t target) {
	s := h.targetShard(channel)
	s.mu.Lock()
	if s.m[channel] == t {
		delete(s.m, channel)
	}
	s.mu.Unlock()
	if cc, ok := h.layer.(bridge.ChannelCloser); ok {
		cc.CloseChannel(channel)
	}
}

// Deliver is the channel layer's Handler. It never blocks on a client.
func (h *Hub) Deliver(channel string, msg bridge.Message) {
	s := h.targetShard(channel)
	s.mu.RLock()
	t := s.m[channel]
	s.mu.RUnlock()
	if t == nil {
		if h.onMiss != nil {
			h.onMiss()
		}
		return
	}
	t.deliver(msg)
}

// join adds a socket to a group, joining the group on the layer if it is
// the first local member.
func (h *Hub) join(ctx context.Context, c *conn, group string) error {
	gs := h.acquire(group)
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if !gs.joined {
		if err := h.layer.GroupAdd(ctx, group, gs.channel); err != nil {
			h.release(gs)
			return err
		}
		gs.joined = true
	}
	old := gs.snapshot()
	next := make([]*conn, len(old), len(old)+1)
	copy(next, old)
	next = append(next, c)
	gs.members.Store(&next)
	return nil
}

// leave removes a socket from a group, leaving the group on the layer when
// the last local member goes.
func (h *Hub) leave(ctx context.Context, c *conn, group string) error {
	gs := h.lookup(group)
	if gs == nil {
		return nil
	}
	var err error
	gs.mu.Lock()
	old := gs.snapshot()
	idx := -1
	for i, m := range old {
		if m == c {
			idx = i
			break
		}
	}
	if idx >= 0 {
		next := make([]*conn, 0, len(old)-1)
		next = append(next, old[:idx]...)
		next = append(next, old[idx+1:]...)
		gs.members.Store(&next)
		if len(next) == 0 && gs.joined {
			err = h.layer.GroupDiscard(ctx, group, gs.channel)
			gs.joined = false
		}
	}
	gs.mu.Unlock()
	if idx >= 0 {
		h.release(gs)
	}
	return err
}

// acquire returns the group's groupSub, creating it, and counts a user.
func (h *Hub) acquire(group string) *groupSub {
	s := h.groupShard(group)
	s.mu.Lock()
	gs := s.m[group]
	if gs == nil {
		gs = &groupSub{hub: h, name: group, channel: h.layer.NewChannel()}
		empty := []*conn{}
		gs.members.Store(&empty)
		s.m[group] = gs
		h.setTarget(gs.channel, gs)
	}
	gs.users++
	s.mu.Unlock()
	return gs
}

func (h *Hub) lookup(group string) *groupSub {
	s := h.groupShard(group)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[group]
}

// release drops a user; the last one removes the groupSub.
func (h *Hub) release(gs *groupSub) {
	s := h.groupShard(gs.name)
	s.mu.Lock()
	gs.users--
	gone := gs.users == 0
	if gone && s.m[gs.name] == gs {
		delete(s.m, gs.name)
	}
	s.mu.Unlock()
	if gone {
		h.dropTarget(gs.channel, gs)
	}
}

func (gs *groupSub) snapshot() []*conn { return *gs.members.Load() }

// deliver fans one event out to every local member. The frame is built
// once per route (and, for compressed sockets, deflated once), not once per
// socket.
func (gs *groupSub) deliver(msg bridge.Message) {
	members := gs.snapshot()
	if len(members) == 0 {
		return
	}
	var cache frameCache
	cache.shared = len(members) > 1
	for _, c := range members {
		c.deliverEvent(msg, &cache)
	}
}

// Len returns the number of sockets.
func (h *Hub) Len() int {
	n := 0
	for i := range h.targets {
		s := &h.targets[i]
		s.mu.RLock()
		for _, t := range s.m {
			if _, ok := t.(*conn); ok {
				n++
			}
		}
		s.mu.RUnlock()
	}
	return n
}

// Groups returns the number of groups joined on the layer.
func (h *Hub) Groups() int {
	n := 0
	for i := range h.groups {
		s := &h.groups[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// eachConn calls fn for every socket, one shard at a time, outside the
// shard's lock.
func (h *Hub) eachConn(fn func(*conn)) {
	var batch []*conn
	for i := range h.targets {
		s := &h.targets[i]
		batch = batch[:0]
		s.mu.RLock()
		for _, t := range s.m {
			if c, ok := t.(*conn); ok {
				batch = append(batch, c)
			}
		}
		s.mu.RUnlock()
		for _, c := range batch {
			fn(c)
		}
	}
}

// closeAll closes every socket with a close code and reason.
func (h *Hub) closeAll(code int, reason string) {
	h.eachConn(func(c *conn) { c.close(code, reason) })
}
