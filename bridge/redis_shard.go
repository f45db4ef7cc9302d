package bridge

import (
	"sync/atomic"
	"time"
)

// redisShard is one host of the Redis layer's ring: its client, the
// health of its receive loop, and its figures.
type redisShard struct {
	index int
	name  string
	rdb   redisClient

	loopErr   atomic.Pointer[error]
	runID     atomic.Pointer[string]
	restoreCh chan struct{}

	received      atomic.Uint64
	backendErrors atomic.Uint64
	depth         atomic.Int64
	// lastSample is when the queue depth was last sampled; only the
	// shard's receive loop touches it.
	lastSample time.Time
}

func newRedisShard(index int, name string) *redisShard {
	return &redisShard{index: index, name: name, restoreCh: make(chan struct{}, 1)}
}

// requestRestore asks the shard's maintenance goroutine to re-add the
// memberships it holds.
func (s *redisShard) requestRestore() {
	select {
	case s.restoreCh <- struct{}{}:
	default:
	}
}

// stats returns the shard's figures.
func (s *redisShard) stats() HostStats {
	return HostStats{
		Name:          s.name,
		Up:            s.loopErr.Load() == nil,
		QueueDepth:    s.depth.Load(),
		Received:      s.received.Load(),
		BackendErrors: s.backendErrors.Load(),
	}
}
