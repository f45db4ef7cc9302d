package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxSessionKeyLen bounds a session key read from a cookie: Django makes
// 32-character keys, and nothing longer than this is worth a Redis read.
const maxSessionKeyLen = 1024

// sessionCacheReader reads sessions that a Django cache backend wrote to
// Redis, under one engine's key prefix. The cache engine uses it with
// CacheSessionKeyPrefix; cached_db's cache half uses it with
// CachedDBSessionKeyPrefix before its database fallback.
type sessionCacheReader struct {
	client        *redis.Client
	codec         *sessionCodec
	keyPrefix     string
	version       int
	sessionPrefix string
	timeout       time.Duration
	backends      []string
}

// newSessionCacheReader connects (lazily) to the first location of cfg,
// the primary that Django writes to. cfg must have passed Validate;
// backends is AUTHENTICATION_BACKENDS.
func newSessionCacheReader(cfg *SessionCacheConfig, sessionPrefix string, backends []string) (*sessionCacheReader, error) {
	if len(cfg.Location) == 0 {
		return nil, errors.New("session_cache.location is empty")
	}
	opts, err := redis.ParseURL(cfg.Location[0])
	if err != nil {
		return nil, fmt.Errorf("session_cache.location[0]: %w", err)
	}
	if cfg.Options.Username != "" {
		opts.Username = cfg.Options.Username
	}
	if cfg.Options.Password != "" {
		opts.Password = cfg.Options.Password
	}
	if cfg.Options.DB != nil {
		opts.DB = *cfg.Options.DB
	}
	opts.DialTimeout = cfg.Timeout
	opts.ReadTimeout = cfg.Timeout
	opts.WriteTimeout = cfg.Timeout
	opts.ContextTimeoutEnabled = true
	opts.PoolSize = cfg.PoolSize
	opts.MaxRetries = 1
	opts.DisableIdentity = true
	codec, err := newSessionCodec(&cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("session_cache.options: %w", err)
	}
	version := 1
	if cfg.Version != nil {
		version = *cfg.Version
	}
	return &sessionCacheReader{
		client:        redis.NewClient(opts),
		codec:         codec,
		keyPrefix:     cfg.KeyPrefix,
		version:       version,
		sessionPrefix: sessionPrefix,
		timeout:       cfg.Timeout,
		backends:      append([]string(nil), backends...),
	}, nil
}

// redisKey is where Django keeps the session.
func (r *sessionCacheReader) redisKey(sessionKey string) string {
	return cacheRedisKey(r.keyPrefix, r.version, r.sessionPrefix, sessionKey)
}

// read returns the identity stored under sessionKey, with Expires set
// from the key's time to live (zero when it has none). A refusal is a
// *Failure: ReasonSessionNotFound when the key is absent (so a cached_db
// caller knows to ask the database), ReasonSessionStoreUnavailable when
// Redis cannot be read, ReasonSessionMalformed for a value that is not a
// session, and the reasons of sessionIdentity for a session without a
// usable user.
func (r *sessionCacheReader) read(ctx context.Context, sessionKey string, now time.Time) (*Identity, error) {
	if len(sessionKey) > maxSessionKeyLen {
		return nil, refuse(ReasonSessionMalformed, "session key too long")
	}
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	key := r.redisKey(sessionKey)
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		pttl = p.PTTL(ctx, key)
		return nil
	})
	if errors.Is(get.Err(), redis.Nil) {
		return nil, refuse(ReasonSessionNotFound, "no such session in the cache (logged out, expired or evicted)")
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, refuseErr(ReasonSessionStoreUnavailable, fmt.Errorf("read session from redis: %w", err))
	}
	raw, err := get.Bytes()
	if err != nil {
		return nil, refuseErr(ReasonSessionStoreUnavailable, fmt.Errorf("read session from redis: %w", err))
	}
	fields, err := r.codec.decode(raw)
	if err != nil {
		return nil, refuseErr(ReasonSessionMalformed, fmt.Errorf("cached session: %w", err))
	}
	id, err := sessionIdentity(fields, r.backends)
	if err != nil {
		return nil, err
	}
	// PTTL is -1 without an expiry and -2 if the key just went away.
	if ttl := pttl.Val(); pttl.Err() == nil && ttl > 0 {
		id.Expires = now.Add(ttl)
	}
	id.sessionKey = sessionKey
	return id, nil
}

// close drops the connections.
func (r *sessionCacheReader) close() error {
	r.codec.close()
	return r.client.Close()
}
