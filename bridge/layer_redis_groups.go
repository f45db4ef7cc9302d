package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// refreshChunk is how many memberships go in one pipeline when re-adding
// groups.
const refreshChunk = 500

// maintain re-adds the memberships held by one host every group_refresh
// and whenever that host asks for a restore.
func (l *RedisLayer) maintain(ctx context.Context, s *redisShard) {
	t := time.NewTicker(time.Duration(l.cfg.GroupRefresh) * time.Second)
	defer t.Stop()
	for {
		reason := ""
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reason = "refresh"
		case <-s.restoreCh:
			reason = "restore"
		}
		if err := l.restoreHost(ctx, s); err != nil && ctx.Err() == nil {
			l.log.Warn("re-adding group memberships failed", "reason", reason, "host", s.index, "redis", s.name, "err", err)
		}
	}
}

// RestoreGroups re-adds every local membership now, on every host, with a
// fresh score and TTL. Run does it periodically and after a host restarts;
// it is exported for callers that know better (e.g. after a failover).
func (l *RedisLayer) RestoreGroups(ctx context.Context) error {
	var errs []error
	for _, s := range l.shards {
		if err := l.restoreHost(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// restoreHost re-adds the memberships of the groups that live on s.
func (l *RedisLayer) restoreHost(ctx context.Context, s *redisShard) error {
	all := l.members.snapshot()
	mine := all[:0]
	for _, m := range all {
		if l.shardOf(m.group) == s {
			mine = append(mine, m)
		}
	}
	for start := 0; start < len(mine); start += refreshChunk {
		if err := l.restoreChunk(ctx, s, mine[start:min(start+refreshChunk, len(mine))]); err != nil {
			return fmt.Errorf("re-add memberships on redis %s: %w", s.name, err)
		}
	}
	l.stats.groupRefreshes.Add(1)
	return nil
}

func (l *RedisLayer) restoreChunk(ctx context.Context, s *redisShard, chunk []membership) error {
	// The write lock keeps a concurrent GroupDiscard from being undone.
	l.groupMu.Lock()
	defer l.groupMu.Unlock()
	sc := score(l.now())
	expiry := time.Duration(l.cfg.GroupExpiry) * time.Second
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range chunk {
			if !l.members.has(m.group, m.channel) {
				continue
			}
			key := l.groupKey(m.group)
			p.ZAdd(ctx, key, redis.Z{Score: sc, Member: m.channel})
			p.Expire(ctx, key, expiry)
		}
		return nil
	})
	return err
}

// onConnect runs on every new connection to host s. A changed server
// run_id means that host restarted or failed over and may have lost the
// memberships it held.
func (l *RedisLayer) onConnect(ctx context.Context, s *redisShard, cn *redis.Conn) error {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		// INFO may be forbidden by ACLs; the loop's error path still restores.
		return nil
	}
	l.noteRunID(s, parseRunID(info))
	return nil
}

func (l *RedisLayer) noteRunID(s *redisShard, id string) {
	if id == "" {
		return
	}
	old := s.runID.Swap(&id)
	if old != nil && *old != id {
		l.log.Info("redis server changed (restart or failover); restoring group memberships", "host", s.index, "redis", s.name)
		s.requestRestore()
	}
}
