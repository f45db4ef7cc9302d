package bridge

import (
	"math"
	"sync/atomic"
)

// Stats are cumulative counters of one layer since it was created, plus a
// few gauges.
type Stats struct {
	// Sent counts messages written by Send.
	Sent uint64
	// GroupSent counts channel keys (Redis) or channels (memory) written
	// by GroupSend.
	GroupSent uint64
	// Received counts messages taken from the backend by Run.
	Received uint64
	// Delivered counts Handler calls.
	Delivered uint64
	// DecodeErrors counts received messages that could not be decoded
	// (bad msgpack, wrong key, expired token, ...). They are dropped.
	DecodeErrors uint64
	// DroppedUnknown counts deliveries dropped because the message named
	// no channel, or a channel that does not belong to this layer.
	DroppedUnknown uint64
	// DroppedExpired counts messages dropped because they waited longer
	// than expiry (memory backend).
	DroppedExpired uint64
	// OverCapacity counts Send calls refused with ErrChannelFull plus
	// channel keys that GroupSend skipped because they were full.
	OverCapacity uint64
	// BackendErrors counts failed receive attempts (e.g. Redis down), on
	// every host together; Hosts has them per host.
	BackendErrors uint64
	// GroupRefreshes counts completed re-additions of memberships
	// (periodic refreshes and restores after a reconnect), per host.
	GroupRefreshes uint64
	// LagLast is the publish-to-receive delay, in seconds, of the last
	// received message: the receive time minus the message's score,
	// which is the publisher's Unix time.
	LagLast float64
	// LagMax is the largest publish-to-receive delay, in seconds, since
	// the previous call to Stats. Use an Observer for a histogram.
	LagMax float64
	// Hosts has per-host figures in ring order (Redis layer only).
	Hosts []HostStats
}

// HostStats are the figures of one Redis host of the ring.
type HostStats struct {
	// Name is the host without secrets, as HostSpec.Name.
	Name string
	// Up is false while the host's receive loop cannot reach it.
	Up bool
	// QueueDepth is how many messages waited in this process's key on
	// the host at the last sample (about once a second).
	QueueDepth int64
	// Received counts messages taken from the host.
	Received uint64
	// BackendErrors counts failed receive attempts on the host.
	BackendErrors uint64
}

// StatsSource is implemented by layers that expose Stats.
type StatsSource interface {
	// Stats returns a snapshot of the counters.
	Stats() Stats
}

// counters is the live, atomically updated form of Stats.
type counters struct {
	sent, groupSent, received, delivered, decodeErrors, droppedUnknown,
	droppedExpired, overCapacity, backendErrors, groupRefreshes atomic.Uint64
	lagLast, lagMax atomic.Uint64 // float64 bits
}

// observeLag records one publish-to-receive delay.
func (c *counters) observeLag(seconds float64) {
	bits := math.Float64bits(seconds)
	c.lagLast.Store(bits)
	for {
		old := c.lagMax.Load()
		if math.Float64frombits(old) >= seconds || c.lagMax.CompareAndSwap(old, bits) {
			return
		}
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		Sent:           c.sent.Load(),
		GroupSent:      c.groupSent.Load(),
		Received:       c.received.Load(),
		Delivered:      c.delivered.Load(),
		DecodeErrors:   c.decodeErrors.Load(),
		DroppedUnknown: c.droppedUnknown.Load(),
		DroppedExpired: c.droppedExpired.Load(),
		OverCapacity:   c.overCapacity.Load(),
		BackendErrors:  c.backendErrors.Load(),
		GroupRefreshes: c.groupRefreshes.Load(),
		LagLast:        math.Float64frombits(c.lagLast.Load()),
		LagMax:         math.Float64frombits(c.lagMax.Swap(0)),
	}
}
