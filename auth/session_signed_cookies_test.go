package auth

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// loggedInCookie was written by Django 3.2's signed_cookies engine after a
// real login() of user 42 at 1767222000 (vector "logged_in").
const loggedInCookie = ".eJxVjMsOwiAQRf-FtSG8yoBL934DGRiQqoGktCvjv2uTLnR7zzn3xQJuaw3byEuYiZ2ZUez0O0ZMj9x2Qndst85Tb-syR74r_KCDXzvl5-Vw_w4qjvqtMQpBky1OGIRiNaFH7cFOyZAlMDFm5XUEr00hSeiUVOQsKBJSWwns_QENNDeo:1vb5Ae:oSuQLv2EDFSIf8Zdri5SyQTGsQ9XcxI9h59_DQsgUxU"

const loggedInSignedAt = 1767222000

func testSessions(t testing.TB, mutate func(*Config)) *signedCookieSessions {
	t.Helper()
	cfg := Config{SecretKey: vecSecret, SessionEngine: EngineSignedCookies, DisableJWT: true}
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := newSignedCookieSessions(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// signSession signs a session dict the way the engine does, with key.
func signSession(t testing.TB, key, json string, at int64) string {
	t.Helper()
	s, err := NewTimestampSigner(key, nil, SignedCookiesSalt)
	if err != nil {
		t.Fatal(err)
	}
	return s.DumpsJSON([]byte(json), true, time.Unix(at, 0))
}

const loggedInJSON = `{"_auth_user_id":"42","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"ab00d56f804a7f63da9a39765c4d6d74bbe293b7934fd1da8212d8672d013617"}`

func TestSignedCookieSessionFromDjango(t *testing.T) {
	e := testSessions(t, nil)
	id, err := e.identify(context.Background(), loggedInCookie, time.Unix(vecNow, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{
		UserID: "42", Method: MethodSession,
		Expires:         time.Unix(loggedInSignedAt+DefaultSessionCookieAge, 0),
		Backend:         DefaultAuthBackend,
		SessionAuthHash: "ab00d56f804a7f63da9a39765c4d6d74bbe293b7934fd1da8212d8672d013617",
	}
	if !reflect.DeepEqual(*id, want) {
		t.Errorf("identity %+v, want %+v", *id, want)
	}
}

func TestSignedCookieSessionVerdicts(t *testing.T) {
	e := testSessions(t, nil)
	now := time.Unix(vecNow, 0)
	age := int64(DefaultSessionCookieAge)
	cases := []struct {
		name, value, reason string
	}{
		{"age == cookie age", signSession(t, vecSecret, loggedInJSON, vecNow-age), ""},
		{"age == cookie age + 1", signSession(t, vecSecret, loggedInJSON, vecNow-age-1), ReasonSessionExpired},
		{"signed in the future", signSession(t, vecSecret, loggedInJSON, vecNow+3600), ""},
		{"_session_expiry is ignored", signSession(t, vecSecret, `{"_auth_user_id":"42","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"h","_session_expiry":60}`, vecNow-3600), ""},
		{"user id as number", signSession(t, vecSecret, `{"_auth_user_id":42,"_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"h"}`, vecNow), ""},
		{"wrong secret", signSession(t, "attacker-guess-not-the-real-secret-key-000000000000", loggedInJSON, vecNow), ReasonSessionBadSignature},
		{"tampered signature", loggedInCookie[:len(loggedInCookie)-1] + "V", ReasonSessionBadSignature},
		{"tampered payload", ".eJxVjMsOwiAQRf-FtSG8yoBL934DGRiQqoGktCvjv2uTLnR7zzn3xQJuaw3byEuYiZ2ZUez0O0ZMj9x2Qndst85Tb-syR74r_KCDXzvl5-Vw_w4qjvqtMQpBky1OGIRiNaFH7cFOyZAlMDFm5XUEr00hSeiUVOQsKBJSWwns_QENNDeP:1vb5Ae:oSuQLv2EDFSIf8Zdri5SyQTGsQ9XcxI9h59_DQsgUxU", ReasonSessionBadSignature},
		{"db engine salt", dumpsWithSalt(t, "django.contrib.sessions.SessionStore", loggedInJSON), ReasonSessionBadSignature},
		{"anonymous session", signSession(t, vecSecret, `{"k":"v"}`, vecNow), ReasonSessionNoUser},
		{"no backend", signSession(t, vecSecret, `{"_auth_user_id":"42","_auth_user_hash":"h"}`, vecNow), ReasonSessionNoUser},
		{"unknown backend", signSession(t, vecSecret, `{"_auth_user_id":"42","_auth_user_backend":"some.other.Backend","_auth_user_hash":"h"}`, vecNow), ReasonSessionUnknownBackend},
		{"no auth hash", signSession(t, vecSecret, `{"_auth_user_id":"42","_auth_user_backend":"django.contrib.auth.backends.ModelBackend"}`, vecNow), ReasonSessionNoUser},
		{"empty auth hash", signSession(t, vecSecret, `{"_auth_user_id":"42","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":""}`, vecNow), ReasonSessionNoUser},
		{"user id bool", signSession(t, vecSecret, `{"_auth_user_id":true,"_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"h"}`, vecNow), ReasonSessionNoUser},
		{"not an object", signSession(t, vecSecret, `["_auth_user_id"]`, vecNow), ReasonSessionMalformed},
		{"null", signSession(t, vecSecret, `null`, vecNow), ReasonSessionMalformed},
		{"too short", "abc:def", ReasonSessionMalformed},
		{"too long", string(make([]byte, maxSignedCookie+1)), ReasonSessionMalformed},
		{"random db session key", "x8k2m9q0w7e6r5t4y3u2i1o0p9a8s7d6", ReasonSessionBadSignature},
	}
	for _, c := range cases {
		id, err := e.identify(context.Background(), c.value, now)
		if got := reasonOf(err); got != c.reason {
			t.Errorf("%s: reason %q (%v), want %q", c.name, got, err, c.reason)
			continue
		}
		if c.reason == "" && (id == nil || id.UserID != "42") {
			t.Errorf("%s: identity %+v", c.name, id)
		}
	}
}

func dumpsWithSalt(t testing.TB, salt, json string) string {
	s, err := NewTimestampSigner(vecSecret, nil, salt)
	if err != nil {
		t.Fatal(err)
	}
	return s.DumpsJSON([]byte(json), true, time.Unix(vecNow, 0))
}

func TestSignedCookieSessionFallbackKeys(t *testing.T) {
	old := signSession(t, vecOldSecret, loggedInJSON, vecNow)
	now := time.Unix(vecNow, 0)
	if _, err := testSessions(t, nil).identify(context.Background(), old, now); reasonOf(err) != ReasonSessionBadSignature {
		t.Errorf("old key without fallbacks: %v", err)
	}
	e := testSessions(t, func(c *Config) { c.SecretKeyFallbacks = []string{"unrelated", vecOldSecret} })
	if id, err := e.identify(context.Background(), old, now); err != nil || id.UserID != "42" {
		t.Errorf("old key listed in secret_key_fallbacks: %+v, %v", id, err)
	}
	if id, err := e.identify(context.Background(), loggedInCookie, now); err != nil || id.UserID != "42" {
		t.Errorf("current key with fallbacks configured: %+v, %v", id, err)
	}
}

func TestSignedCookieSessionCustomAgeAndBackends(t *testing.T) {
	e := testSessions(t, func(c *Config) {
		c.SessionCookieAge = 28800
		c.AuthenticationBackends = []string{"myapp.auth.EmailBackend"}
	})
	now := time.Unix(vecNow, 0)
	v := signSession(t, vecSecret, `{"_auth_user_id":"42","_auth_user_backend":"myapp.auth.EmailBackend","_auth_user_hash":"h"}`, vecNow-28800)
	id, err := e.identify(context.Background(), v, now)
	if err != nil || !id.Expires.Equal(now) {
		t.Errorf("age == 8h: %+v, %v", id, err)
	}
	if _, err := e.identify(context.Background(), v, now.Add(time.Second)); reasonOf(err) != ReasonSessionExpired {
		t.Errorf("age == 8h+1s: %v", err)
	}
	if _, err := e.identify(context.Background(), loggedInCookie, now); reasonOf(err) != ReasonSessionUnknownBackend {
		t.Errorf("ModelBackend not configured: %v", err)
	}
}
