package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func testAuthenticator(t testing.TB, log *slog.Logger, mutate func(*Config)) *Authenticator {
	t.Helper()
	cfg := Config{SecretKey: vecSecret, SessionEngine: EngineSignedCookies}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tokenFor(user any, exp int64) string {
	return signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"user_id": user, "exp": exp}))
}

func TestAuthenticateSources(t *testing.T) {
	a := testAuthenticator(t, nil, nil)
	now := time.Unix(vecNow, 0)
	valid7 := tokenFor(7, vecNow+60)
	valid8 := tokenFor("8", vecNow+60)
	expired := tokenFor(9, vecNow)
	cookie42 := "sessionid=" + loggedInCookie
	badCookie := "sessionid=" + loggedInCookie[:len(loggedInCookie)-1] + "V"
	cases := []struct {
		name   string
		h      Handshake
		user   string
		method string
		reason string
		source string
	}{
		{"nothing", Handshake{}, "", "", "", ""},
		{"unrelated cookie and query", Handshake{Cookie: "csrftoken=x; lang=es", Query: "lang=es&x"}, "", "", "", ""},
		{"empty session cookie", Handshake{Cookie: "sessionid="}, "", "", "", ""},
		{"empty token param", Handshake{Query: "token=&lang=es"}, "", "", "", ""},
		{"other auth scheme", Handshake{Authorization: "Basic dXNlcjpwYXNz"}, "", "", "", ""},
		{"lowercase bearer is not ours", Handshake{Authorization: "bearer " + valid7}, "", "", "", ""},
		{"query token", Handshake{Query: "lang=es&token=" + valid7}, "7", MethodJWT, "", ""},
		{"query token URL-encoded", Handshake{Query: "token=" + strings.ReplaceAll(valid7, ".", "%2E")}, "7", MethodJWT, "", ""},
		{"query key URL-encoded", Handshake{Query: "%74oken=" + valid7}, "7", MethodJWT, "", ""},
		{"header token", Handshake{Authorization: "Bearer " + valid8}, "8", MethodJWT, "", ""},
		{"header with extra spaces", Handshake{Authorization: "  Bearer \t " + valid8 + " "}, "8", MethodJWT, "", ""},
		{"session cookie", Handshake{Cookie: "csrftoken=x; " + cookie42}, "42", MethodSession, "", ""},
		{"query before header", Handshake{Query: "token=" + valid7, Authorization: "Bearer " + valid8}, "7", MethodJWT, "", ""},
		{"header before cookie", Handshake{Authorization: "Bearer " + valid8, Cookie: cookie42}, "8", MethodJWT, "", ""},
		{"stale query token, valid cookie", Handshake{Query: "token=" + expired, Cookie: cookie42}, "42", MethodSession, "", ""},
		{"stale query token alone", Handshake{Query: "token=" + expired}, "", "", ReasonJWTExpired, SourceQuery},
		{"first refusal is reported", Handshake{Query: "token=" + expired, Authorization: "Bearer junk", Cookie: badCookie}, "", "", ReasonJWTExpired, SourceQuery},
		{"bad header, bad cookie", Handshake{Authorization: "Bearer a b", Cookie: badCookie}, "", "", ReasonJWTBadAuthorizationHeader, SourceHeader},
		{"bearer without token", Handshake{Authorization: "Bearer"}, "", "", ReasonJWTBadAuthorizationHeader, SourceHeader},
		{"repeated token param", Handshake{Query: "token=" + valid7 + "&token=" + valid7}, "", "", ReasonJWTRepeatedQueryParam, SourceQuery},
		{"repeated token param, valid cookie", Handshake{Query: "token=a&token=b", Cookie: cookie42}, "42", MethodSession, "", ""},
		{"bad escape in token", Handshake{Query: "token=%zz"}, "", "", ReasonJWTMalformed, SourceQuery},
		{"'null' token from a client", Handshake{Query: "token=null"}, "", "", ReasonJWTMalformed, SourceQuery},
		{"later duplicate cookie wins", Handshake{Cookie: badCookie + "; " + cookie42}, "42", MethodSession, "", ""},
		{"earlier valid duplicate loses", Handshake{Cookie: cookie42 + "; " + badCookie}, "", "", ReasonSessionBadSignature, SourceCookie},
		{"refresh token", Handshake{Authorization: "Bearer " + signJWT("HS256", vecSecret, hs256Header, accessPayload(map[string]any{"token_type": "refresh"}))}, "", "", ReasonJWTWrongTokenType, SourceHeader},
		{"subprotocol off", Handshake{Protocols: []string{"bearer", valid7}}, "", "", "", ""},
	}
	for _, c := range cases {
		id, err := a.Authenticate(context.Background(), c.h, now)
		if c.reason != "" {
			var f *Failure
			if !errors.As(err, &f) || f.Reason != c.reason || f.Source != c.source {
				t.Errorf("%s: %v, want %s from %s", c.name, err, c.reason, c.source)
			}
			if id != nil {
				t.Errorf("%s: identity with a refusal", c.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.user == "" {
			if id != nil {
				t.Errorf("%s: identity %+v, want anonymous", c.name, id)
			}
			continue
		}
		if id == nil || id.UserID != c.user || id.Method != c.method {
			t.Errorf("%s: identity %+v, want %s by %s", c.name, id, c.user, c.method)
		}
	}
}

func TestAuthenticateSubprotocol(t *testing.T) {
	a := testAuthenticator(t, nil, func(c *Config) { c.TokenSubprotocol = "bearer" })
	now := time.Unix(vecNow, 0)
	if a.TokenSubprotocol() != "bearer" {
		t.Errorf("TokenSubprotocol = %q", a.TokenSubprotocol())
	}
	id, err := a.Authenticate(context.Background(), Handshake{Protocols: []string{"chat", " bearer", " " + tokenFor(7, vecNow+60)}}, now)
	if err != nil || id.UserID != "7" {
		t.Errorf("subprotocol token: %+v, %v", id, err)
	}
	_, err = a.Authenticate(context.Background(), Handshake{Protocols: []string{"chat", "bearer"}}, now)
	if reasonOf(err) != ReasonJWTMalformed {
		t.Errorf("marker without token: %v", err)
	}
	if id, err := a.Authenticate(context.Background(), Handshake{Protocols: []string{"chat"}}, now); id != nil || err != nil {
		t.Errorf("no marker: %+v, %v", id, err)
	}
}

func TestAuthenticateDisabledMethods(t *testing.T) {
	now := time.Unix(vecNow, 0)
	h := Handshake{Query: "token=" + tokenFor(7, vecNow+60), Cookie: "sessionid=" + loggedInCookie}
	noJWT := testAuthenticator(t, nil, func(c *Config) { c.DisableJWT = true })
	if id, err := noJWT.Authenticate(context.Background(), h, now); err != nil || id.Method != MethodSession {
		t.Errorf("JWT disabled: %+v, %v", id, err)
	}
	if noJWT.TokenSubprotocol() != "" {
		t.Error("a subprotocol marker with JWT disabled")
	}
	noSessions := testAuthenticator(t, nil, func(c *Config) { c.DisableSessions = true; c.SessionEngine = EngineDB })
	if id, err := noSessions.Authenticate(context.Background(), Handshake{Cookie: h.Cookie}, now); id != nil || err != nil {
		t.Errorf("sessions disabled: %+v, %v", id, err)
	}
	custom := testAuthenticator(t, nil, func(c *Config) {
		c.SessionCookieName, c.TokenQueryParam = "sid", "access"
		c.SimpleJWT.AuthHeaderTypes = []string{"JWT"}
	})
	if id, _ := custom.Authenticate(context.Background(), Handshake{Cookie: "sid=" + loggedInCookie}, now); id == nil || id.UserID != "42" {
		t.Errorf("custom cookie name: %+v", id)
	}
	if id, _ := custom.Authenticate(context.Background(), Handshake{Query: "access=" + tokenFor(7, vecNow+60)}, now); id == nil || id.UserID != "7" {
		t.Errorf("custom query param: %+v", id)
	}
	if id, _ := custom.Authenticate(context.Background(), Handshake{Authorization: "JWT " + tokenFor(7, vecNow+60)}, now); id == nil || id.UserID != "7" {
		t.Errorf("custom header type: %+v", id)
	}
	if id, err := custom.Authenticate(context.Background(), Handshake{Authorization: "Bearer " + tokenFor(7, vecNow+60)}, now); id != nil || err != nil {
		t.Errorf("Bearer with JWT configured: %+v, %v", id, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{SecretKey: "s"}, nil) // Django's default db engine
	if err == nil || !strings.Contains(err.Error(), "session_engine") {
		t.Errorf("New with the db engine: %v", err)
	}
}

func TestRefusalsNeverShowCredentials(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := testAuthenticator(t, log, nil)
	now := time.Unix(vecNow, 0)
	expired := tokenFor(9, vecNow-1)
	forged := signJWT("HS256", "wrong", hs256Header, accessPayload(nil))
	cookie := loggedInCookie[:len(loggedInCookie)-1] + "V"
	var errs []string
	for _, h := range []Handshake{
		{Query: "token=" + expired},
		{Authorization: "Bearer " + forged},
		{Authorization: "Bearer " + forged + " x"},
		{Cookie: "sessionid=" + cookie},
		{Query: "token=" + forged + "!"},
	} {
		_, err := a.Authenticate(context.Background(), h, now)
		if err == nil {
			t.Fatalf("%+v accepted", h)
		}
		errs = append(errs, err.Error())
	}
	text := logs.String() + strings.Join(errs, "\n")
	for _, secret := range []string{expired, forged, cookie, strings.Split(expired, ".")[2], strings.Split(cookie, ":")[2], strings.Split(forged, ".")[1]} {
		if strings.Contains(text, secret) {
			t.Errorf("logs or errors contain a credential:\n%s", text)
		}
	}
	for _, reason := range []string{ReasonJWTExpired, ReasonJWTBadSignature, ReasonSessionBadSignature, ReasonJWTBadAuthorizationHeader} {
		if !strings.Contains(logs.String(), reason) {
			t.Errorf("logs do not name %s:\n%s", reason, logs.String())
		}
	}
}

func TestFailureError(t *testing.T) {
	f := &Failure{Reason: ReasonSessionExpired, Source: SourceCookie, Err: errors.New("old")}
	if f.Error() != "auth: cookie credential refused: session_expired: old" {
		t.Errorf("Error() = %q", f.Error())
	}
	if !errors.Is(f, f.Err) {
		t.Error("Unwrap does not return the detail")
	}
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if seen[r] {
			t.Errorf("duplicate reason %s", r)
		}
		seen[r] = true
	}
	// Every engine's reasons are listed (other engines add their own).
	for _, r := range []string{ReasonJWTMalformed, ReasonSessionNoUser, ReasonSessionNotFound, ReasonSessionChanged,
		ReasonSessionStoreUnavailable, ReasonCallbackUnavailable, ReasonCallbackRefused} {
		if !seen[r] {
			t.Errorf("Reasons() lacks %s", r)
		}
	}
	if len(seen) < 20 {
		t.Errorf("%d reasons", len(seen))
	}
}

func TestAuthenticateConcurrently(t *testing.T) {
	a := testAuthenticator(t, nil, nil)
	now := time.Unix(vecNow, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				h := Handshake{Cookie: "sessionid=" + loggedInCookie}
				if i%2 == 0 {
					h = Handshake{Authorization: "Bearer " + tokenFor(7, vecNow+60)}
				}
				if id, err := a.Authenticate(context.Background(), h, now); err != nil || id == nil {
					t.Errorf("concurrent authenticate: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkAuthenticateJWT(b *testing.B) {
	a := testAuthenticator(b, nil, nil)
	now := time.Unix(vecNow, 0)
	h := Handshake{Query: "lang=es&token=" + tokenFor("42", vecNow+60), Cookie: "csrftoken=abc; sessionid=" + loggedInCookie}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), h, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateSession(b *testing.B) {
	a := testAuthenticator(b, nil, nil)
	now := time.Unix(vecNow, 0)
	h := Handshake{Cookie: "csrftoken=abc; sessionid=" + loggedInCookie}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), h, now); err != nil {
			b.Fatal(err)
		}
	}
}
