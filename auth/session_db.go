package auth

import (
	"context"
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
// It also serves cached_db. Django keeps the database authoritative for
// that engine (a save writes the row before the cache, a logout deletes
// both, a cache miss falls back to the row), so reading the row gives
// Django's verdict; the cache would only save a query. The one difference:
// a row deleted behind Django's back (by SQL, not by a logout) while its
// cache entry lives is still a session to Django and not to this.
type dbSessions struct {
	rows       sessionRows
	codec      *sessionDataCodec
	backends   []string
	recheckTTL time.Duration
	cache      *rowCache[string, sessionRecord]
}

func newDBSessions(cfg *Config, rows sessionRows) (*dbSessions, error) {
	codec, err := newSessionDataCodec(cfg.SecretKey, cfg.SecretKeyFallbacks, cfg.Database.SessionStoreClass)
	if err != nil {
		return nil, err
	}
	return &dbSessions{
		rows:       rows,
		codec:      codec,
		backends:   append([]string(nil), cfg.AuthenticationBackends...),
		recheckTTL: cfg.RecheckCacheTTL,
		cache:      newRowCache[string, sessionRecord](cfg.Database.CacheSize),
	}, nil
}

// identify reads the row of key afresh (a new socket must see the current
// state) and keeps it for the re-checks that follow.
func (e *dbSessions) identify(ctx context.Context, key string, now time.Time) (*Identity, error) {
	if err := checkSessionKey(key); err != nil {
		return nil, err
	}
	rec, err := e.rows.session(ctx, key)
	if err != nil {
		return nil, refuseErr(ReasonSessionStoreUnavailable, err)
	}
	e.cache.put(key, rec, now)
	return e.judge(key, rec, now)
}

// revalidate checks that the row still exists, is unexpired and names the
// same user, backend and auth hash. Other changes to the data are normal:
// Django re-saves a session (new signature, application keys) on ordinary
// requests. The row may be up to recheck_cache_ttl old.
func (e *dbSessions) revalidate(ctx context.Context, id *Identity, now time.Time) error {
	key := id.sessionKey
	if key == "" {
		return refuse(ReasonSessionNoUser, "identity has no stored session")
	}
	rec, ok := e.cache.get(key, e.recheckTTL, now)
	if !ok {
		var err error
		if rec, err = e.rows.session(ctx, key); err != nil {
			return refuseErr(ReasonSessionStoreUnavailable, err)
		}
		e.cache.put(key, rec, now)
	}
	cur, err := e.judge(key, rec, now)
	if err != nil {
		return err
	}
	if cur.UserID != id.UserID || cur.Backend != id.Backend || cur.SessionAuthHash != id.SessionAuthHash {
		return refuse(ReasonSessionChanged, "the stored session no longer names the same user")
	}
	return nil
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
