package presence

import "github.com/redis/go-redis/v9"

// luaCommon is prepended to every script: Redis' clock in milliseconds
// (scripts that read TIME and then write need effects replication, the
// default from Redis 5 and asked for explicitly before that),
// and split, which reads group and user back from a connection member
// ("<len>:<group><len>:<user><conn>", see the package doc) and returns nil
// for a member this package did not write.
const luaCommon = `
if redis.replicate_commands then redis.replicate_commands() end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function field(s, from)
  local i = string.find(s, ':', from, true)
  if not i then return nil end
  local n = tonumber(string.sub(s, from, i - 1))
  if not n or n < 0 or i + n > #s then return nil end
  return string.sub(s, i + 1, i + n), i + n + 1
end
local function split(m)
  local g, pos = field(m, 1)
  if not g then return nil end
  local u = field(m, pos)
  if not u then return nil end
  return g, u
end
`

// joinScript adds or refreshes one connection.
// KEYS[1] conns; ARGV: prefix, ttl ms, keep ms (key expiry), member,
// info JSON. Returns 1 if the connection is new and the user's only one
// in its group, else 0.
var joinScript = redis.NewScript(luaCommon + `
local g, u = split(ARGV[4])
if not g then return redis.error_reply('malformed presence member') end
local users = ARGV[1] .. 'users:' .. g
local info = ARGV[1] .. 'info:' .. g
local added = redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[4])
redis.call('HSET', info, u, ARGV[5])
local first = 0
if added == 1 and redis.call('HINCRBY', users, u, 1) == 1 then first = 1 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', users, ARGV[3])
redis.call('PEXPIRE', info, ARGV[3])
return first
`)

// leaveScript removes one connection.
// KEYS[1] conns; ARGV: prefix, member. Returns 1 if it was the user's last
// connection in its group, 0 if not or if it was already gone (swept).
var leaveScript = redis.NewScript(luaCommon + `
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
local g, u = split(ARGV[2])
if not g then return 0 end
local users = ARGV[1] .. 'users:' .. g
if redis.call('HINCRBY', users, u, -1) > 0 then return 0 end
redis.call('HDEL', users, u)
redis.call('HDEL', ARGV[1] .. 'info:' .. g, u)
return 1
`)

// refreshScript pushes the deadlines of connections that still exist.
// KEYS[1] conns; ARGV: prefix, ttl ms, keep ms, member... Returns the
// 1-based positions of the members that are gone (a Redis restart, or a
// sweep after this process stalled), which the caller adds back.
var refreshScript = redis.NewScript(luaCommon + `
local deadline = now_ms() + tonumber(ARGV[2])
local args, missing, groups = {}, {}, {}
for i = 1, #ARGV - 3 do
  local m = ARGV[i + 3]
  if redis.call('ZSCORE', KEYS[1], m) then
    args[#args + 1] = deadline
    args[#args + 1] = m
    local g = split(m)
    if g then groups[g] = true end
  else
    missing[#missing + 1] = i
  end
end
if #args > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(args)) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
for g in pairs(groups) do
  redis.call('PEXPIRE', ARGV[1] .. 'users:' .. g, ARGV[3])
  redis.call('PEXPIRE', ARGV[1] .. 'info:' .. g, ARGV[3])
end
return missing
`)

// sweepScript removes expired connections, at most ARGV[2] of them.
// KEYS[1] conns; ARGV: prefix, batch. Returns {removed, group, user,
// info, group, user, info, ...} with one triple per user whose last
// connection in a group was removed. Since removal and report are one
// script, two sweepers never report the same connection.
var sweepScript = redis.NewScript(luaCommon + `
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {#expired}
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[1], m)
  local g, u = split(m)
  if g then
    local users = ARGV[1] .. 'users:' .. g
    if redis.call('HINCRBY', users, u, -1) <= 0 then
      local infokey = ARGV[1] .. 'info:' .. g
      local info = redis.call('HGET', infokey, u)
      redis.call('HDEL', users, u)
      redis.call('HDEL', infokey, u)
      out[#out + 1] = g
      out[#out + 1] = u
      out[#out + 1] = info or ''
    end
  end
end
return out
`)
