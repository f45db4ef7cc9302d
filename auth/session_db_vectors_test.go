package auth

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Rows and users of db_sessions_dj32.json, written by Django 3.2's db
// engine with the vectors' keys, with the verdicts Channels 4.0 gave.
const (
	dbVecSecret    = "vectors-secret-key-2f6c1d0e9b8a7f6e5d4c3b2a1f0e9d8c"
	dbVecOldSecret = "vectors-OLD-secret-key-rotated-out-0123456789abcdef"
	dbVecNow       = 1767225600
	dbVecPassword  = "pbkdf2_sha256$260000$vectorsalt0123456789AB$/S89sx/EjenDZonI+40vgNHyUBNvXBu3VMxTXppqviY="
	dbVecAuthHash  = "ab00d56f804a7f63da9a39765c4d6d74bbe293b7934fd1da8212d8672d013617"
)

type dbVecRow struct{ key, data, expire string }

var dbVecRows = map[string]dbVecRow{
	"logged_in": {"5qbdni68uz6i4gsmyp21p2ukf7rqxvbf",
		".eJxVjMsOwiAQRf-FtSG8yoBL934DGRiQqoGktCvjv2uTLnR7zzn3xQJuaw3byEuYiZ2ZUez0O0ZMj9x2Qndst85Tb-syR74r_KCDXzvl5-Vw_w4qjvqtMQpBky1OGIRiNaFH7cFOyZAlMDFm5XUEr00hSeiUVOQsKBJSWwns_QENNDeo:1vb5Ae:DRU8lHpSDH8B3TK10PS679wiSVkDN-26xEe_s5P_Zpc",
		"2026-01-14 23:00:00"},
	"expired_row": {"a4d1eur6dpfwk6h1uaui5h6tlzib7cmz",
		".eJxVjMsOwiAQRf-FtSG8yoBL934DGRiQqoGktCvjv2uTLnR7zzn3xQJuaw3byEuYiZ2ZUez0O0ZMj9x2Qndst85Tb-syR74r_KCDXzvl5-Vw_w4qjvqtMQpBky1OGIRiNaFH7cFOyZAlMDFm5XUEr00hSeiUVOQsKBJSWwns_QENNDeo:1vW1R1:VwZ_0chGFKDVv6Dr7I_AZuNopgbJB1JTEuWHot82tK4",
		"2025-12-31 23:59:59"},
	"custom_expiry_7200": {"k941r79vnx3m49b0wda207vds2m7t5rk",
		".eJxVjMsOwiAQRf-FtSG8ypQu3fsNZOhQixow0CYa479rky50e8-558U8rsvs1xarT8QGZhQ7_I4Bx2vMG6EL5nPhY8lLTYFvCt9p46dC8Xbc3b_AjG3-vjEIQZ2demEQJqsJHWoHthsNWQITQlROB3DaTCQJeyUV9RYUCamthC3aYmupZB8f91SfbAAlxPsDbb0_fg:1vb5Ae:9PYkskPgT3yUV8oDEZyLlFxk1SO5QulTp4EkKb3aBUo",
		"2026-01-01 01:00:00"},
	"tampered_session_data": {"l5f0cbh6mqs54l9rsp0ao4gwcbnnb9xa",
		".eJxVjMsOwiAQRf-FtSG8yoBL934DGRiQqoGktCvjv2uTLnR7zzn3xQJuaw3byEuYiZ2ZUez0O0ZMj9x2Qndst85Tb-syR74r_KCDXzvl5-Vw_w4qjvqtMQpBky1OGIRiNaFH7cFOyZAlMDFm5XUEr00hSeiUVOQsKBJSWwns_QENNDeo:1vb5Ae:DRU8lHpSDH8B3TK10PS679wiSVkDN-26xEe_s5P_xpc",
		"2026-01-14 23:00:00"},
	"written_under_old_secret": {"5bzd0it0kwnh31gqmwy3nxqha50c3ckz",
		".eJxVjDEOwjAMRe-SGUVxSHHCyM4ZKsd2aQElUtNOiLtDpQ6w_vfef5me1mXs16ZzP4k5m-DN4XfMxA8tG5E7lVu1XMsyT9luit1ps9cq-rzs7t_BSG381uQZQkioCV1EIuGjY8hDdxoYCGLCECMOLNDlGNArRBYU1ylyUBDz_gAIdDhD:1vb5Ae:LWzJ3-7GFYTfeNtKVUssI9gsUupka8g8GChmOHUXURU",
		"2026-01-14 23:00:00"},
	"inactive_user": {"atoz2vn7a7mtqsjvmxk4ja0rxzs7ciax",
		".eJxVjMsOwiAQRf-FtSHAUB4u3fsNZGBAqgaS0q6M_65NutDtPefcFwu4rTVsIy9hJnZmGtjpd4yYHrnthO7Ybp2n3tZljnxX-EEHv3bKz8vh_h1UHPVbYxSCJlOc0GiLAUKP4K2ZkiZDVseYlYdoPehCktApqcgZq0hIMNKy9wcNzTep:1vb5Ae:CblJgWzoD1jbrVfvMo3tRnpnSJoeZUh0tdePu0486T8",
		"2026-01-14 23:00:00"},
	"legacy_pre31_format": {"10xyb7a56ydbrgshl13zls5cfzkg5rq7",
		"ZWI0NDg0YzY5ZDY3MzYyM2MzN2RjMDYzYTA2YjFmZTk3ZDRiYzRiMzp7Il9hdXRoX3VzZXJfaWQiOiI0MiIsIl9hdXRoX3VzZXJfYmFja2VuZCI6ImRqYW5nby5jb250cmliLmF1dGguYmFja2VuZHMuTW9kZWxCYWNrZW5kIiwiX2F1dGhfdXNlcl9oYXNoIjoiYmQxMzQ0NTUzYmE5NjU3MWRlZDMzYTlhMTQwMDg3MjY4ZTdlOWFlZiJ9",
		"2026-01-14 23:00:00"},
}

// djangoSQLiteSchema is the part of Django's SQLite schema that the
// sidecar reads, as `manage.py sqlmigrate` prints it.
const djangoSQLiteSchema = `
CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL);
CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "password" varchar(128) NOT NULL,
  "last_login" datetime NULL, "is_superuser" bool NOT NULL, "username" varchar(150) NOT NULL UNIQUE,
  "is_active" bool NOT NULL);
`

// writeSQLite creates an SQLite database file with Django's tables, runs
// the statements, and returns its path.
func writeSQLite(t *testing.T, stmts ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "django.sqlite3")
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{djangoSQLiteSchema}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return p
}

// vectorDatabase holds every vector row and the vectors' users.
func vectorDatabase(t *testing.T) string {
	t.Helper()
	stmts := []string{
		`INSERT INTO auth_user (id, password, is_superuser, username, is_active) VALUES
		 (42, '` + dbVecPassword + `', 0, 'alice', 1),
		 (43, '` + dbVecPassword + `', 0, 'bob', 0),
		 (44, 'pbkdf2_sha256$260000$other$changed=', 0, 'carol', 1)`,
	}
	for _, r := range dbVecRows {
		stmts = append(stmts, `INSERT INTO django_session VALUES ('`+r.key+`', '`+r.data+`', '`+r.expire+`')`)
	}
	return writeSQLite(t, stmts...)
}

func dbVecAuthenticator(t *testing.T, path string, mutate func(*Config)) *Authenticator {
	t.Helper()
	cfg := Config{
		SecretKey:     dbVecSecret,
		SessionEngine: EngineDB,
		Database:      DatabaseConfig{Engine: "django.db.backends.sqlite3", Name: path},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// TestDBSessionVectors replays the Django 3.2 db engine rows through a real
// SQLite database and expects Channels' verdicts.
func TestDBSessionVectors(t *testing.T) {
	a := dbVecAuthenticator(t, vectorDatabase(t), nil)
	withFallback := dbVecAuthenticator(t, vectorDatabase(t), func(c *Config) { c.SecretKeyFallbacks = []string{dbVecOldSecret} })
	now := time.Unix(dbVecNow, 0)
	cases := []struct {
		label  string
		a      *Authenticator
		user   string
		reason string
	}{
		{"logged_in", a, "42", ""},
		{"custom_expiry_7200", a, "42", ""},
		{"expired_row", a, "", ReasonSessionExpired},
		{"tampered_session_data", a, "", ReasonSessionBadSignature},
		// Django >= 4.1 reads the data with the fallback key, but Channels
		// compares the hash with SECRET_KEY only.
		{"written_under_old_secret", a, "", ReasonSessionBadSignature},
		{"written_under_old_secret", withFallback, "", ReasonSessionHashMismatch},
		{"inactive_user", a, "", ReasonUserInactive},
		// Django 3.2 reads the pre-3.1 format, but its SHA-1 auth hash is
		// refused by Channels.
		{"legacy_pre31_format", a, "", ReasonSessionHashMismatch},
	}
	for _, tc := range cases {
		r := dbVecRows[tc.label]
		id, err := tc.a.Authenticate(context.Background(), Handshake{Cookie: "sessionid=" + r.key}, now)
		if tc.reason == "" {
			if err != nil || id.UserID != tc.user || id.Method != MethodSession {
				t.Errorf("%s: got %+v, %v; want user %s", tc.label, id, err, tc.user)
			}
			continue
		}
		var f *Failure
		if !errors.As(err, &f) || f.Reason != tc.reason || f.Source != SourceCookie || id != nil {
			t.Errorf("%s: got %+v, %v; want refusal %s", tc.label, id, err, tc.reason)
		}
	}
	id, err := a.Authenticate(context.Background(), Handshake{Cookie: "sessionid=" + dbVecRows["logged_in"].key}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 14, 23, 0, 0, 0, time.UTC); !id.Expires.Equal(want) || id.SessionAuthHash != dbVecAuthHash {
		t.Errorf("identity %+v: want expiry %s and hash %s", id, want, dbVecAuthHash)
	}
	// Unknown and malformed keys.
	for cookie, reason := range map[string]string{
		"sessionid=0123456789abcdefghijklmnopqrstuv": ReasonSessionNotFound,
		"sessionid=short":                       ReasonSessionMalformed,
		"sessionid=" + string(make([]byte, 41)): ReasonSessionNotFound,
	} {
		_, err := a.Authenticate(context.Background(), Handshake{Cookie: cookie}, now)
		var f *Failure
		if !errors.As(err, &f) || f.Reason != reason {
			t.Errorf("%q: got %v, want %s", cookie, err, reason)
		}
	}
}

// TestDBSessionExpiryIsStrict: Django keeps a row while expire_date > now,
// compared to the microsecond.
func TestDBSessionExpiryIsStrict(t *testing.T) {
	r := dbVecRows["logged_in"]
	path := writeSQLite(t,
		`INSERT INTO auth_user (id, password, is_superuser, username, is_active) VALUES (42, '`+dbVecPassword+`', 0, 'alice', 1)`,
		`INSERT INTO django_session VALUES ('exactlynowaaaaaaaaaaaaaaaaaaaaaa', '`+r.data+`', '2026-01-01 00:00:00')`,
		`INSERT INTO django_session VALUES ('onemicrosecondlaterbbbbbbbbbbbbb', '`+r.data+`', '2026-01-01 00:00:00.000001')`,
	)
	a := dbVecAuthenticator(t, path, nil)
	now := time.Unix(dbVecNow, 0)
	if _, err := a.Authenticate(context.Background(), Handshake{Cookie: "sessionid=exactlynowaaaaaaaaaaaaaaaaaaaaaa"}, now); !isReason(err, ReasonSessionExpired) {
		t.Errorf("expire_date == now: got %v, want %s", err, ReasonSessionExpired)
	}
	id, err := a.Authenticate(context.Background(), Handshake{Cookie: "sessionid=onemicrosecondlaterbbbbbbbbbbbbb"}, now)
	if err != nil || id.UserID != "42" {
		t.Errorf("expire_date == now + 1µs: got %+v, %v", id, err)
	}
	if _, err := a.Authenticate(context.Background(), Handshake{Cookie: "sessionid=onemicrosecondlaterbbbbbbbbbbbbb"}, now.Add(time.Microsecond)); !isReason(err, ReasonSessionExpired) {
		t.Errorf("a microsecond later: got %v", err)
	}
}

// TestDBSessionNaiveLocalTime: with USE_TZ=False Django writes local time
// in TIME_ZONE; reading it as UTC would keep a session 9 hours too long in
// Tokyo.
func TestDBSessionNaiveLocalTime(t *testing.T) {
	r := dbVecRows["logged_in"]
	// 2026-01-01 08:00 in Tokyo is 2025-12-31 23:00 UTC, an hour before
	// dbVecNow: expired.
	path := writeSQLite(t,
		`INSERT INTO auth_user (id, password, is_superuser, username, is_active) VALUES (42, '`+dbVecPassword+`', 0, 'alice', 1)`,
		`INSERT INTO django_session VALUES ('tokyoexpiredaaaaaaaaaaaaaaaaaaaa', '`+r.data+`', '2026-01-01 08:00:00')`,
		`INSERT INTO django_session VALUES ('tokyovalidbbbbbbbbbbbbbbbbbbbbbb', '`+r.data+`', '2026-01-01 09:30:00')`,
	)
	off := false
	tokyo := dbVecAuthenticator(t, path, func(c *Config) { c.UseTZ = &off; c.TimeZone = "Asia/Tokyo" })
	utc := dbVecAuthenticator(t, path, nil)
	now := time.Unix(dbVecNow, 0)
	if _, err := tokyo.Authenticate(context.Background(), Handshake{Cookie: "sessionid=tokyoexpiredaaaaaaaaaaaaaaaaaaaa"}, now); !isReason(err, ReasonSessionExpired) {
		t.Errorf("local time in the past: got %v", err)
	}
	id, err := tokyo.Authenticate(context.Background(), Handshake{Cookie: "sessionid=tokyovalidbbbbbbbbbbbbbbbbbbbbbb"}, now)
	if err != nil {
		t.Fatalf("local time in the future: %v", err)
	}
	if want := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC); !id.Expires.Equal(want) {
		t.Errorf("expiry %s, want %s", id.Expires, want)
	}
	// The same rows read as UTC (USE_TZ=True) are both in the future.
	if _, err := utc.Authenticate(context.Background(), Handshake{Cookie: "sessionid=tokyoexpiredaaaaaaaaaaaaaaaaaaaa"}, now); err != nil {
		t.Errorf("as UTC: %v", err)
	}
}

func isReason(err error, reason string) bool {
	var f *Failure
	return errors.As(err, &f) && f.Reason == reason
}
