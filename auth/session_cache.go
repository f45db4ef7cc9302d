package auth

import (
	"context"
	"time"
	"unicode/utf8"
)

// cacheSessions is django.contrib.sessions.backends.cache with a Redis
// cache (django-redis or Django's RedisCache): the cookie holds a random
// key, and the session dict is pickled (or JSON/msgpack) under
// "<key_prefix>:<version>:django.contrib.sessions.cache<key>". Nothing is
// signed; the Redis key's existence is the session's validity, and its
// time to live is the session's expiry. A logout deletes the key.
type cacheSessions struct {
	reader     *sessionCacheReader
	memo       *verdictMemo
	recheckTTL time.Duration
}

// recheckMemoSize bounds the remembered re-check answers (one per open
// session that sent a critical frame within recheck_cache_ttl).
const recheckMemoSize = 100000

func newCacheSessions(cfg *Config) (*cacheSessions, error) {
	r, err := newSessionCacheReader(&cfg.SessionCache, CacheSessionKeyPrefix, cfg.AuthenticationBackends)
	if err != nil {
		return nil, err
	}
	return &cacheSessions{
		reader:     r,
		memo:       newVerdictMemo(recheckMemoSize, cfg.RecheckCacheTTL),
		recheckTTL: cfg.RecheckCacheTTL,
	}, nil
}

func (e *cacheSessions) identify(ctx context.Context, value string, now time.Time) (*Identity, error) {
	// SessionBase._validate_session_key: shorter than 8 characters is no
	// session at all.
	if utf8.RuneCountInString(value) < minSessionKeyChars {
		return nil, refuse(ReasonSessionMalformed, "cookie too short to be a session key")
	}
	return e.reader.read(ctx, value, now)
}

// revalidate reads the session again: it must still exist and name the
// same user, backend and auth hash. Answers are reused for
// recheck_cache_ttl; an unreadable store is never remembered.
func (e *cacheSessions) revalidate(ctx context.Context, id *Identity, now time.Time) error {
	if id.sessionKey == "" {
		return refuse(ReasonSessionNoUser, "identity has no session key")
	}
	key := credentialHash(id.sessionKey)
	if v, ok := e.memo.get(key, now, e.recheckTTL); ok {
		_, err := v.result()
		return sameSession(id, v.id, err)
	}
	cur, err := e.reader.read(ctx, id.sessionKey, now)
	if f, ok := err.(*Failure); ok && f.Reason == ReasonSessionStoreUnavailable {
		return err
	}
	e.memo.put(key, verdictOf(now, cur, err))
	return sameSession(id, cur, err)
}

// sameSession compares the identity a socket connected with to what the
// store holds now.
func sameSession(was, now *Identity, err error) error {
	if err != nil {
		return err
	}
	if now == nil || now.UserID != was.UserID || now.Backend != was.Backend || now.SessionAuthHash != was.SessionAuthHash {
		return refuse(ReasonSessionChanged, "the stored session now names another user or auth hash")
	}
	return nil
}

func (e *cacheSessions) close() error { return e.reader.close() }
