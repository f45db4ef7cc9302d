package auth

import "strconv"

// Django's cache key prefixes of the cache-backed session engines. The
// session key follows with no separator.
const (
	// CacheSessionKeyPrefix is django.contrib.sessions.backends.cache's.
	CacheSessionKeyPrefix = "django.contrib.sessions.cache"
	// CachedDBSessionKeyPrefix is django.contrib.sessions.backends.cached_db's.
	CachedDBSessionKeyPrefix = "django.contrib.sessions.cached_db"
)

// cacheRedisKey is the Redis key of a session: Django's default key
// function, "<key_prefix>:<version>:<cache key>", applied to the engine's
// cache key, "<session prefix><session key>". With Django's defaults that
// is ":1:django.contrib.sessions.cache<session key>".
func cacheRedisKey(keyPrefix string, version int, sessionPrefix, sessionKey string) string {
	return keyPrefix + ":" + strconv.Itoa(version) + ":" + sessionPrefix + sessionKey
}
