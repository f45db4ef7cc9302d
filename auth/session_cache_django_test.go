package auth

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests let the real Django write sessions through its real cache
// backend into a real redis-server (django-redis on Debian 12's Django
// 3.2, Django's own RedisCache on Django 5.2), then read them with the
// cache engine.

// cacheCase is one Django cache configuration and its sidecar mirror.
type cacheCase struct {
	name   string
	django map[string]any // CACHES[alias]
	mirror SessionCacheConfig
}

func cacheCases(st testenv.PyStack, rd *testenv.Redis) []cacheCase {
	loc := func(db int) string { return fmt.Sprintf("redis://%s/%d", rd.Addr(), db) }
	three := 3
	if st.Name == testenv.StackDebian12 {
		return []cacheCase{
			{"django-redis defaults",
				map[string]any{"BACKEND": CacheBackendDjangoRedis, "LOCATION": loc(1)},
				SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{loc(1)}}},
			{"django-redis prefix, version and zlib",
				map[string]any{"BACKEND": CacheBackendDjangoRedis, "LOCATION": loc(2), "KEY_PREFIX": "myapp", "VERSION": 3,
					"OPTIONS": map[string]any{"COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor"}},
				SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{loc(2)}, KeyPrefix: "myapp", Version: &three,
					Options: SessionCacheOptions{Compressor: "django_redis.compressors.zlib.ZlibCompressor"}}},
			{"django-redis JSON",
				map[string]any{"BACKEND": CacheBackendDjangoRedis, "LOCATION": loc(3),
					"OPTIONS": map[string]any{"SERIALIZER": "django_redis.serializers.json.JSONSerializer"}},
				SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{loc(3)},
					Options: SessionCacheOptions{Serializer: "django_redis.serializers.json.JSONSerializer"}}},
			{"django-redis msgpack",
				map[string]any{"BACKEND": CacheBackendDjangoRedis, "LOCATION": loc(4),
					"OPTIONS": map[string]any{"SERIALIZER": "django_redis.serializers.msgpack.MSGPackSerializer"}},
				SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{loc(4)},
					Options: SessionCacheOptions{Serializer: "msgpack"}}},
			{"django-redis pickle protocol 2",
				map[string]any{"BACKEND": CacheBackendDjangoRedis, "LOCATION": loc(5), "OPTIONS": map[string]any{"PICKLE_VERSION": 2}},
				SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{loc(5)}}},
		}
	}
	return []cacheCase{
		{"Django RedisCache defaults",
			map[string]any{"BACKEND": CacheBackendDjango, "LOCATION": loc(1)},
			SessionCacheConfig{Backend: CacheBackendDjango, Location: CacheLocation{loc(1)}}},
		{"Django RedisCache prefix and version, two locations",
			map[string]any{"BACKEND": CacheBackendDjango, "LOCATION": []string{loc(2)}, "KEY_PREFIX": "myapp", "VERSION": 3},
			SessionCacheConfig{Backend: CacheBackendDjango, Location: CacheLocation{loc(2), loc(9)}, KeyPrefix: "myapp", Version: &three}},
	}
}

func TestDjangoCacheSessions(t *testing.T) {
	for _, st := range testenv.PythonStacks(t, "django", "redis") {
		t.Run(st.Name, func(t *testing.T) {
			if st.Name == testenv.StackDebian12 {
				testenv.RequirePython(t, "django_redis", "msgpack")
			}
			rd := testenv.StartRedis(t)
			cases := cacheCases(st, rd)
			caches := map[string]any{"default": map[string]any{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
			for i, c := range cases {
				caches[fmt.Sprintf("c%d", i)] = c.django
			}
			peer := startSessionPeer(t, st, map[string]any{
				"mode": "inline", "secret_key": compatSecret, "caches": caches,
				"db_path": filepath.Join(t.TempDir(), "db.sqlite3"),
			})
			t.Logf("%s stack: %v", st.Name, peer.versions)
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					testDjangoCacheCase(t, peer, fmt.Sprintf("c%d", i), c)
				})
			}
		})
	}
}

func testDjangoCacheCase(t *testing.T, peer *sessionPeer, alias string, c cacheCase) {
	ctx := context.Background()
	engine := func(mutate func(*SessionCacheConfig)) *cacheSessions {
		cfg := Config{SecretKey: compatSecret, SessionEngine: EngineCache, DisableJWT: true, SessionCache: c.mirror}
		if v := c.mirror.Version; v != nil {
			vv := *v
			cfg.SessionCache.Version = &vv
		}
		if mutate != nil {
			mutate(&cfg.SessionCache)
		}
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		e, err := newCacheSessions(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.close() })
		return e
	}
	e := engine(nil)
	opts := map[string]any{"cache_alias": alias}
	withExpiry := map[string]any{"cache_alias": alias, "expiry": 3600}

	for _, login := range []struct {
		name    string
		extra   map[string]any
		expires time.Duration
	}{
		{"default age", opts, DefaultSessionCookieAge * time.Second},
		{"set_expiry with a date", withExpiry, time.Hour},
	} {
		if login.extra["expiry"] != nil && c.mirror.Options.Serializer == "msgpack" {
			continue // msgpack cannot store Django 3.2's datetime _session_expiry
		}
		now := time.Now()
		s := peer.login("alice", login.extra)
		if want := cacheRedisKey(e.reader.keyPrefix, e.reader.version, CacheSessionKeyPrefix, s.SessionKey); s.RedisKey != want {
			t.Fatalf("Django's Redis key %q, the sidecar's %q", s.RedisKey, want)
		}
		id, err := e.identify(ctx, s.SessionKey, now)
		if err != nil {
			t.Fatalf("%s: %v", login.name, err)
		}
		if id.UserID != s.UserID || id.Backend != DefaultAuthBackend || len(id.SessionAuthHash) != 64 {
			t.Errorf("%s: identity %+v, Django logged in user %s", login.name, id, s.UserID)
		}
		if d := id.Expires.Sub(now); d < login.expires-time.Minute || d > login.expires+time.Second {
			t.Errorf("%s: expires in %s, want about %s", login.name, d, login.expires)
		}
		if err := e.revalidate(ctx, id, now); err != nil {
			t.Fatalf("%s: re-check: %v", login.name, err)
		}

		// Another key prefix or version: not the same cache entry.
		for what, mutate := range map[string]func(*SessionCacheConfig){
			"prefix":  func(sc *SessionCacheConfig) { sc.KeyPrefix += "x" },
			"version": func(sc *SessionCacheConfig) { v := 7; sc.Version = &v },
		} {
			if _, err := engine(mutate).identify(ctx, s.SessionKey, now); err == nil {
				t.Fatalf("found the session with another %s", what)
			} else {
				wantReason(t, err, ReasonSessionNotFound)
			}
		}

		// Django logs the user out: the key is deleted.
		peer.logout(s.SessionKey, opts)
		wantReason(t, e.revalidate(ctx, id, now.Add(DefaultRecheckCacheTTL)), ReasonSessionNotFound)
		_, err = e.identify(ctx, s.SessionKey, now)
		wantReason(t, err, ReasonSessionNotFound)
	}

	// cached_db keeps its copy under its own prefix; the cache reader
	// finds it there (the database half is another engine's).
	s := peer.login("bob", map[string]any{"cache_alias": alias, "engine": "django.contrib.sessions.backends.cached_db"})
	if want := cacheRedisKey(e.reader.keyPrefix, e.reader.version, CachedDBSessionKeyPrefix, s.SessionKey); s.RedisKey != want {
		t.Fatalf("cached_db Redis key %q, want %q", s.RedisKey, want)
	}
	cfg := c.mirror
	cfg.SetDefaults()
	r, err := newSessionCacheReader(&cfg, CachedDBSessionKeyPrefix, []string{DefaultAuthBackend})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	id, err := r.read(ctx, s.SessionKey, time.Now())
	if err != nil || id.UserID != s.UserID {
		t.Fatalf("cached_db copy: %+v %v", id, err)
	}
	_, err = e.identify(ctx, s.SessionKey, time.Now())
	wantReason(t, err, ReasonSessionNotFound) // not under the cache engine's prefix
}
