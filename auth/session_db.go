package auth

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"
	"unicode/utf8"
)

// maxSessionKeyChars is the length of AbstractBaseSession.session_key
// (varchar(40)); Django's own keys are 32 characters of [a-z0-9].
const maxSessionKeyChars = 40

// dbSessions is django.contrib.sessions.backends.db: the cookie is the key
// of a django_session row, which must exist with expire_date > now; its
// session_data is signed with SECRET_KEY (see sessionDataCodec).
//
// It also serves cached_db, as Django reads it: the cache first (when
// session_cache is configured), the row when the cache has no copy. A
// cache that cannot be read or holds a value that does not decode also
// falls back to the row, as Django >= 5.1 does; the database is
// authoritative (a save writes the row before the cache, a logout deletes
// both). Without session_cache, cached_db reads the row only, which gives
// the same verdicts except for a row deleted behind Django's back (by SQL,
// not by a logout) while its cached copy lives.
type dbSessions struct {
	rows       sessionRows
	cached     *sessionCacheReader // cached_db's cache half; nil for db or without session_cache
	codec      *sessionDataCodec
	backends   []string
	recheckTTL time.Duration
	cache      *rowCache[[sha256.Size]byte, sessionRecord] // by hashed key: no credential kept
}

func newDBSessions(cfg *Config, rows sessionRows) (*dbSessions, error) {
	codec, err := newSessionDataCodec(cfg.SecretKey, cfg.SecretKeyFallbacks, cfg.Database.SessionStoreClass)
	if err != nil {
		return nil, err
	}
	e := &dbSessions{
		rows:       rows,
		codec:      codec,
		backends:   append([]string(nil), cfg.AuthenticationBackends...),
		recheckTTL: cfg.RecheckCacheTTL,
		cache:      newRowCache[[sha256.Size]byte, sessionRecord](cfg.Database.CacheSize),
	}
	if cfg.SessionEngine == EngineCachedDB && cfg.sessionCacheConfigured() {
		if e.cached, err = newSessionCacheReader(&cfg.SessionCache, CachedDBSessionKeyPrefix, e.backends); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// close drops the cache connections; the Authenticator closes the
// database.
func (e *dbSessions) close() error {
	if e.cached == nil {
		return nil
	}
	return e.cached.close()
}

// fromCache reads cached_db's cached copy. It answers false when the row
// must be read instead: no cache, no copy, or a copy that cannot be read.
func (e *dbSessions) fromCache(ctx context.Context, key string, now time.Time) (*Identity, bool, error) {
	if e.cached == nil {
		return nil, false, nil
	}
	id, err := e.cached.read(ctx, key, now)
	if f, ok := err.(*Failure); ok {
		switch f.Reason {
		case ReasonSessionNotFound, ReasonSessionStoreUnavailable, ReasonSessionMalformed:
			return nil, false, nil
		}
	}
	return id, true, err
}

// identify reads the row of key afresh (a new socket must see the current
// state) and keeps it for the re-checks that follow.
func (e *dbSessions) identify(ctx context.Context, key string, now time.Time) (*Identity, error) {
	if err := checkSessionKey(key); err != nil {
		return nil, err
	}
	if id, ok, err := e.fromCache(ctx, key, now); ok {
		return id, err
	}
	rec, err := e.rows.session(ctx, key)
	if err != nil {
		return nil, refuseErr(ReasonSessionStoreUnavailable, err)
	}
	e.cache.put(credentialHash(key), rec, now)
	return e.judge(key, rec, now)
}

// revalidate checks that the session still exists, is unexpired and names
// the same user, backend and auth hash. Other changes to the data are
// normal: Django re-saves a session (new signature, application keys) on
// ordinary requests. The row may be up to recheck_cache_ttl old; cached_db's
// cached copy is read afresh.
func (e *dbSessions) revalidate(ctx context.Context, id *Identity, now time.Time) error {
	key := id.sessionKey
	if key == "" {
		return refuse(ReasonSessionNoUser, "identity has no stored session")
	}
	if cur, ok, err := e.fromCache(ctx, key, now); ok {
		return sameSession(id, cur, err)
	}
	hashed := credentialHash(key)
	rec, ok := e.cache.get(hashed, e.recheckTTL, now)
	if !ok {
		var err error
		if rec, err = e.rows.session(ctx, key); err != nil {
			return refuseErr(ReasonSessionStoreUnavailable, err)
		}
		e.cache.put(hashed, rec, now)
	}
	cur, err := e.judge(key, rec, now)
	return sameSession(id, cur, err)
}

// judge applies Django's load: the row must exist and satisfy
// expire_date > now, and its data must decode to a logged-in session.
func (e *dbSessions) judge(key string, rec sessionRecord, now time.Time) (*Identity, error) {
	if !rec.found {
		return nil, refuse(ReasonSessionNotFound, "no stored session with this key")
	}
	if rec.expiredAt(now) {
		return nil, refuse(ReasonSessionExpired, "expire_date has passed")
	}
	text, err := e.codec.decode(rec.data)
	if err != nil {
		return nil, err
	}
	id, err := sessionIdentityFromJSON(text, e.backends)
	if err != nil {
		return nil, err
	}
	id.Expires = rec.expires
	id.sessionKey = key
	return id, nil
}

// checkSessionKey applies SessionBase's rule (a key shorter than 8
// characters is no session) and drops keys that no row can have, before
// they cost a query.
func checkSessionKey(key string) error {
	n := utf8.RuneCountInString(key)
	if n < minSessionKeyChars {
		return refuse(ReasonSessionMalformed, "cookie too short to be a session key")
	}
	if n > maxSessionKeyChars || strings.IndexByte(key, 0) >= 0 || !utf8.ValidString(key) {
		return refuse(ReasonSessionNotFound, "no stored session can have this key")
	}
	return nil
}
