package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testHookSecret = "hook-secret-for-tests-0123456789"

// fakeDjango is a unit-test stand-in for the callback view: it checks the
// signature independently of the code under test and answers from a table
// of session keys.
type fakeDjango struct {
	calls   atomic.Int64
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter)
	delay   time.Duration
	release chan struct{} // when set, every call waits for it
}

func (f *fakeDjango) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.release != nil {
		<-f.release
	}
	time.Sleep(f.delay)
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("X-Sidecar-Timestamp")
	m := hmac.New(sha256.New, []byte(testHookSecret))
	m.Write([]byte(ts + "." + string(body)))
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("X-Sidecar-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) ||
		time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error": "bad_signature"}`)
		return
	}
	var req struct {
		SessionKey string `json:"session_key"`
	}
	json.Unmarshal(body, &req)
	f.mu.Lock()
	answer := f.answers[req.SessionKey]
	f.mu.Unlock()
	if answer == nil {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error": "anonymous"}`)
		return
	}
	answer(w)
}

func (f *fakeDjango) set(key string, answer func(w http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string]func(http.ResponseWriter){}
	}
	f.answers[key] = answer
}

func reply(status int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func callbackEngine(t *testing.T, url string, mutate func(*Config)) *callbackSessions {
	t.Helper()
	cfg := Config{SecretKey: vecSecret, SessionEngine: "django.contrib.sessions.backends.file", DisableJWT: true,
		SessionCallback: SessionCallbackConfig{URL: url, HookSecret: testHookSecret}}
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := newCallbackSessions(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close() })
	return e
}

func TestCallbackAnswers(t *testing.T) {
	f := &fakeDjango{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	now := time.Now()
	f.set("alice-session-key", reply(200, `{"user_id": "42", "backend": "django.contrib.auth.backends.ModelBackend", "session_auth_hash": "`+vecSessionHash+`", "expires_at": null}`))
	f.set("numeric-user-id", reply(200, `{"user_id": 7}`))
	f.set("uuid-user-id", reply(200, `{"user_id": "6f1c5a2e-0000-4000-8000-000000000042"}`))
	f.set("expires-soon", reply(200, `{"user_id": "42", "expires_at": `+strconv.FormatInt(now.Unix()+60, 10)+`}`))
	f.set("already-expired", reply(200, `{"user_id": "42", "expires_at": `+strconv.FormatInt(now.Unix()-1, 10)+`}`))
	f.set("forbidden-user", reply(403, `{"error": "forbidden"}`))
	f.set("no-user-in-200", reply(200, `{"user_id": null}`))
	f.set("broken-view", reply(500, `<h1>Server Error</h1>`))
	f.set("not-json", reply(200, `<html>`))
	f.set("bad-user-id", reply(200, `{"user_id": true}`))
	f.set("bad-expiry", reply(200, `{"user_id": "1", "expires_at": "tomorrow"}`))
	f.set("redirected", func(w http.ResponseWriter) {
		w.Header().Set("Location", "/accounts/login/")
		w.WriteHeader(http.StatusFound)
	})
	f.set("huge-answer", reply(200, `{"user_id": "1", "pad": "`+strings.Repeat("x", maxCallbackAnswer)+`"}`))

	e := callbackEngine(t, srv.URL, nil)
	ctx := context.Background()
	for _, c := range []struct {
		key, user, reason string
	}{
		{"alice-session-key", "42", ""},
		{"numeric-user-id", "7", ""},
		{"uuid-user-id", "6f1c5a2e-0000-4000-8000-000000000042", ""},
		{"expires-soon", "42", ""},
		{"already-expired", "", ReasonSessionExpired},
		{"logged-out-key", "", ReasonSessionNoUser},
		{"forbidden-user", "", ReasonCallbackRefused},
		{"no-user-in-200", "", ReasonSessionNoUser},
		{"broken-view", "", ReasonCallbackUnavailable},
		{"not-json", "", ReasonCallbackUnavailable},
		{"bad-user-id", "", ReasonCallbackUnavailable},
		{"bad-expiry", "", ReasonCallbackUnavailable},
		{"redirected", "", ReasonCallbackUnavailable},
		{"huge-answer", "", ReasonCallbackUnavailable},
		{"short", "", ReasonSessionMalformed},
	} {
		id, err := e.identify(ctx, c.key, now)
		if c.reason != "" {
			if err == nil {
				t.Errorf("%s: accepted as %+v", c.key, id)
				continue
			}
			if f := err.(*Failure); f.Reason != c.reason {
				t.Errorf("%s: %v, want %s", c.key, err, c.reason)
			}
			continue
		}
		if err != nil || id.UserID != c.user || id.Method != MethodSession || id.sessionKey != c.key {
			t.Errorf("%s: %+v %v", c.key, id, err)
		}
	}
	id, _ := e.identify(ctx, "alice-session-key", now)
	if id.Backend != DefaultAuthBackend || id.SessionAuthHash != vecSessionHash || !id.Expires.IsZero() {
		t.Errorf("backend, hash and expiry: %+v", id)
	}
	id, _ = e.identify(ctx, "expires-soon", now)
	if id.Expires.Unix() != now.Unix()+60 {
		t.Errorf("expires_at: %v", id.Expires)
	}
	if err := e.revalidate(ctx, id, now.Add(61*time.Second)); err == nil || err.(*Failure).Reason != ReasonSessionExpired {
		t.Errorf("re-check past expires_at: %v", err)
	}
}

func TestCallbackCacheTTL(t *testing.T) {
	f := &fakeDjango{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	f.set("alice-session-key", reply(200, `{"user_id": "42"}`))
	f.set("flaky-session-key", reply(500, ``))
	e := callbackEngine(t, srv.URL, func(c *Config) { c.SessionCallback.CacheTTL = 10 * time.Second })
	ctx := context.Background()
	now := time.Now()
	for i := range 5 {
		if _, err := e.identify(ctx, "alice-session-key", now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.identify(ctx, "nobody-session-key", now.Add(time.Duration(i)*time.Second)); err == nil {
			t.Fatal("an unknown session was accepted")
		}
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d calls for 10 handshakes within cache_ttl, want 2 (accepted and refused answers are both kept)", n)
	}
	// Past cache_ttl, Django is asked again.
	if _, err := e.identify(ctx, "alice-session-key", now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("%d calls after cache_ttl, want 3", n)
	}
	// Failures are never remembered.
	for range 3 {
		e.identify(ctx, "flaky-session-key", now)
	}
	if n := f.calls.Load(); n != 6 {
		t.Errorf("%d calls, want 6: an unavailable answer must not be cached", n)
	}
	// A re-check reuses an answer for at most recheck_cache_ttl (2s),
	// then sees the logout.
	id, _ := e.identify(ctx, "alice-session-key", now.Add(10*time.Second))
	f.set("alice-session-key", nil)
	if err := e.revalidate(ctx, id, now.Add(11*time.Second)); err != nil {
		t.Errorf("re-check within recheck_cache_ttl: %v", err)
	}
	if err := e.revalidate(ctx, id, now.Add(12*time.Second)); err == nil || err.(*Failure).Reason != ReasonSessionNoUser {
		t.Errorf("re-check after logout: %v", err)
	}
	// The session now names another user, or another auth hash (the
	// password changed and Django re-hashed this session).
	f.set("alice-session-key", reply(200, `{"user_id": "43"}`))
	if err := e.revalidate(ctx, id, now.Add(20*time.Second)); err == nil || err.(*Failure).Reason != ReasonSessionChanged {
		t.Errorf("re-check with another user: %v", err)
	}
	f.set("alice-session-key", reply(200, `{"user_id": "42", "session_auth_hash": "new"}`))
	if err := e.revalidate(ctx, id, now.Add(30*time.Second)); err == nil || err.(*Failure).Reason != ReasonSessionChanged {
		t.Errorf("re-check with another hash: %v", err)
	}
}

func TestCallbackWrongSecretAndDown(t *testing.T) {
	f := &fakeDjango{}
	srv := httptest.NewServer(f)
	f.set("alice-session-key", reply(200, `{"user_id": "42"}`))
	e := callbackEngine(t, srv.URL, func(c *Config) { c.SessionCallback.HookSecret = "another-secret-0123456789" })
	_, err := e.identify(context.Background(), "alice-session-key", time.Now())
	if err == nil || err.(*Failure).Reason != ReasonCallbackUnavailable || !strings.Contains(err.Error(), "hook_secret") {
		t.Errorf("wrong secret: %v", err)
	}
	good := callbackEngine(t, srv.URL, nil)
	if _, err := good.identify(context.Background(), "alice-session-key", time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_, err = good.identify(context.Background(), "another-session-key", time.Now())
	if err == nil || err.(*Failure).Reason != ReasonCallbackUnavailable {
		t.Errorf("Django down: %v", err)
	}
}

func TestCallbackConcurrency(t *testing.T) {
	f := &fakeDjango{release: make(chan struct{})}
	srv := httptest.NewServer(f)
	defer srv.Close()
	e := callbackEngine(t, srv.URL, func(c *Config) { c.SessionCallback.MaxConcurrency = 2 })
	now := time.Now()
	for i := range 4 {
		f.set("session-key-"+strconv.Itoa(i), reply(200, `{"user_id": "`+strconv.Itoa(i)+`"}`))
	}
	// Eight handshakes for the same session share one call; two other
	// sessions take the two slots; a fourth cannot get a slot before its
	// deadline and is refused.
	var wg sync.WaitGroup
	results := make(chan error, 16)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.identify(context.Background(), "session-key-0", now)
			results <- err
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := e.identify(context.Background(), "session-key-1", now)
		results <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := e.identify(ctx, "session-key-2", now)
	cancel()
	if err == nil || err.(*Failure).Reason != ReasonCallbackUnavailable || !strings.Contains(err.Error(), "slot") {
		t.Errorf("third session while two calls are in flight: %v", err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d calls in flight, want 2 (one per session)", n)
	}
	close(f.release)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("a waiting handshake: %v", err)
		}
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d calls in all, want 2", n)
	}
}

func TestCallbackMemoBounded(t *testing.T) {
	f := &fakeDjango{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	e := callbackEngine(t, srv.URL, func(c *Config) { c.SessionCallback.CacheSize = 10 })
	now := time.Now()
	for i := range 50 {
		e.identify(context.Background(), "unknown-session-"+strconv.Itoa(i), now)
	}
	if n := e.memo.len(); n > 10 {
		t.Errorf("%d remembered answers, cache_size is 10", n)
	}
}

func TestSessionCallbackConfig(t *testing.T) {
	c := SessionCallbackConfig{URL: "http://127.0.0.1:8000/sidecar/session/", HookSecret: testHookSecret}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != DefaultCallbackTimeout || c.CacheTTL != DefaultCallbackCacheTTL || c.CacheSize != DefaultCallbackCacheSize || c.MaxConcurrency != DefaultCallbackMaxConcurrency {
		t.Errorf("defaults: %+v", c)
	}
	for name, bad := range map[string]SessionCallbackConfig{
		"relative url":   {URL: "/sidecar/session/", HookSecret: testHookSecret},
		"ftp url":        {URL: "ftp://h/x", HookSecret: testHookSecret},
		"short secret":   {URL: "http://h/x", HookSecret: "short"},
		"negative ttl":   {URL: "http://h/x", HookSecret: testHookSecret, CacheTTL: -1},
		"negative slots": {URL: "http://h/x", HookSecret: testHookSecret, MaxConcurrency: -1},
	} {
		bad.SetDefaults()
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r := c.redacted()
	if r.HookSecret == testHookSecret || c.HookSecret != testHookSecret {
		t.Error("redacted")
	}
}

func TestVerdictMemo(t *testing.T) {
	m := newVerdictMemo(3, 10*time.Second)
	now := time.Unix(1000, 0)
	k := func(s string) [32]byte { return credentialHash(s) }
	m.put(k("a"), verdictOf(now, &Identity{UserID: "1"}, nil))
	m.put(k("b"), verdictOf(now, nil, refuse(ReasonSessionNotFound, "gone")))
	if v, ok := m.get(k("a"), now.Add(9*time.Second), time.Minute); !ok || v.id.UserID != "1" {
		t.Errorf("a: %+v %v", v, ok)
	}
	if _, ok := m.get(k("a"), now.Add(10*time.Second), time.Minute); ok {
		t.Error("an entry was used past the memo's max age")
	}
	if _, ok := m.get(k("a"), now.Add(2*time.Second), time.Second); ok {
		t.Error("an entry was used past the caller's max age")
	}
	if _, ok := m.get(k("a"), now.Add(-time.Second), time.Minute); ok {
		t.Error("an entry from the future was used")
	}
	v, _ := m.get(k("b"), now, time.Minute)
	_, err := v.result()
	f1 := err.(*Failure)
	f1.Source = SourceRecheck
	_, err = v.result()
	if f2 := err.(*Failure); f2 == f1 || f2.Source != "" || f2.Reason != ReasonSessionNotFound {
		t.Error("result shares its *Failure between callers")
	}
	id1, _ := m.entries[k("a")].result()
	id1.UserID = "changed"
	if id2, _ := m.entries[k("a")].result(); id2.UserID != "1" {
		t.Error("result shares its *Identity between callers")
	}
	// Full: expired entries go first, then an arbitrary one.
	m.put(k("x"), verdictOf(now, &Identity{UserID: "x"}, nil))
	m.put(k("c"), verdictOf(now.Add(20*time.Second), &Identity{UserID: "3"}, nil))
	if m.len() != 1 {
		t.Errorf("expired entries kept: %d", m.len())
	}
	for _, s := range []string{"d", "e", "f", "g"} {
		m.put(k(s), verdictOf(now.Add(20*time.Second), &Identity{UserID: s}, nil))
	}
	if m.len() != 3 {
		t.Errorf("%d entries, max 3", m.len())
	}
}
