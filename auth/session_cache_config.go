package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Cache backends (Django's CACHES[...]["BACKEND"]) whose sessions the
// sidecar reads from Redis.
const (
	// CacheBackendDjangoRedis is django-redis.
	CacheBackendDjangoRedis = "django_redis.cache.RedisCache"
	// CacheBackendDjango is Django's own Redis cache (Django >= 4.0).
	CacheBackendDjango = "django.core.cache.backends.redis.RedisCache"
)

// defaultKeyFunction is the only KEY_FUNCTION supported: Django's default,
// "<key_prefix>:<version>:<key>".
const defaultKeyFunction = "django.core.cache.backends.base.default_key_func"

// Defaults of the session cache section.
const (
	DefaultSessionCacheTimeout = 2 * time.Second
	DefaultSessionCachePool    = 16
)

// SessionCacheConfig mirrors the Django cache that holds sessions,
// CACHES[SESSION_CACHE_ALIAS], for the cache engine (and the cache half of
// cached_db). Keys are Django's names in snake case.
type SessionCacheConfig struct {
	// Backend is BACKEND: "django_redis.cache.RedisCache" or
	// "django.core.cache.backends.redis.RedisCache". Required; other
	// caches (memcached, locmem, file, database) are not readable from
	// here: use session_callback for them.
	Backend string `yaml:"backend"`
	// Location is LOCATION: a redis://, rediss:// or unix:// URL, or
	// several (a list, or one string split on ',' and ';' as Django
	// does). Django writes to the first and may read from the others; the
	// sidecar reads from the first, so that it sees a logout at once.
	Location CacheLocation `yaml:"location"`
	// KeyPrefix is KEY_PREFIX. Default "".
	KeyPrefix string `yaml:"key_prefix"`
	// Version is VERSION. Default 1.
	Version *int `yaml:"version"`
	// KeyFunction is KEY_FUNCTION; only Django's default
	// ("django.core.cache.backends.base.default_key_func", or empty) is
	// supported.
	KeyFunction string `yaml:"key_function"`
	// Options holds the OPTIONS that change how values are stored or
	// reached.
	Options SessionCacheOptions `yaml:"options"`
	// Timeout bounds one read from Redis. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is the number of Redis connections kept. Default 16.
	PoolSize int `yaml:"pool_size"`
}

// SessionCacheOptions mirrors the cache's OPTIONS dict.
type SessionCacheOptions struct {
	// Serializer is SERIALIZER (django-redis) or serializer (Django):
	// "pickle" (default; django_redis.serializers.pickle.PickleSerializer
	// or django.core.cache.backends.redis.RedisSerializer), "json"
	// (django_redis.serializers.json.JSONSerializer) or "msgpack"
	// (django_redis.serializers.msgpack.MSGPackSerializer). The dotted
	// class paths are accepted as they are written in settings.py.
	Serializer string `yaml:"serializer"`
	// Compressor is django-redis' COMPRESSOR: "identity" (default),
	// "zlib", "gzip" or "zstd", or their django_redis.compressors.* class
	// paths. lzma and lz4 are not supported.
	Compressor string `yaml:"compressor"`
	// Username is the Redis ACL user, when not in the URL.
	Username string `yaml:"username"`
	// Password is PASSWORD (django-redis) or password (Django), when not
	// in the URL.
	Password string `yaml:"password"`
	// DB is the Redis database number, when not in the URL.
	DB *int `yaml:"db"`
}

// CacheLocation is one or more Redis URLs. In YAML it is a string (split
// on ',' and ';' as Django splits LOCATION) or a list of strings.
type CacheLocation []string

// UnmarshalYAML accepts a string or a list of strings.
func (l *CacheLocation) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = nil
		for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
			if part = strings.TrimSpace(part); part != "" {
				*l = append(*l, part)
			}
		}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*l = list
		return nil
	}
	return fmt.Errorf("line %d: location must be a URL or a list of URLs", n.Line)
}

// Serializers and compressors, by their short names.
const (
	cacheSerializerPickle  = "pickle"
	cacheSerializerJSON    = "json"
	cacheSerializerMsgpack = "msgpack"

	cacheCompressorIdentity = "identity"
	cacheCompressorZlib     = "zlib"
	cacheCompressorGzip     = "gzip"
	cacheCompressorZstd     = "zstd"
)

// serializerAliases maps the class paths of settings.py to short names.
var serializerAliases = map[string]string{
	"django_redis.serializers.pickle.PickleSerializer":   cacheSerializerPickle,
	"django.core.cache.backends.redis.RedisSerializer":   cacheSerializerPickle,
	"django_redis.serializers.json.JSONSerializer":       cacheSerializerJSON,
	"django_redis.serializers.msgpack.MSGPackSerializer": cacheSerializerMsgpack,
}

// compressorAliases maps django-redis' compressor classes to short names.
var compressorAliases = map[string]string{
	"django_redis.compressors.identity.IdentityCompressor": cacheCompressorIdentity,
	"django_redis.compressors.zlib.ZlibCompressor":         cacheCompressorZlib,
	"django_redis.compressors.gzip.GzipCompressor":         cacheCompressorGzip,
	"django_redis.compressors.zstd.ZStdCompressor":         cacheCompressorZstd,
	"none": cacheCompressorIdentity,
}

// SetDefaults fills zero values; Backend and Location have no default.
func (c *SessionCacheConfig) SetDefaults() {
	if c.Version == nil {
		v := 1
		c.Version = &v
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultSessionCacheTimeout
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultSessionCachePool
	}
	o := &c.Options
	if o.Serializer == "" {
		o.Serializer = cacheSerializerPickle
	} else if s, ok := serializerAliases[o.Serializer]; ok {
		o.Serializer = s
	}
	if o.Compressor == "" {
		o.Compressor = cacheCompressorIdentity
	} else if s, ok := compressorAliases[o.Compressor]; ok {
		o.Compressor = s
	}
}

// Validate reports every setting that cannot work, prefixed with
// "session_cache.". It expects SetDefaults to have run.
func (c *SessionCacheConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("session_cache."+format, args...))
	}
	switch c.Backend {
	case CacheBackendDjangoRedis, CacheBackendDjango:
	case "":
		bad("backend is required: %s or %s, as in CACHES[SESSION_CACHE_ALIAS][\"BACKEND\"]", CacheBackendDjangoRedis, CacheBackendDjango)
	default:
		bad("backend %q cannot be read by the sidecar (supported: %s, %s); use session_callback for other caches", c.Backend, CacheBackendDjangoRedis, CacheBackendDjango)
	}
	if len(c.Location) == 0 {
		bad("location is required: the Redis URL of CACHES[SESSION_CACHE_ALIAS][\"LOCATION\"]")
	}
	for i, loc := range c.Location {
		if err := checkRedisURL(loc); err != nil {
			bad("location[%d]: %v", i, err)
		}
	}
	if c.KeyFunction != "" && c.KeyFunction != defaultKeyFunction {
		bad("key_function %q is not supported: only Django's default key function (%s) can be reproduced; use session_callback", c.KeyFunction, defaultKeyFunction)
	}
	if strings.ContainsAny(c.KeyPrefix, "\r\n") {
		bad("key_prefix must not contain line breaks")
	}
	switch o := c.Options; o.Serializer {
	case cacheSerializerPickle:
	case cacheSerializerJSON, cacheSerializerMsgpack:
		if c.Backend == CacheBackendDjango {
			bad("options.serializer %q is a django-redis serializer; Django's RedisCache pickles", o.Serializer)
		}
	default:
		bad("options.serializer %q is not supported (supported: pickle, json, msgpack)", o.Serializer)
	}
	switch o := c.Options; o.Compressor {
	case cacheCompressorIdentity:
	case cacheCompressorZlib, cacheCompressorGzip, cacheCompressorZstd:
		if c.Backend == CacheBackendDjango {
			bad("options.compressor is a django-redis option; Django's RedisCache does not compress")
		}
	default:
		bad("options.compressor %q is not supported (supported: identity, zlib, gzip, zstd); for lzma or lz4 let Django check sessions through session_callback", o.Compressor)
	}
	if c.Options.DB != nil && *c.Options.DB < 0 {
		bad("options.db must not be negative")
	}
	if c.Timeout < 0 {
		bad("timeout must not be negative")
	}
	if c.PoolSize < 0 {
		bad("pool_size must not be negative")
	}
	return errors.Join(errs...)
}

// checkRedisURL accepts the URL schemes that both Django's and
// django-redis' connection pools take.
func checkRedisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("%s URL without a host", u.Scheme)
		}
	case "unix":
		if u.Path == "" {
			return errors.New("unix URL without a socket path")
		}
	default:
		return fmt.Errorf("scheme %q is not supported (redis://, rediss://, unix://)", u.Scheme)
	}
	return nil
}

// redacted returns a copy with the password masked.
func (c SessionCacheConfig) redacted() SessionCacheConfig {
	if c.Options.Password != "" {
		c.Options.Password = "[redacted]"
	}
	if c.Location != nil {
		locs := make(CacheLocation, len(c.Location))
		for i, l := range c.Location {
			if u, err := url.Parse(l); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), "redacted")
				}
				l = u.String()
			}
			locs[i] = l
		}
		c.Location = locs
	}
	return c
}
