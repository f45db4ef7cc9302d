package auth

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// TestCachedDBWithRealDjango: the real Django's cached_db engine writes
// the row and the cached copy (django-redis on 3.2, RedisCache on 5.2);
// the sidecar reads the copy first and the row when the copy is gone, as
// Django does, and refuses the session once Django logs the user out.
func TestCachedDBWithRealDjango(t *testing.T) {
	for _, st := range testenv.PythonStacks(t, "django", "redis") {
		t.Run(st.Name, func(t *testing.T) {
			backend := CacheBackendDjango
			if st.Name == testenv.StackDebian12 {
				testenv.RequirePython(t, "django_redis")
				backend = CacheBackendDjangoRedis
			}
			rd := testenv.StartRedis(t)
			loc := "redis://" + rd.Addr() + "/2"
			dbPath := filepath.Join(t.TempDir(), "db.sqlite3")
			peer := startSessionPeer(t, st, map[string]any{
				"mode": "inline", "secret_key": compatSecret, "db_path": dbPath,
				"caches":         map[string]any{"default": map[string]any{"BACKEND": backend, "LOCATION": loc}},
				"session_engine": EngineCachedDB,
			})
			alice, bob, carol := peer.login("alice", nil), peer.login("bob", nil), peer.login("carol", nil)

			newAuth := func(withCache bool) *Authenticator {
				cfg := Config{
					SecretKey: compatSecret, SessionEngine: EngineCachedDB, RecheckCacheTTL: time.Nanosecond,
					Database: DatabaseConfig{Engine: DatabaseSQLite, Name: dbPath, UserCacheTTL: -1},
				}
				if withCache {
					cfg.SessionCache = SessionCacheConfig{Backend: backend, Location: CacheLocation{loc}}
				}
				a, err := New(cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = a.Close() })
				return a
			}
			a, dbOnly := newAuth(true), newAuth(false)
			ctx := context.Background()
			auth := func(a *Authenticator, l peerLogin) (*Identity, error) {
				return a.Authenticate(ctx, Handshake{Cookie: "sessionid=" + l.SessionKey}, time.Now())
			}
			for _, l := range []peerLogin{alice, bob, carol} {
				for _, a := range []*Authenticator{a, dbOnly} {
					if id, err := auth(a, l); err != nil || id.UserID != l.UserID {
						t.Fatalf("%s: %+v, %v", l.UserID, id, err)
					}
				}
			}
			aliceID, _ := auth(a, alice)

			// The row goes behind Django's back: Django still finds the
			// cached copy, and so does the sidecar with session_cache.
			rw, err := sql.Open("sqlite", dbPath)
			if err != nil {
				t.Fatal(err)
			}
			defer rw.Close()
			if _, err := rw.Exec(`DELETE FROM django_session WHERE session_key = ?`, alice.SessionKey); err != nil {
				t.Fatal(err)
			}
			if _, err := auth(a, alice); err != nil {
				t.Errorf("cached copy without its row: %v", err)
			}
			if err := a.Revalidate(ctx, aliceID, time.Now()); err != nil {
				t.Errorf("re-check, cached copy without its row: %v", err)
			}
			if _, err := auth(dbOnly, alice); !isReason(err, ReasonSessionNotFound) {
				t.Errorf("database only, row deleted: %v", err)
			}
			// The cached copy goes (evicted): Django and the sidecar read
			// the row.
			r := redis.NewClient(&redis.Options{Addr: rd.Addr(), DB: 2})
			defer r.Close()
			if n, err := r.Del(ctx, bob.RedisKey, alice.RedisKey).Result(); err != nil || n != 2 {
				t.Fatalf("delete cached copies %q, %q: %d, %v", bob.RedisKey, alice.RedisKey, n, err)
			}
			if id, err := auth(a, bob); err != nil || id.UserID != bob.UserID {
				t.Errorf("no cached copy, row present: %+v, %v", id, err)
			}
			if err := a.Revalidate(ctx, aliceID, time.Now()); !isReason(err, ReasonSessionNotFound) {
				t.Errorf("re-check with neither copy nor row: %v", err)
			}
			// Django logs carol out: both go.
			carolID, _ := auth(a, carol)
			peer.logout(carol.SessionKey, nil)
			if _, err := auth(a, carol); !isReason(err, ReasonSessionNotFound) {
				t.Errorf("after logout: %v", err)
			}
			if err := a.Revalidate(ctx, carolID, time.Now()); !isReason(err, ReasonSessionNotFound) {
				t.Errorf("re-check after logout: %v", err)
			}
		})
	}
}
