package bridge

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// Receive loop timing. BZPOPMIN's timeout bounds how long Run takes to
// notice cancellation; 1 s is the smallest whole-second timeout.
const (
	receiveTimeout = time.Second
	backoffMin     = 100 * time.Millisecond
	backoffMax     = 5 * time.Second
	// depthSampleEvery is how often a receive loop measures the backlog
	// of its process key.
	depthSampleEvery = time.Second
)

// Run drains the process key on every host, one loop per host, and calls
// the Handler for each local channel a message names, until ctx is
// cancelled; then it returns nil. Listening on every host, not only on the
// hash of the process name, also catches channels_redis send()s, which
// hash the full channel name. Redis errors are retried with backoff and
// reported by Ready meanwhile. Run also re-adds memberships every
// group_refresh and after a host restarts.
func (l *RedisLayer) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("bridge: Run is already running")
	}
	defer l.running.Store(false)
	var wg sync.WaitGroup
	for _, s := range l.shards {
		wg.Go(func() { l.maintain(ctx, s) })
		wg.Go(func() { l.receiveLoop(ctx, s) })
	}
	wg.Wait()
	return nil
}

func (l *RedisLayer) receiveLoop(ctx context.Context, s *redisShard) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		err := l.receiveOnce(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.stats.backendErrors.Add(1)
			s.backendErrors.Add(1)
			if s.loopErr.Swap(&err) == nil {
				l.log.Warn("redis receive failed; retrying", "host", s.index, "redis", s.name, "err", err)
			}
			backoff = min(max(2*backoff, backoffMin), backoffMax)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if s.loopErr.Swap(nil) != nil {
			l.log.Info("redis receive recovered; restoring group memberships", "host", s.index, "redis", s.name)
			s.requestRestore()
		}
	}
}

// receiveOnce blocks up to receiveTimeout for one message, then drains up
// to receive_batch more per round trip while the key keeps yielding full
// batches. About once a second it also samples the key's length, in the
// same round trip as a pop.
func (l *RedisLayer) receiveOnce(ctx context.Context, s *redisShard) error {
	res, err := s.rdb.BZPopMin(ctx, receiveTimeout, l.processKey).Result()
	if errors.Is(err, redis.Nil) {
		if l.depthDue(s) {
			l.setDepth(s, 0) // the key was empty for a whole second
		}
		return nil
	}
	if err != nil {
		return err
	}
	l.handleMember(s, res.Member, res.Score, score(l.now()))
	batch := l.cfg.ReceiveBatch
	for ctx.Err() == nil {
		var zs []redis.Z
		if l.depthDue(s) {
			var pop *redis.ZSliceCmd
			var card *redis.IntCmd
			_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				pop = p.ZPopMin(ctx, l.processKey, int64(batch))
				card = p.ZCard(ctx, l.processKey)
				return nil
			})
			if err != nil {
				return err
			}
			zs = pop.Val()
			l.setDepth(s, card.Val())
		} else if zs, err = s.rdb.ZPopMin(ctx, l.processKey, int64(batch)).Result(); err != nil {
			return err
		}
		now := score(l.now())
		for i := range zs {
			l.handleMember(s, zs[i].Member, zs[i].Score, now)
		}
		if len(zs) < batch {
			return nil
		}
	}
	return nil
}

// depthDue reports whether the shard's queue depth should be sampled now.
func (l *RedisLayer) depthDue(s *redisShard) bool {
	return l.now().Sub(s.lastSample) >= depthSampleEvery
}

func (l *RedisLayer) setDepth(s *redisShard, n int64) {
	s.lastSample = l.now()
	s.depth.Store(n)
	if l.observer != nil {
		l.observer.SetQueueDepth(s.index, int(n))
	}
}

// handleMember decodes one popped member and delivers it. sc is the
// member's score (its publication time) and now the receive time, both in
// Unix seconds. Nothing in it can stop the loop: bad members are logged
// and counted.
func (l *RedisLayer) handleMember(s *redisShard, member any, sc, now float64) {
	l.stats.received.Add(1)
	s.received.Add(1)
	lag := max(now-sc, 0)
	l.stats.observeLag(lag)
	if l.observer != nil {
		l.observer.ObserveLag(lag)
	}
	str, ok := member.(string)
	if !ok {
		l.stats.decodeErrors.Add(1)
		l.log.Warn("dropping message of unexpected type", "type", fmt.Sprintf("%T", member))
		return
	}
	// The decoder only reads the member and keeps no reference to it, so
	// the string's bytes are used in place instead of being copied.
	msg, chans, err := l.codec.DecodeMember(unsafe.Slice(unsafe.StringData(str), len(str)))
	if err != nil {
		l.stats.decodeErrors.Add(1)
		// The error says what is wrong; the payload is never logged.
		l.log.Warn("dropping message that cannot be decoded", "key", l.processKey, "host", s.index, "bytes", len(str), "err", err)
		return
	}
	if len(chans) == 0 {
		l.stats.droppedUnknown.Add(1)
		l.log.Debug("dropping message without __asgi_channel__")
		return
	}
	for _, ch := range chans {
		if !l.names.isLocal(ch) {
			l.stats.droppedUnknown.Add(1)
			l.log.Debug("dropping message for a channel of another process", "channel", ch)
			continue
		}
		l.deliver(ch, msg)
	}
}

// deliver calls the Handler, keeping a panic in it from ending the loop.
func (l *RedisLayer) deliver(ch string, msg Message) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("handler panicked", "channel", ch, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	l.stats.delivered.Add(1)
	l.handler(ch, msg)
}
