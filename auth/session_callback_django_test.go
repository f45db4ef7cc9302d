package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests run the callback engine against the real view,
// compat/django/refsite/sidecar_views.py, served by the reference project
// under runserver with file sessions (which the sidecar cannot read
// itself); users are logged in and out by the real Django through
// compat/python/auth/session_peer.py on the same files and database.

// withPythonPath prepends dir to the PYTHONPATH a stack sets, if any.
func withPythonPath(st testenv.PyStack, dir string) string {
	p := dir
	for _, kv := range st.Env {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok {
			p += string(os.PathListSeparator) + v
		}
	}
	if v := os.Getenv("PYTHONPATH"); v != "" {
		p += string(os.PathListSeparator) + v
	}
	return "PYTHONPATH=" + p
}

// djangoCalls reads how many checks the view has answered.
func djangoCalls(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/sidecar/session/calls/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Calls int }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Calls
}

func TestDjangoSessionCallback(t *testing.T) {
	for _, st := range testenv.PythonStacks(t, "django", "channels") {
		t.Run(st.Name, func(t *testing.T) { testDjangoSessionCallback(t, st) })
	}
}

func testDjangoSessionCallback(t *testing.T, st testenv.PyStack) {
	dir := t.TempDir()
	env := []string{
		"SECRET_KEY=" + compatSecret,
		"SESSION_ENGINE=django.contrib.sessions.backends.file",
		"TMPDIR=" + dir, // where the file engine keeps sessions
		"DJANGO_DB_PATH=" + filepath.Join(dir, "db.sqlite3"),
		"SIDECAR_HOOK_SECRET=" + testHookSecret,
	}
	const cacheTTL = 3 * time.Second
	var e *callbackSessions
	var aliceID *Identity
	ctx := context.Background()

	t.Run("django up", func(t *testing.T) {
		base := testenv.StartDjango(t, append(append([]string(nil), st.Env...), env...)...)
		peer := startSessionPeer(t, st, map[string]any{"mode": "module"}, append(env,
			"DJANGO_SETTINGS_MODULE=refsite.settings",
			withPythonPath(st, filepath.Join(testenv.RepoRoot(), testenv.DjangoDir)))...)
		e = callbackEngine(t, base+"/sidecar/session/", func(c *Config) { c.SessionCallback.CacheTTL = cacheTTL })
		now := time.Now()

		alice := peer.login("alice", nil)
		id, err := e.identify(ctx, alice.SessionKey, now)
		if err != nil {
			t.Fatalf("a session Django just logged in: %v", err)
		}
		if id.UserID != alice.UserID || id.Backend != DefaultAuthBackend || len(id.SessionAuthHash) != 64 {
			t.Errorf("identity %+v, Django's user %s", id, alice.UserID)
		}
		aliceID = id
		if n := djangoCalls(t, base); n != 1 {
			t.Errorf("%d calls after the first handshake", n)
		}
		// Within cache_ttl the answer is reused; after it Django is asked.
		for i := range 3 {
			if _, err := e.identify(ctx, alice.SessionKey, now.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if n := djangoCalls(t, base); n != 1 {
			t.Errorf("%d calls for handshakes within cache_ttl, want 1", n)
		}
		if _, err := e.identify(ctx, alice.SessionKey, now.Add(cacheTTL)); err != nil {
			t.Fatal(err)
		}
		if n := djangoCalls(t, base); n != 2 {
			t.Errorf("%d calls after cache_ttl, want 2", n)
		}

		// A key Django never issued: refused, and the refusal is cached.
		for range 2 {
			_, err := e.identify(ctx, "k2j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8", now)
			wantReason(t, err, ReasonSessionNoUser)
		}
		if n := djangoCalls(t, base); n != 3 {
			t.Errorf("%d calls, want 3", n)
		}

		// Django logs alice out: the next re-check past recheck_cache_ttl
		// asks Django, which no longer finds the session.
		if err := e.revalidate(ctx, id, now.Add(cacheTTL+time.Second)); err != nil {
			t.Fatalf("re-check before logout: %v", err)
		}
		peer.logout(alice.SessionKey, nil)
		wantReason(t, e.revalidate(ctx, id, now.Add(cacheTTL+time.Second+DefaultRecheckCacheTTL)), ReasonSessionNoUser)
		if n := djangoCalls(t, base); n != 4 {
			t.Errorf("%d calls, want 4", n)
		}

		// A sidecar with another secret is refused by the view.
		bob := peer.login("bob", nil)
		wrong := callbackEngine(t, base+"/sidecar/session/", func(c *Config) { c.SessionCallback.HookSecret = "not-the-shared-secret" })
		_, err = wrong.identify(ctx, bob.SessionKey, now)
		wantReason(t, err, ReasonCallbackUnavailable)
		if id, err := e.identify(ctx, bob.SessionKey, now); err != nil || id.UserID != bob.UserID {
			t.Errorf("bob: %+v %v", id, err)
		}
	})
	if t.Failed() || e == nil {
		return
	}

	// runserver has stopped with its subtest: nothing is accepted on an
	// error, at the handshake or on a re-check.
	now := time.Now().Add(time.Hour)
	_, err := e.identify(ctx, "z9x8c7v6b5n4m3l2k1j0h9g8f7d6s5a4", now)
	wantReason(t, err, ReasonCallbackUnavailable)
	wantReason(t, e.revalidate(ctx, aliceID, now), ReasonCallbackUnavailable)
}
