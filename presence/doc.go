// Package presence keeps which users are online in which group, across
// every sidecar process, in Redis.
//
// A user is online in a group while at least one of their connections
// (browser tabs) is. Join reports whether a connection is the user's
// first in the group and Leave whether it was the last, so that "online"
// and "offline" are announced once per user, not once per tab. Each
// process refreshes its own connections with Heartbeat; a process that
// crashes stops refreshing, and Sweep, run by any process, removes its
// connections once they expire and reports each user whose last
// connection went, exactly once across all sweepers. Run does both on a
// timer.
//
// # Redis keys
//
// With the default prefix "sidecar:presence:" (P below):
//
//	P conns          sorted set: one member per connection, scored by its
//	                 expiry deadline (Redis time, Unix milliseconds)
//	P users:<group>  hash: user id -> number of live connections in group
//	P info:<group>   hash: user id -> JSON object given by the user's most
//	                 recent Join in group
//
// A connection member is "<len(group)>:<group><len(user)>:<user><conn>",
// lengths in decimal bytes, so that any bytes may appear in ids; <conn> is
// the process's random instance id, "/", and the caller's connection id,
// so that connection ids need only be unique within one process.
//
// Every change that touches more than one key is one Lua script, and every
// deadline is computed from Redis' TIME, so processes with skewed clocks
// agree on what has expired. The keys also expire three TTLs after the
// last write, so that presence left behind when every process is gone
// does not stay in Redis. Scripts name keys that they derive from a
// member, so the keys must live on one Redis server (no Redis Cluster);
// Redis 3.2 or later.
//
// Online reads the hashes, so a crashed process's users stay listed until
// the next Sweep (at most TTL plus one heartbeat interval with Run).
package presence
