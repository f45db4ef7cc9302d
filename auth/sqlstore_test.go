package auth

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// djangoPostgresSchema is the part of Django's PostgreSQL schema that the
// sidecar reads.
const djangoPostgresSchema = `
CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL);
CREATE TABLE "auth_user" ("id" serial NOT NULL PRIMARY KEY, "password" varchar(128) NOT NULL, "is_active" boolean NOT NULL, "username" varchar(150) NOT NULL UNIQUE);
INSERT INTO auth_user (id, password, is_active, username) VALUES (42, 'pw42', true, 'alice'), (43, 'pw43', false, 'bob');
INSERT INTO django_session VALUES ('k0000000000000000000000000000042', 'data42', '2026-01-14 23:00:00.5+00');
`

func storeFor(t *testing.T, cfg Config) *sqlStore {
	t.Helper()
	cfg.SecretKey = "s"
	cfg.SessionEngine = EngineDB
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := openSQLStore(&cfg, cfg.Database.UserPKColumn, "username")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

// checkStore runs the same reads against either database.
func checkStore(t *testing.T, s *sqlStore, wantExpiry time.Time) {
	t.Helper()
	ctx := context.Background()
	rec, err := s.session(ctx, "k0000000000000000000000000000042")
	if err != nil || !rec.found || rec.data != "data42" || !rec.expires.Equal(wantExpiry) {
		t.Errorf("session: %+v, %v; want expiry %s", rec, err, wantExpiry)
	}
	if !rec.expiredAt(wantExpiry) || rec.expiredAt(wantExpiry.Add(-time.Microsecond)) {
		t.Errorf("expiredAt is not strict around %s", wantExpiry)
	}
	for _, key := range []string{"k0000000000000000000000000000000", "k00000000000000000000000000000\x0042"} {
		if rec, err := s.session(ctx, key); err != nil || rec.found {
			t.Errorf("session %q: %+v, %v", key, rec, err)
		}
	}
	for value, want := range map[string]userRecord{
		"42":  {found: true, password: "pw42", active: true},
		"042": {found: true, password: "pw42", active: true}, // int("042") in Django
		"43":  {found: true, password: "pw43", active: false},
		"44":  {},
		"abc": {}, // not an integer: nobody
	} {
		if got, err := s.user(ctx, "id", value); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("user id=%q: %+v, %v; want %+v", value, got, err, want)
		}
	}
	if got, err := s.user(ctx, "username", "bob"); err != nil || !got.found || got.active {
		t.Errorf("user username=bob: %+v, %v", got, err)
	}
	if _, err := s.user(ctx, "email", "x"); err == nil {
		t.Error("a column without a prepared query was read")
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_user`); err == nil {
		t.Error("the store's connections can write")
	}
}

func TestSQLStoreSQLite(t *testing.T) {
	path := writeSQLite(t,
		`INSERT INTO auth_user (id, password, is_superuser, username, is_active) VALUES (42, 'pw42', 0, 'alice', 1), (43, 'pw43', 0, 'bob', 0)`,
		`INSERT INTO django_session VALUES ('k0000000000000000000000000000042', 'data42', '2026-01-14 23:00:00.500000')`,
	)
	s := storeFor(t, Config{Database: DatabaseConfig{Engine: "sqlite3", Name: path}})
	checkStore(t, s, time.Date(2026, 1, 14, 23, 0, 0, 5e8, time.UTC))

	// A wrong path fails every read and creates nothing.
	missing := filepath.Join(t.TempDir(), "nope", "db.sqlite3")
	bad := storeFor(t, Config{Database: DatabaseConfig{Engine: "sqlite3", Name: missing}})
	if _, err := bad.session(context.Background(), "k0000000000000000000000000000042"); err == nil {
		t.Error("a missing database file reads as empty")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("the missing database file was created")
	}
	// A missing table is an error, not "no session".
	wrong := storeFor(t, Config{Database: DatabaseConfig{Engine: "sqlite3", Name: path, SessionTable: "other_session"}})
	if _, err := wrong.session(context.Background(), "k0000000000000000000000000000042"); err == nil {
		t.Error("a missing table reads as no session")
	}
}

func TestSQLStorePostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	name := pg.CreateDatabase("sidecar_store")
	admin, err := sql.Open("pgx", pg.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(djangoPostgresSchema); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 1, 14, 23, 0, 0, 5e8, time.UTC)
	t.Run("dsn", func(t *testing.T) {
		s := storeFor(t, Config{Database: DatabaseConfig{Engine: "postgresql", DSN: pg.DSN(name)}})
		checkStore(t, s, want)
	})
	t.Run("keys", func(t *testing.T) {
		// The unix socket, as Django's HOST does with a path.
		s := storeFor(t, Config{Database: DatabaseConfig{Engine: "django.db.backends.postgresql", Name: name,
			Host: pg.SocketDir, Port: pg.Port, User: testenv.PostgresSuperuser, Options: map[string]string{"sslmode": "disable"}}})
		checkStore(t, s, want)
	})
	t.Run("server down", func(t *testing.T) {
		s := storeFor(t, Config{Database: DatabaseConfig{Engine: "postgresql", Name: name, Host: "127.0.0.1",
			Port: testenv.FreePort(t), User: "x", QueryTimeout: time.Second}})
		if _, err := s.session(context.Background(), "k0000000000000000000000000000042"); err == nil {
			t.Error("no server, no error")
		}
		if _, err := s.user(context.Background(), "id", "42"); err == nil {
			t.Error("no server, no error")
		}
	})
}

func TestSQLStoreUserFields(t *testing.T) {
	path := writeSQLite(t,
		`INSERT INTO auth_user (id, password, is_superuser, username, is_active) VALUES (42, 'pw42', 1, 'alice', 1)`,
	)
	s := storeFor(t, Config{Database: DatabaseConfig{Engine: "sqlite3", Name: path, UserFields: []string{"username", "is_superuser"}}})
	got, err := s.user(context.Background(), "id", "42")
	want := map[string]any{"username": "alice", "is_superuser": true}
	if err != nil || !reflect.DeepEqual(got.fields, want) {
		t.Fatalf("fields %#v, %v; want %#v", got.fields, err, want)
	}
	cfg := Config{SecretKey: "s", SessionEngine: EngineDB, Database: DatabaseConfig{Engine: "sqlite3", Name: path, UserFields: []string{"user name"}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err == nil {
		t.Fatal("an unsafe column name in user_fields was accepted")
	}
}
