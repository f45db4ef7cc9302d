// Package ratelimit counts hits per key over a true rolling window, the
// per-user limits of WebSocket routes ("30 frames per 60 s per user per
// route").
//
// Three limiters share one contract (Limiter):
//
//   - Redis keeps the window in Redis, so that every sidecar process shares
//     one budget per key. A Lua script makes each decision atomic and reads
//     the time from Redis, so processes with skewed clocks agree (Redis 3.2
//     or later).
//   - Local keeps the window in this process, with a bounded number of keys.
//   - Fallback asks Redis and, while Redis cannot be reached, decides with a
//     Local limiter instead, returning to Redis once it answers again.
//
// # Why a log of hits, not two counters
//
// A sliding-window counter keeps two fixed buckets per key (this window's
// count and the last one's) and estimates the rolling count by weighting
// the previous bucket by how much of it still overlaps the window. It costs
// O(1) memory per key, but it assumes hits were spread evenly over the
// previous bucket: a burst at the end of one bucket is under-counted just
// after the boundary, and a client can get up to about twice the limit in
// one true window. The limits here are small (tens to a few hundred hits a
// minute), so this package keeps the exact log instead: one sorted-set
// entry (Redis) or one int64 (Local) per accepted hit inside the window.
// That is at most limit entries per key (a few kilobytes in Redis for a
// limit of 120, held in Redis' compact listpack encoding below 128
// entries), each decision costs O(log n) in Redis, and the answer is exact:
// a hit is allowed iff fewer than limit hits were accepted in the last
// window. Denied hits are not recorded, so a client that keeps sending is
// allowed again as soon as its oldest accepted hit leaves the window, and
// RetryAfter says exactly when that is. MaxLimit bounds the log's length.
package ratelimit
