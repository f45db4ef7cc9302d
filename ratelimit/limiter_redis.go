package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// allowScript is one atomic decision over a key's log of accepted hits: a
// sorted set whose scores are Redis' own time in microseconds.
//
// KEYS[1] the log; ARGV[1] the limit; ARGV[2] the window in microseconds;
// ARGV[3] the window in milliseconds, rounded up, for the key's expiry.
// Returns {allowed (0/1), remaining, retry after in microseconds}.
//
// The time comes from TIME, not from the caller, so that processes whose
// clocks disagree still share one window. A hit exactly one window old has
// left the window. Reading TIME before writing needs effects replication,
// the default from Redis 5 and asked for explicitly on Redis 3.2 and 4.
// Members are "seconds.microseconds-count", unique even
// for hits in the same microsecond because count grows with each one.
var allowScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, t[1] .. '.' .. t[2] .. '-' .. count)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, limit - count - 1, 0}
end
local idx = count - limit
local oldest = redis.call('ZRANGE', KEYS[1], idx, idx, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window - now
if retry < 1 then retry = 1 end
return {0, 0, retry}
`)

// Redis is a Limiter whose windows live in Redis and are shared by every
// process that uses the same Redis and prefix. Each key is one sorted set,
// Prefix+key, that expires one window after its newest accepted hit.
type Redis struct {
	client redis.Scripter
	prefix string
}

// NewRedis returns a limiter that keeps key k in the Redis key prefix+k.
// client is usually a *redis.Client (see bridge.HostSpec.NewClient).
func NewRedis(client redis.Scripter, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Allow decides one hit atomically in Redis. An error means Redis could
// not decide (unreachable, timed out) or the arguments are invalid
// (ErrInvalidArgument); the hit is then not counted.
func (r *Redis) Allow(ctx context.Context, key string, limit int, window time.Duration) (Result, error) {
	if err := checkArgs(key, limit, window); err != nil {
		return Result{}, err
	}
	us := window.Microseconds()
	ms := (us + 999) / 1000
	vals, err := allowScript.Run(ctx, r.client, []string{r.prefix + key}, limit, us, ms).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("rate limit script: %w", err)
	}
	if len(vals) != 3 {
		return Result{}, fmt.Errorf("rate limit script: %d values returned, want 3", len(vals))
	}
	return Result{
		Allowed:    vals[0] == 1,
		Remaining:  int(vals[1]),
		RetryAfter: time.Duration(vals[2]) * time.Microsecond,
	}, nil
}
