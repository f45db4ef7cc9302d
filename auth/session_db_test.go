package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeRows is an in-memory session and user table for unit tests.
type fakeRows struct {
	mu           sync.Mutex
	sessions     map[string]sessionRecord
	users        map[string]userRecord // by column + "=" + value
	err          error
	sessionReads int
	userReads    int
}

func newFakeRows() *fakeRows {
	return &fakeRows{sessions: map[string]sessionRecord{}, users: map[string]userRecord{}}
}

func (f *fakeRows) session(_ context.Context, key string) (sessionRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessionReads++
	if f.err != nil {
		return sessionRecord{}, f.err
	}
	return f.sessions[key], nil
}

func (f *fakeRows) user(_ context.Context, column, value string) (userRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userReads++
	if f.err != nil {
		return userRecord{}, f.err
	}
	return f.users[column+"="+value], nil
}

func (f *fakeRows) set(fn func(f *fakeRows)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeRows) reads() (sessions, users int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessionReads, f.userReads
}

const fakeKey = "5qbdni68uz6i4gsmyp21p2ukf7rqxvbf"

func newTestDBSessions(t *testing.T, rows sessionRows) *dbSessions {
	t.Helper()
	cfg := Config{SecretKey: dbVecSecret, SessionEngine: EngineDB, Database: DatabaseConfig{Engine: "sqlite3", Name: "unused"}}
	cfg.SetDefaults()
	e, err := newDBSessions(&cfg, rows)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func liveRecord(data string, expires time.Time) sessionRecord {
	return sessionRecord{found: true, data: data, expires: expires}
}

func TestDBSessionRevalidate(t *testing.T) {
	rows := newFakeRows()
	now := time.Unix(dbVecNow, 0)
	rows.sessions[fakeKey] = liveRecord(dbVecRows["logged_in"].data, now.Add(time.Hour))
	e := newTestDBSessions(t, rows)

	id, err := e.identify(context.Background(), fakeKey, now)
	if err != nil || id.UserID != "42" || id.sessionKey != fakeKey {
		t.Fatalf("identify: %+v, %v", id, err)
	}
	if err := e.revalidate(context.Background(), id, now.Add(time.Second)); err != nil {
		t.Fatalf("revalidate: %v", err)
	}
	if s, _ := rows.reads(); s != 1 {
		t.Errorf("a re-check within recheck_cache_ttl read the table: %d reads", s)
	}

	// Django logs the user out: the row goes. Within the cache TTL the
	// socket still passes; after it, it is refused.
	rows.set(func(f *fakeRows) { delete(f.sessions, fakeKey) })
	if err := e.revalidate(context.Background(), id, now.Add(DefaultRecheckCacheTTL-time.Millisecond)); err != nil {
		t.Errorf("within the TTL: %v", err)
	}
	if err := e.revalidate(context.Background(), id, now.Add(DefaultRecheckCacheTTL)); !isReason(err, ReasonSessionNotFound) {
		t.Errorf("after the TTL: got %v, want %s", err, ReasonSessionNotFound)
	}

	// A row that names another hash (another user's session cannot reuse a
	// key, but the hash changes with update_session_auth_hash).
	rows.set(func(f *fakeRows) { f.sessions[fakeKey] = liveRecord(dbVecRows["logged_in"].data, now.Add(time.Hour)) })
	changed := *id
	changed.SessionAuthHash = "0000"
	if err := e.revalidate(context.Background(), &changed, now.Add(10*time.Second)); !isReason(err, ReasonSessionChanged) {
		t.Errorf("changed hash: got %v", err)
	}

	// A cached row still expires on time.
	if err := e.revalidate(context.Background(), id, now.Add(time.Hour)); !isReason(err, ReasonSessionExpired) {
		t.Errorf("at expire_date: got %v", err)
	}

	// Store errors refuse and are not cached.
	rows.set(func(f *fakeRows) { f.err = errors.New("connection refused") })
	if err := e.revalidate(context.Background(), id, now.Add(time.Minute)); !isReason(err, ReasonSessionStoreUnavailable) {
		t.Errorf("store down: got %v", err)
	}
	rows.set(func(f *fakeRows) { f.err = nil })
	if err := e.revalidate(context.Background(), id, now.Add(time.Minute)); err != nil {
		t.Errorf("store back: %v", err)
	}

	if err := e.revalidate(context.Background(), &Identity{UserID: "42", Method: MethodSession}, now); !isReason(err, ReasonSessionNoUser) {
		t.Errorf("identity without a key: got %v", err)
	}
}

func TestDBSessionIdentifyRefusals(t *testing.T) {
	rows := newFakeRows()
	now := time.Unix(dbVecNow, 0)
	future := now.Add(time.Hour)
	e := newTestDBSessions(t, rows)
	signer, _ := NewTimestampSigner(dbVecSecret, nil, "django.contrib.sessions.SessionStore")
	sign := func(json string) string { return signer.DumpsJSON([]byte(json), true, now) }
	cases := map[string]struct {
		data   string
		reason string
	}{
		"not logged in":     {sign(`{"cart":[1,2]}`), ReasonSessionNoUser},
		"not an object":     {sign(`[1]`), ReasonSessionMalformed},
		"unknown backend":   {sign(`{"_auth_user_id":"1","_auth_user_backend":"x.Backend","_auth_user_hash":"ab"}`), ReasonSessionUnknownBackend},
		"empty hash":        {sign(`{"_auth_user_id":"1","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":""}`), ReasonSessionNoUser},
		"cookie salt":       {mustSigner(t, "django.contrib.sessions.backends.signed_cookies").DumpsJSON([]byte(`{}`), true, now), ReasonSessionBadSignature},
		"not signed at all": {"garbage", ReasonSessionBadSignature},
		"signed non-JSON":   {signer.Sign("bm90IGpzb24", now), ReasonSessionMalformed},
	}
	i := 0
	for name, tc := range cases {
		key := "key" + string(rune('a'+i)) + "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		i++
		rows.sessions[key] = liveRecord(tc.data, future)
		if _, err := e.identify(context.Background(), key, now); !isReason(err, tc.reason) {
			t.Errorf("%s: got %v, want %s", name, err, tc.reason)
		}
	}
	rows.err = errors.New("timeout")
	if _, err := e.identify(context.Background(), "anykeyaaaaaaaaaaaaaaaaaaaaaaaaaa", now); !isReason(err, ReasonSessionStoreUnavailable) {
		t.Errorf("store down: got %v", err)
	}
}

func mustSigner(t *testing.T, salt string) *TimestampSigner {
	t.Helper()
	s, err := NewTimestampSigner(dbVecSecret, nil, salt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionDataCodecSubclassSalt(t *testing.T) {
	now := time.Unix(dbVecNow, 0)
	data := mustSigner(t, "django.contrib.sessions.MyStore").DumpsJSON([]byte(`{"a":1}`), true, now)
	own, err := newSessionDataCodec(dbVecSecret, nil, "MyStore")
	if err != nil {
		t.Fatal(err)
	}
	if text, err := own.decode(data); err != nil || string(text) != `{"a":1}` {
		t.Errorf("subclass salt: %q, %v", text, err)
	}
	def, _ := newSessionDataCodec(dbVecSecret, nil, DefaultSessionStoreClass)
	if _, err := def.decode(data); !isReason(err, ReasonSessionBadSignature) {
		t.Errorf("default salt on subclass data: %v", err)
	}
}

// FuzzSessionData feeds arbitrary session_data to the codec: it must
// return JSON or a Failure, never panic.
func FuzzSessionData(f *testing.F) {
	for _, r := range dbVecRows {
		f.Add(r.data)
	}
	f.Add("")
	f.Add(".:0:")
	f.Add("YWJjOmRlZg==")
	codec, err := newSessionDataCodec(dbVecSecret, []string{dbVecOldSecret}, DefaultSessionStoreClass)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data string) {
		text, err := codec.decode(data)
		if err != nil {
			var fl *Failure
			if !errors.As(err, &fl) {
				t.Fatalf("not a Failure: %v", err)
			}
			return
		}
		if _, err := sessionIdentityFromJSON(text, []string{DefaultAuthBackend}); err != nil {
			var fl *Failure
			if !errors.As(err, &fl) {
				t.Fatalf("not a Failure: %v", err)
			}
		}
	})
}

// FuzzExpireDateText: any text in expire_date is read or refused.
func FuzzExpireDateText(f *testing.F) {
	for _, s := range []string{"2026-01-14 23:00:00", "2026-01-14 23:00:00.123456", "2026-01-14T23:00:00+09:00", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := sessionRecord{loc: time.FixedZone("", 9*3600)}
		if err := r.setExpiryText(s); err != nil {
			return
		}
		// Every accepted text has a four-digit year.
		if !r.expiredAt(time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("%q: not expired in the year 10001: %+v", s, r)
		}
		if r.expiredAt(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("%q: expired before the year 0: %+v", s, r)
		}
	})
}
