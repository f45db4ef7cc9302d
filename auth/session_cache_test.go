package auth

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
	"go.yaml.in/yaml/v3"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// zlibSessionP4 is django-redis' ZlibCompressor output for sessionP4
// (vector "django_redis_zlib", Django 3.2 and django-redis 5.2).
const zlibSessionP4 = "789c4d8c4b0ac2301445459c8ae02a7412f26bd2ccc4b96b282f7da96d9504da6628b8800ce33e5ca28a0abdc3730ef7be7a3c17dfddf22ead2b88535bc5d10d5587392d25cf693b8316ea8bf36fb3c71efc39903af869e82cf924e46747720ae8aec77fbb991db430b6391dc0528a856a4a2a41374a20181046aba296a8504b6b1d37c26a2364830ca1e48c63a93447ca84623a47f20224ac3f10"

const vecSessionHash = "ab00d56f804a7f63da9a39765c4d6d74bbe293b7934fd1da8212d8672d013617"

func TestCacheRedisKey(t *testing.T) {
	// Keys as the real django-redis wrote them (cache_sessions vectors).
	cases := []struct {
		prefix  string
		version int
		engine  string
		key     string
		want    string
	}{
		{"", 1, CacheSessionKeyPrefix, "tji68yc9mstj4v59ain9n0hq6hmrulyg", ":1:django.contrib.sessions.cachetji68yc9mstj4v59ain9n0hq6hmrulyg"},
		{"myapp", 3, CacheSessionKeyPrefix, "frs2diik9apfpv0zq2uwieo8dqsyjmn3", "myapp:3:django.contrib.sessions.cachefrs2diik9apfpv0zq2uwieo8dqsyjmn3"},
		{"", 1, CachedDBSessionKeyPrefix, "t08z8x4mjl2dd1zhrmcvmc76gumjsgxh", ":1:django.contrib.sessions.cached_dbt08z8x4mjl2dd1zhrmcvmc76gumjsgxh"},
		{"a:b", -2, CacheSessionKeyPrefix, "k", "a:b:-2:django.contrib.sessions.cachek"},
	}
	for _, c := range cases {
		if got := cacheRedisKey(c.prefix, c.version, c.engine, c.key); got != c.want {
			t.Errorf("cacheRedisKey(%q, %d, %q) = %q, want %q", c.prefix, c.version, c.key, got, c.want)
		}
	}
}

func validCacheConfig() SessionCacheConfig {
	return SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{"redis://127.0.0.1:6379/1"}}
}

func TestSessionCacheConfigDefaults(t *testing.T) {
	c := validCacheConfig()
	c.Options.Serializer = "django_redis.serializers.json.JSONSerializer"
	c.Options.Compressor = "django_redis.compressors.zlib.ZlibCompressor"
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if *c.Version != 1 || c.Timeout != DefaultSessionCacheTimeout || c.PoolSize != DefaultSessionCachePool ||
		c.Options.Serializer != "json" || c.Options.Compressor != "zlib" {
		t.Errorf("defaults: %+v", c)
	}
	d := validCacheConfig()
	d.SetDefaults()
	if d.Options.Serializer != "pickle" || d.Options.Compressor != "identity" {
		t.Errorf("default options: %+v", d.Options)
	}
	zero := 0
	d.Version = &zero
	d.SetDefaults()
	if *d.Version != 0 {
		t.Error("an explicit version 0 was replaced")
	}
}

func TestSessionCacheConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*SessionCacheConfig)
		want   string
	}{
		{"memcached", func(c *SessionCacheConfig) { c.Backend = "django.core.cache.backends.memcached.PyMemcacheCache" }, "use session_callback"},
		{"no backend", func(c *SessionCacheConfig) { c.Backend = "" }, "backend is required"},
		{"no location", func(c *SessionCacheConfig) { c.Location = nil }, "location is required"},
		{"memcached URL", func(c *SessionCacheConfig) { c.Location = CacheLocation{"127.0.0.1:11211"} }, "location[0]"},
		{"http URL", func(c *SessionCacheConfig) { c.Location = CacheLocation{"http://127.0.0.1:6379"} }, `scheme "http" is not supported`},
		{"custom key function", func(c *SessionCacheConfig) { c.KeyFunction = "myapp.cache.make_key" }, "key_function \"myapp.cache.make_key\" is not supported"},
		{"lzma", func(c *SessionCacheConfig) { c.Options.Compressor = "django_redis.compressors.lzma.LzmaCompressor" }, "compressor \"django_redis.compressors.lzma.LzmaCompressor\" is not supported"},
		{"lz4", func(c *SessionCacheConfig) { c.Options.Compressor = "lz4" }, `compressor "lz4" is not supported`},
		{"unknown serializer", func(c *SessionCacheConfig) { c.Options.Serializer = "myapp.Serializer" }, `serializer "myapp.Serializer" is not supported`},
		{"json with Django's cache", func(c *SessionCacheConfig) {
			c.Backend = CacheBackendDjango
			c.Options.Serializer = "json"
		}, "Django's RedisCache pickles"},
		{"zlib with Django's cache", func(c *SessionCacheConfig) {
			c.Backend = CacheBackendDjango
			c.Options.Compressor = "zlib"
		}, "does not compress"},
	}
	for _, tc := range cases {
		c := validCacheConfig()
		tc.mutate(&c)
		c.SetDefaults()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	ok := validCacheConfig()
	ok.KeyFunction = defaultKeyFunction
	ok.SetDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("Django's own key function: %v", err)
	}
}

func TestCacheLocationYAML(t *testing.T) {
	for src, want := range map[string][]string{
		`location: redis://a:6379/1`:                    {"redis://a:6379/1"},
		`location: "redis://a:6379/1,redis://b:6379/1"`: {"redis://a:6379/1", "redis://b:6379/1"},
		`location: "redis://a/1; redis://b/1"`:          {"redis://a/1", "redis://b/1"},
		`location: [redis://a/1, redis://b/1]`:          {"redis://a/1", "redis://b/1"},
	} {
		var c SessionCacheConfig
		if err := yaml.Unmarshal([]byte(src), &c); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if strings.Join(c.Location, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %q", src, c.Location)
		}
	}
	var c SessionCacheConfig
	if err := yaml.Unmarshal([]byte("location: {a: b}"), &c); err == nil {
		t.Error("a mapping was accepted as a location")
	}
}

func TestSessionCacheRedacted(t *testing.T) {
	c := validCacheConfig()
	c.Location = CacheLocation{"redis://user:hunter2@127.0.0.1:6379/1"}
	c.Options.Password = "s3cret"
	r := c.redacted()
	out, _ := yaml.Marshal(r)
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "s3cret") {
		t.Errorf("redacted: %s", out)
	}
	if c.Location[0] != "redis://user:hunter2@127.0.0.1:6379/1" {
		t.Error("redacted changed the original")
	}
}

func testCodec(t *testing.T, serializer, compressor string) *sessionCodec {
	t.Helper()
	c, err := newSessionCodec(&SessionCacheOptions{Serializer: serializer, Compressor: compressor})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func compressWith(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch name {
	case "zlib":
		w := zlib.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case "zstd":
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil)
	}
	return buf.Bytes()
}

func wantAuthFields(t *testing.T, fields map[string]json.RawMessage, userID string) {
	t.Helper()
	id, err := sessionIdentity(fields, []string{DefaultAuthBackend})
	if err != nil {
		t.Fatalf("identity: %v (fields %s)", err, fields)
	}
	if id.UserID != userID || id.Backend != DefaultAuthBackend || id.SessionAuthHash != vecSessionHash {
		t.Errorf("identity %+v", id)
	}
}

func TestSessionCodec(t *testing.T) {
	p4 := unhex(t, sessionP4)
	// The value django-redis' ZlibCompressor wrote.
	fields, err := testCodec(t, "pickle", "zlib").decode(unhex(t, zlibSessionP4))
	if err != nil {
		t.Fatal(err)
	}
	wantAuthFields(t, fields, "42")
	for _, comp := range []string{"identity", "zlib", "gzip", "zstd"} {
		codec := testCodec(t, "pickle", comp)
		// Uncompressed values (shorter than min_length, or written before
		// the compressor was configured) are read as they are.
		for name, v := range map[string][]byte{"compressed": compressWith(t, comp, p4), "raw": p4} {
			if comp == "identity" && name == "compressed" {
				continue
			}
			fields, err := codec.decode(v)
			if err != nil {
				t.Fatalf("%s %s: %v", comp, name, err)
			}
			wantAuthFields(t, fields, "42")
		}
	}
	// An int is never a session (both backends store ints as digits).
	for _, v := range []string{"42", " -7 ", "1_000"} {
		if _, err := testCodec(t, "pickle", "identity").decode([]byte(v)); err == nil || !strings.Contains(err.Error(), "integer") {
			t.Errorf("%q: %v", v, err)
		}
	}
	// JSON (django-redis' JSONSerializer writes json.dumps(session)).
	js := []byte(`{"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": "` + vecSessionHash + `", "cart": [1]}`)
	fields, err = testCodec(t, "json", "zlib").decode(compressWith(t, "zlib", js))
	if err != nil {
		t.Fatal(err)
	}
	wantAuthFields(t, fields, "42")
	if _, err := testCodec(t, "json", "identity").decode([]byte(`["not", "a", "dict"]`)); err == nil {
		t.Error("a JSON list was taken as a session")
	}
	// msgpack.
	mp, err := msgpack.Marshal(map[string]any{"_auth_user_id": "42", "_auth_user_backend": DefaultAuthBackend, "_auth_user_hash": vecSessionHash})
	if err != nil {
		t.Fatal(err)
	}
	fields, err = testCodec(t, "msgpack", "identity").decode(mp)
	if err != nil {
		t.Fatal(err)
	}
	wantAuthFields(t, fields, "42")
	// A pickle that is not a dict, and one that is not a pickle.
	if _, err := testCodec(t, "pickle", "identity").decode(unhex(t, "80045d942e")); err == nil {
		t.Error("a pickled list was taken as a session")
	}
	if _, err := testCodec(t, "pickle", "zlib").decode([]byte("not a pickle at all")); err == nil {
		t.Error("junk was decoded")
	}
}

func TestSessionCodecInflateBomb(t *testing.T) {
	bomb := bytes.Repeat([]byte{0}, 8<<20)
	for _, comp := range []string{"zlib", "gzip", "zstd"} {
		_, err := testCodec(t, "pickle", comp).decode(compressWith(t, comp, bomb))
		if !errors.Is(err, errCacheValueTooLarge) {
			t.Errorf("%s: %v", comp, err)
		}
	}
}

func TestIsPythonInt(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-12": true, "+3": true, " 42\n": true, "1_000": true,
		"": false, "-": false, "1__0": false, "_1": false, "1_": false, "4 2": false, "0x10": false, "\x80\x04": false,
	} {
		if got := isPythonInt([]byte(s)); got != want {
			t.Errorf("isPythonInt(%q) = %v", s, got)
		}
	}
}

// cacheEngineOn returns a cache engine reading the real redis-server rd.
func cacheEngineOn(t *testing.T, rd *testenv.Redis, mutate func(*Config)) *cacheSessions {
	t.Helper()
	cfg := Config{SecretKey: vecSecret, SessionEngine: EngineCache, DisableJWT: true,
		SessionCache: SessionCacheConfig{Backend: CacheBackendDjangoRedis, Location: CacheLocation{rd.URL()}}}
	if mutate != nil {
		mutate(&cfg)
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

func redisClient(t *testing.T, rd *testenv.Redis) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) || f.Reason != reason {
		t.Fatalf("got %v, want a refusal with reason %s", err, reason)
	}
}

func TestCacheSessionsOnRedis(t *testing.T) {
	rd := testenv.StartRedis(t)
	rc := redisClient(t, rd)
	ctx := context.Background()
	e := cacheEngineOn(t, rd, nil)
	now := time.Now()
	const key = "tji68yc9mstj4v59ain9n0hq6hmrulyg"
	if err := rc.Set(ctx, ":1:"+CacheSessionKeyPrefix+key, unhex(t, sessionP4), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	id, err := e.identify(ctx, key, now)
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "42" || id.Method != MethodSession || id.Backend != DefaultAuthBackend || id.SessionAuthHash != vecSessionHash || id.sessionKey != key {
		t.Errorf("identity %+v", id)
	}
	if d := id.Expires.Sub(now); d <= 59*time.Minute || d > time.Hour {
		t.Errorf("expires in %s, want the key's TTL of 1h", d)
	}
	if err := e.revalidate(ctx, id, now); err != nil {
		t.Fatalf("revalidate: %v", err)
	}

	// Wrong prefix or version: another key, so no session.
	for name, mutate := range map[string]func(*Config){
		"key_prefix": func(c *Config) { c.SessionCache.KeyPrefix = "other" },
		"version":    func(c *Config) { v := 2; c.SessionCache.Version = &v },
	} {
		_, err := cacheEngineOn(t, rd, mutate).identify(ctx, key, now)
		if err == nil {
			t.Fatalf("%s: found the session under another key", name)
		}
		wantReason(t, err, ReasonSessionNotFound)
	}
	_, err = e.identify(ctx, "short", now)
	wantReason(t, err, ReasonSessionMalformed)
	_, err = e.identify(ctx, strings.Repeat("k", maxSessionKeyLen+1), now)
	wantReason(t, err, ReasonSessionMalformed)

	// Logout deletes the key: a re-check within recheck_cache_ttl reuses
	// the last answer, the next one reads Redis again.
	if err := rc.Del(ctx, ":1:"+CacheSessionKeyPrefix+key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.revalidate(ctx, id, now.Add(time.Second)); err != nil {
		t.Fatalf("re-check within recheck_cache_ttl: %v", err)
	}
	wantReason(t, e.revalidate(ctx, id, now.Add(DefaultRecheckCacheTTL)), ReasonSessionNotFound)
	_, err = e.identify(ctx, key, now)
	wantReason(t, err, ReasonSessionNotFound)

	// The same key now holds another user's session (or a changed hash).
	other := bytes.Replace(unhex(t, sessionP4), []byte("\x8c\x0242"), []byte("\x8c\x0243"), 1)
	rc.Set(ctx, ":1:"+CacheSessionKeyPrefix+key, other, time.Hour)
	wantReason(t, e.revalidate(ctx, id, now.Add(2*DefaultRecheckCacheTTL)), ReasonSessionChanged)

	// An anonymous session, a junk value, and a session without an expiry.
	rc.Set(ctx, ":1:"+CacheSessionKeyPrefix+"anonymous0", unhex(t, "80047d942e"), time.Hour)
	_, err = e.identify(ctx, "anonymous0", now)
	wantReason(t, err, ReasonSessionNoUser)
	rc.Set(ctx, ":1:"+CacheSessionKeyPrefix+"junkjunk0", "junk", time.Hour)
	_, err = e.identify(ctx, "junkjunk0", now)
	wantReason(t, err, ReasonSessionMalformed)
	rc.Set(ctx, ":1:"+CacheSessionKeyPrefix+"forever00", unhex(t, sessionP5), 0)
	id, err = e.identify(ctx, "forever00", now)
	if err != nil || !id.Expires.IsZero() {
		t.Errorf("no TTL: %+v %v", id, err)
	}

	// Redis down: refused, never accepted, and not remembered.
	rd.Stop()
	_, err = e.identify(ctx, "forever00", now)
	wantReason(t, err, ReasonSessionStoreUnavailable)
	wantReason(t, e.revalidate(ctx, id, now.Add(time.Hour)), ReasonSessionStoreUnavailable)
	rd.Restart()
	rc.Set(ctx, ":1:"+CacheSessionKeyPrefix+"forever00", unhex(t, sessionP5), 0)
	if err := e.revalidate(ctx, id, now.Add(time.Hour)); err != nil {
		t.Errorf("after Redis came back: %v", err)
	}
}

func TestCacheSessionsThroughAuthenticator(t *testing.T) {
	rd := testenv.StartRedis(t)
	rc := redisClient(t, rd)
	ctx := context.Background()
	zlibbed := unhex(t, zlibSessionP4)
	rc.Set(ctx, "myapp:3:"+CacheSessionKeyPrefix+"9xh1njtofnyemzl07d46ticoqv9urx8m", zlibbed, time.Hour)
	v := 3
	a, err := New(Config{
		SecretKey: vecSecret, SessionEngine: EngineCache, DisableJWT: true,
		SessionCache: SessionCacheConfig{
			Backend: CacheBackendDjangoRedis, Location: CacheLocation{rd.URL()}, KeyPrefix: "myapp", Version: &v,
			Options: SessionCacheOptions{Compressor: "django_redis.compressors.zlib.ZlibCompressor"},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	now := time.Now()
	id, err := a.Authenticate(ctx, Handshake{Cookie: "csrftoken=x; sessionid=9xh1njtofnyemzl07d46ticoqv9urx8m"}, now)
	if err != nil || id.UserID != "42" {
		t.Fatalf("got %+v, %v", id, err)
	}
	if err := a.Revalidate(ctx, id, now); err != nil {
		t.Fatal(err)
	}
	rc.Del(ctx, "myapp:3:"+CacheSessionKeyPrefix+"9xh1njtofnyemzl07d46ticoqv9urx8m")
	err = a.Revalidate(ctx, id, now.Add(DefaultRecheckCacheTTL))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != ReasonSessionNotFound || f.Source != SourceRecheck {
		t.Fatalf("after logout: %v", err)
	}
}
