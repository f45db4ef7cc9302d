package bridge

import "sync/atomic"

// Stats are cumulative counters of one layer since it was created.
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
	// BackendErrors counts failed receive attempts (e.g. Redis down).
	BackendErrors uint64
	// GroupRefreshes counts completed re-additions of all memberships
	// (periodic refreshes and restores after a reconnect).
	GroupRefreshes uint64
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
	}
}
