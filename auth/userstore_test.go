package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Vectors of session_auth_hash_dj32.json: Django 3.2's
// get_session_auth_hash for several password fields.
func TestSessionAuthHashVectors(t *testing.T) {
	cases := map[string]string{
		dbVecPassword: dbVecAuthHash,
		"!Xy3vYq0Lr8eTnL3v0aJxq1ZkQ9sVwUe4bDcFgHiJ": "deb6494dd6fd3579dc8a6b784486b3d012334941ffdc0acefb707ef3eeb92125",
		"": "6466c7848482ae06f93eff18f01ae69103aa0da68f9e2c196ee0cb6354c3796a",
		"argon2$argon2id$v=19$m=102400,t=2,p=8$c29tZXNhbHQ$Dq6k3n1nY0mR3d1u6b0s1Q": "5ad8e06bd93f7a7d9e01ee3493dbf5308a84fac34b04b59e7898188df17a507e",
		"pbkdf2_sha256$260000$s\u00e4lz$abc=":                                      "ff9485ede2745a0cdd79e2f8ae2527cd51bd4cc405a60ddfc201cd2c3dd47381",
	}
	u := testUserChecker(t, newFakeRows(), nil)
	for pw, want := range cases {
		if got := u.facts(userRecord{found: true, password: pw}).authHash; got != want {
			t.Errorf("%q: hash %s, want %s", pw, got, want)
		}
	}
	// simplejwt's get_md5_hash_password: upper-case hex MD5.
	if got := u.facts(userRecord{found: true, password: "abc"}).md5; got != "900150983CD24FB0D6963F7D28E17F72" {
		t.Errorf("md5 %s", got)
	}
}

func testUserChecker(t *testing.T, rows userRows, mutate func(*Config)) *userChecker {
	t.Helper()
	cfg := Config{SecretKey: dbVecSecret, SessionEngine: EngineDB, Database: DatabaseConfig{Engine: "sqlite3", Name: "unused"}}
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newUserChecker(&cfg, rows, nil)
}

func alice(rows *fakeRows, active bool, password string) {
	rows.users["id=42"] = userRecord{found: true, active: active, password: password}
}

func sessionIdentityFor(hash, backend string) *Identity {
	return &Identity{UserID: "42", Method: MethodSession, Backend: backend, SessionAuthHash: hash}
}

func TestUserCheckSession(t *testing.T) {
	now := time.Unix(dbVecNow, 0)
	cases := []struct {
		name    string
		active  bool
		pw      string
		missing bool
		backend string
		reason  string
	}{
		{"active, same password", true, dbVecPassword, false, DefaultAuthBackend, ""},
		{"no such user", true, dbVecPassword, true, DefaultAuthBackend, ReasonUserNotFound},
		{"inactive", false, dbVecPassword, false, DefaultAuthBackend, ReasonUserInactive},
		{"inactive, AllowAllUsersModelBackend", false, dbVecPassword, false, "django.contrib.auth.backends.AllowAllUsersModelBackend", ""},
		{"password changed", true, "pbkdf2_sha256$260000$new$hash=", false, DefaultAuthBackend, ReasonSessionHashMismatch},
	}
	for _, tc := range cases {
		rows := newFakeRows()
		if !tc.missing {
			alice(rows, tc.active, tc.pw)
		}
		u := testUserChecker(t, rows, func(c *Config) {
			c.AuthenticationBackends = []string{DefaultAuthBackend, "django.contrib.auth.backends.AllowAllUsersModelBackend"}
		})
		err := u.checkSession(context.Background(), sessionIdentityFor(dbVecAuthHash, tc.backend), now)
		if tc.reason == "" && err != nil || tc.reason != "" && !isReason(err, tc.reason) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.reason)
		}
	}
	// The SHA-1 hash that Django 3.2's HTTP get_user also accepts is
	// refused, as Channels refuses it.
	rows := newFakeRows()
	alice(rows, true, dbVecPassword)
	u := testUserChecker(t, rows, nil)
	if err := u.checkSession(context.Background(), sessionIdentityFor("bd1344553ba96571ded33a9a140087268e7e9aef", DefaultAuthBackend), now); !isReason(err, ReasonSessionHashMismatch) {
		t.Errorf("legacy SHA-1 hash: got %v", err)
	}
	// A nil checker (no database) checks nothing.
	var none *userChecker
	if err := none.checkSession(context.Background(), sessionIdentityFor("x", DefaultAuthBackend), now); err != nil {
		t.Errorf("nil checker: %v", err)
	}
}

func TestUserCheckCaching(t *testing.T) {
	now := time.Unix(dbVecNow, 0)
	rows := newFakeRows()
	alice(rows, true, dbVecPassword)
	u := testUserChecker(t, rows, nil)
	id := sessionIdentityFor(dbVecAuthHash, DefaultAuthBackend)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := u.checkSession(ctx, id, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if _, n := rows.reads(); n != 1 {
		t.Errorf("three handshakes within user_cache_ttl read the user %d times", n)
	}
	// The password changes in Django. Handshakes may use the cached row for
	// user_cache_ttl; a re-check trusts it for recheck_cache_ttl only.
	alice(rows, true, "pbkdf2_sha256$260000$new$hash=")
	if err := u.checkSession(ctx, id, now.Add(DefaultUserCacheTTL-time.Millisecond)); err != nil {
		t.Errorf("handshake within user_cache_ttl: %v", err)
	}
	if err := u.recheckSession(ctx, id, now.Add(DefaultRecheckCacheTTL)); !isReason(err, ReasonSessionHashMismatch) {
		t.Errorf("re-check after recheck_cache_ttl: got %v", err)
	}
	// Store errors refuse and are never cached.
	rows.set(func(f *fakeRows) { f.err = errors.New("down") })
	if err := u.recheckSession(ctx, id, now.Add(time.Hour)); !isReason(err, ReasonUserStoreUnavailable) {
		t.Errorf("store down: got %v", err)
	}
	// With the cache off, every check reads.
	rows = newFakeRows()
	alice(rows, true, dbVecPassword)
	off := testUserChecker(t, rows, func(c *Config) { c.Database.UserCacheTTL = -1 })
	for i := 0; i < 3; i++ {
		_ = off.checkSession(ctx, id, now)
		_ = off.recheckSession(ctx, id, now)
	}
	if _, n := rows.reads(); n != 6 {
		t.Errorf("cache off: %d reads, want 6", n)
	}
}

func TestUserCheckJWT(t *testing.T) {
	now := time.Unix(dbVecNow, 0)
	ctx := context.Background()
	const pw = "pbkdf2_sha256$600000$salt$hash="
	// md5 of pw, upper-case hex, as simplejwt writes hash_password.
	good := (&userChecker{}).facts(userRecord{found: true, password: pw}).md5
	tok := func(claims string) string { return "eyJhbGciOiJIUzI1NiJ9." + b64Encode([]byte(claims)) + ".sig" }
	cases := []struct {
		name   string
		mutate func(*Config)
		active bool
		token  string
		reason string
	}{
		{"active", nil, true, tok(`{}`), ""},
		{"inactive", nil, false, tok(`{}`), ReasonUserInactive},
		{"inactive, check_user_is_active off", func(c *Config) { off := false; c.SimpleJWT.CheckUserIsActive = &off }, false, tok(`{}`), ""},
		{"revoke claim matches", func(c *Config) { c.SimpleJWT.CheckRevokeToken = true }, true, tok(`{"hash_password":"` + good + `"}`), ""},
		{"revoke claim lower case", func(c *Config) { c.SimpleJWT.CheckRevokeToken = true }, true, tok(`{"hash_password":"` + lower(good) + `"}`), ReasonJWTPasswordChanged},
		{"revoke claim missing", func(c *Config) { c.SimpleJWT.CheckRevokeToken = true }, true, tok(`{}`), ReasonJWTPasswordChanged},
		{"revoke claim not a string", func(c *Config) { c.SimpleJWT.CheckRevokeToken = true }, true, tok(`{"hash_password":1}`), ReasonJWTPasswordChanged},
		{"own revoke claim name", func(c *Config) { c.SimpleJWT.CheckRevokeToken = true; c.SimpleJWT.RevokeTokenClaim = "pw" }, true, tok(`{"pw":"` + good + `"}`), ""},
		{"stateless", func(c *Config) { c.SimpleJWT.StatelessUser = true }, false, tok(`{}`), ""},
	}
	for _, tc := range cases {
		rows := newFakeRows()
		alice(rows, tc.active, pw)
		u := testUserChecker(t, rows, tc.mutate)
		err := u.checkJWT(ctx, &Identity{UserID: "42", Method: MethodJWT}, tc.token, now)
		if tc.reason == "" && err != nil || tc.reason != "" && !isReason(err, tc.reason) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.reason)
		}
	}
	// Unknown user; a user looked up by another column than the pk.
	rows := newFakeRows()
	rows.users["uuid=7f0c"] = userRecord{found: true, active: true, password: pw}
	u := testUserChecker(t, rows, func(c *Config) { c.SimpleJWT.UserIDField = "uuid" })
	if err := u.checkJWT(ctx, &Identity{UserID: "42", Method: MethodJWT}, tok(`{}`), now); !isReason(err, ReasonUserNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	if err := u.checkJWT(ctx, &Identity{UserID: "7f0c", Method: MethodJWT}, tok(`{}`), now); err != nil {
		t.Errorf("user_id_field uuid: %v", err)
	}
	if cols := u.lookupColumns(); len(cols) != 2 || cols[0] != "id" || cols[1] != "uuid" {
		t.Errorf("lookup columns %v", cols)
	}
	// The revoke claim is kept for re-checks: a password change ends the
	// socket at the next critical frame.
	rows = newFakeRows()
	alice(rows, true, pw)
	u = testUserChecker(t, rows, func(c *Config) { c.SimpleJWT.CheckRevokeToken = true })
	id := &Identity{UserID: "42", Method: MethodJWT}
	if err := u.checkJWT(ctx, id, tok(`{"hash_password":"`+good+`"}`), now); err != nil {
		t.Fatal(err)
	}
	alice(rows, true, "changed")
	if err := u.recheckJWT(ctx, id, now.Add(DefaultRecheckCacheTTL)); !isReason(err, ReasonJWTPasswordChanged) {
		t.Errorf("re-check after a password change: %v", err)
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestUserFactsNullPassword(t *testing.T) {
	u := testUserChecker(t, newFakeRows(), nil)
	f := u.facts(userRecord{found: true, passwordNull: true})
	// salted_hmac(force_bytes(None)) hashes the text "None".
	if want := u.facts(userRecord{found: true, password: "None"}).authHash; f.authHash != want || f.md5 != "" {
		t.Errorf("NULL password: %+v", f)
	}
}
