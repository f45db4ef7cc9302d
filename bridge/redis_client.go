package bridge

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisClient is the part of go-redis the layer uses for one host.
// *redis.Client satisfies it, for a plain host and (from
// redis.NewFailoverClient) for a Sentinel host alike.
type redisClient interface {
	redis.Scripter
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	ZRem(ctx context.Context, key string, members ...any) *redis.IntCmd
	BZPopMin(ctx context.Context, timeout time.Duration, keys ...string) *redis.ZWithKeyCmd
	ZPopMin(ctx context.Context, key string, count ...int64) *redis.ZSliceCmd
	Ping(ctx context.Context) *redis.StatusCmd
	Close() error
}

// sendScriptSrc is channels_redis' send() made atomic: trim stale
// messages, refuse when the key is at capacity, else add and refresh the
// TTL. KEYS[1] = channel key; ARGV = trim-before score, capacity, score,
// member, expiry. Returns 1 when written, 0 when full.
const sendScriptSrc = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
`

// groupSendScriptSrc is channels_redis' group_send fan-out with the trim
// folded in: for each key, trim stale messages, then add the key's member
// with the shared score unless the key is at capacity. KEYS = n channel
// keys; ARGV = n members, n capacities, score, expiry, trim-before score.
// Returns how many keys were over capacity.
const groupSendScriptSrc = `
local n = #KEYS
local score = ARGV[2 * n + 1]
local expiry = ARGV[2 * n + 2]
local trim = ARGV[2 * n + 3]
local over = 0
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, trim)
  if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[n + i]) then
    redis.call('ZADD', KEYS[i], score, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    over = over + 1
  end
end
return over
`

// parseRunID extracts run_id from the text of INFO server.
func parseRunID(info string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
