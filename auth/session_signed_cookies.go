package auth

import (
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"
)

// SignedCookiesSalt is the salt of Django's signed_cookies session engine.
const SignedCookiesSalt = "django.contrib.sessions.backends.signed_cookies"

// Keys of a logged-in Django session (django.contrib.auth).
const (
	sessionUserIDKey  = "_auth_user_id"
	sessionBackendKey = "_auth_user_backend"
	sessionHashKey    = "_auth_user_hash"
)

// Bounds on a session key: Django ignores keys shorter than 8 characters,
// and browsers keep cookies to about 4 KB, so anything past 16 KB is junk.
const (
	minSessionKeyChars = 8
	maxSignedCookie    = 16 << 10
)

// signedCookieSessions is django.contrib.sessions.backends.signed_cookies:
// the cookie is signing.dumps(session, salt=SignedCookiesSalt,
// compress=True), verified with SECRET_KEY then each fallback, and valid
// for SESSION_COOKIE_AGE after it was signed. Django ignores
// _session_expiry for this engine (ticket #19201), and so does this.
type signedCookieSessions struct {
	signer   *TimestampSigner
	maxAge   time.Duration
	backends []string
}

func newSignedCookieSessions(cfg *Config) (*signedCookieSessions, error) {
	s, err := NewTimestampSigner(cfg.SecretKey, cfg.SecretKeyFallbacks, SignedCookiesSalt)
	if err != nil {
		return nil, err
	}
	return &signedCookieSessions{
		signer:   s,
		maxAge:   time.Duration(cfg.SessionCookieAge) * time.Second,
		backends: append([]string(nil), cfg.AuthenticationBackends...),
	}, nil
}

func (e *signedCookieSessions) identify(_ context.Context, value string, now time.Time) (*Identity, error) {
	if len(value) > maxSignedCookie {
		return nil, refuse(ReasonSessionMalformed, "cookie too long")
	}
	if utf8.RuneCountInString(value) < minSessionKeyChars {
		return nil, refuse(ReasonSessionMalformed, "cookie too short to be a session")
	}
	data, signedAt, err := e.signer.LoadsJSON(value, e.maxAge, now)
	switch {
	case errors.Is(err, ErrBadSignature):
		return nil, refuse(ReasonSessionBadSignature, "signature does not match any secret key")
	case errors.Is(err, ErrSignatureExpired):
		return nil, refuse(ReasonSessionExpired, "signed more than session_cookie_age ago")
	case err != nil:
		return nil, refuseErr(ReasonSessionMalformed, err)
	}
	var session map[string]json.RawMessage
	if err := json.Unmarshal(data, &session); err != nil || session == nil {
		return nil, refuse(ReasonSessionMalformed, "session is not a JSON object")
	}
	id, err := sessionIdentity(session, e.backends)
	if err != nil {
		return nil, err
	}
	id.Expires = signedAt.Add(e.maxAge)
	return id, nil
}

// sessionIdentity applies the checks of channels.auth.get_user that need
// no user row to a decoded session dict (the values of its three auth
// keys as JSON), for every engine. The caller sets Expires.
func sessionIdentity(session map[string]json.RawMessage, backends []string) (*Identity, error) {
	// As channels.auth.get_user: no user id or backend means anonymous.
	rawID, ok := session[sessionUserIDKey]
	if !ok {
		return nil, refuse(ReasonSessionNoUser, "no "+sessionUserIDKey+" (not logged in)")
	}
	userID, err := userIDFromJSON(rawID)
	if err != nil {
		return nil, refuse(ReasonSessionNoUser, sessionUserIDKey+": "+err.Error())
	}
	backend, ok := jsonString(session[sessionBackendKey])
	if !ok {
		return nil, refuse(ReasonSessionNoUser, "no "+sessionBackendKey)
	}
	if !knownBackend(backends, backend) {
		return nil, refuse(ReasonSessionUnknownBackend, sessionBackendKey+" is not in authentication_backends")
	}
	// Every AbstractBaseUser has get_session_auth_hash, so Channels
	// requires a non-empty hash; comparing it needs the user row.
	hash, ok := jsonString(session[sessionHashKey])
	if !ok || hash == "" {
		return nil, refuse(ReasonSessionNoUser, "no "+sessionHashKey)
	}
	return &Identity{
		UserID:          userID,
		Method:          MethodSession,
		Backend:         backend,
		SessionAuthHash: hash,
	}, nil
}

// revalidate: a signed cookie cannot be revoked (Django keeps no copy),
// so only its age can end it.
func (e *signedCookieSessions) revalidate(_ context.Context, id *Identity, now time.Time) error {
	if !id.Expires.IsZero() && now.After(id.Expires) {
		return refuse(ReasonSessionExpired, "signed more than session_cookie_age ago")
	}
	return nil
}

func knownBackend(backends []string, b string) bool {
	for _, k := range backends {
		if b == k {
			return true
		}
	}
	return false
}

// jsonString decodes raw if it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
