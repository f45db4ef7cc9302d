package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests let the real Django (both Python stacks) create users, log
// them in with django.test.Client, log them out, change passwords and
// deactivate users, in SQLite and in PostgreSQL; the db engine and the
// user checks must reach the verdicts of channels.auth.get_user and of
// simplejwt's JWTAuthentication on the same rows.

const djangoDBSecret = "db-compat-secret-key-5d2f8a1c3e7b9d0f2a4c6e8b0d1f3a5c"

// djangoDB is one database that Django and the sidecar share.
type djangoDB struct {
	env  []string       // selects the database in refsite.settings
	cfg  DatabaseConfig // the same database for the sidecar
	zone string         // TIME_ZONE with USE_TZ=False; "" for USE_TZ=True
}

type dbResponse struct {
	Versions map[string]string `json:"versions"`
	Results  []json.RawMessage `json:"results"`
}

// runDjangoDB runs compat/python/auth/dbsession.py with ops on st's Django.
func runDjangoDB(t *testing.T, st testenv.PyStack, db djangoDB, simpleJWT map[string]any, ops ...map[string]any) dbResponse {
	t.Helper()
	in, err := json.Marshal(map[string]any{"simple_jwt": simpleJWT, "ops": ops})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := filepath.Join(testenv.RepoRoot(), "compat", "python", "auth", "dbsession.py")
	env := append([]string{"SECRET_KEY=" + djangoDBSecret, "PYTHONDONTWRITEBYTECODE=1"}, db.env...)
	st.Env = append(append([]string(nil), st.Env...), env...)
	out := st.Run(ctx, t, in, script)
	var resp dbResponse
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Results) != len(ops) {
		t.Fatalf("dbsession.py output (%v): %s", err, out)
	}
	return resp
}

func field[T any](t *testing.T, raw json.RawMessage, name string) T {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var v T
	if err := json.Unmarshal(m[name], &v); err != nil {
		t.Fatalf("%s in %s: %v", name, raw, err)
	}
	return v
}

// hasRevokeCheck reports whether the stack's simplejwt has
// CHECK_REVOKE_TOKEN (5.3 and later).
func hasRevokeCheck(st testenv.PyStack) bool {
	v := st.Versions["rest_framework_simplejwt"]
	var major, minor int
	fmt.Sscanf(v, "%d.%d", &major, &minor)
	return major > 5 || major == 5 && minor >= 3
}

// TestDBSessionsWithRealDjangoSQLite shares an SQLite file with Django,
// with USE_TZ=True and with local time in Tokyo (USE_TZ=False), where
// reading expire_date as UTC would keep expired sessions 9 hours longer.
func TestDBSessionsWithRealDjangoSQLite(t *testing.T) {
	for _, st := range testenv.PythonStacks(t, "django", "channels", "rest_framework_simplejwt") {
		for _, zone := range []string{"", "Asia/Tokyo"} {
			t.Run(st.Name+"/"+zoneName(zone), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "django.sqlite3")
				db := djangoDB{env: []string{"DJANGO_DB_PATH=" + path}, cfg: DatabaseConfig{Engine: "sqlite3", Name: path}}
				realDjangoDBSessions(t, st, withZone(db, zone))
			})
		}
	}
}

// TestDBSessionsWithRealDjangoPostgres shares a PostgreSQL database with
// Django, with USE_TZ=True and with local time in New York.
func TestDBSessionsWithRealDjangoPostgres(t *testing.T) {
	stacks := testenv.PythonStacks(t, "django", "channels", "rest_framework_simplejwt", "psycopg2")
	pg := testenv.StartPostgres(t)
	for _, st := range stacks {
		for _, zone := range []string{"", "America/New_York"} {
			t.Run(st.Name+"/"+zoneName(zone), func(t *testing.T) {
				name := pg.CreateDatabase(strings.ReplaceAll(st.Name+"_"+zoneName(zone), "-", "_"))
				db := djangoDB{
					env: []string{"DJANGO_DB_ENGINE=django.db.backends.postgresql", "DJANGO_DB_NAME=" + name,
						"DJANGO_DB_HOST=127.0.0.1", fmt.Sprintf("DJANGO_DB_PORT=%d", pg.Port), "DJANGO_DB_USER=" + testenv.PostgresSuperuser},
					cfg: DatabaseConfig{Engine: "postgresql", DSN: pg.DSN(name)},
				}
				realDjangoDBSessions(t, st, withZone(db, zone))
			})
		}
	}
}

func zoneName(zone string) string {
	if zone == "" {
		return "use_tz"
	}
	return "local_" + strings.ToLower(strings.NewReplacer("/", "_").Replace(zone))
}

// withZone sets USE_TZ=False and TIME_ZONE on both sides, unless zone is
// empty.
func withZone(db djangoDB, zone string) djangoDB {
	if zone != "" {
		db.env = append(db.env, "DJANGO_USE_TZ=false", "DJANGO_TIME_ZONE="+zone)
		db.zone = zone
	}
	return db
}

func realDjangoDBSessions(t *testing.T, st testenv.PyStack, db djangoDB) {
	cfg := Config{SecretKey: djangoDBSecret, SessionEngine: EngineDB, Database: db.cfg}
	if db.zone != "" {
		off := false
		cfg.UseTZ, cfg.TimeZone = &off, db.zone
	}
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace"}
	ops := []map[string]any{{"op": "migrate"}}
	for _, u := range users {
		ops = append(ops, map[string]any{"op": "create_user", "username": u, "password": u + "-pw-1"})
	}
	for _, u := range users {
		ops = append(ops, map[string]any{"op": "login", "username": u, "password": u + "-pw-1"})
	}
	revoke := hasRevokeCheck(st)
	jwtSettings := map[string]any{}
	if revoke {
		jwtSettings["CHECK_REVOKE_TOKEN"] = true
	}
	ops = append(ops, map[string]any{"op": "mint_token", "username": "frank"}, map[string]any{"op": "mint_token", "username": "grace"})
	resp := runDjangoDB(t, st, db, jwtSettings, ops...)
	ids, cookies := map[string]string{}, map[string]string{}
	for i, u := range users {
		ids[u] = fmt.Sprint(field[int](t, resp.Results[1+i], "id"))
		cookies[u] = field[string](t, resp.Results[1+len(users)+i], "sessionid")
	}
	frankToken := field[string](t, resp.Results[1+2*len(users)], "token")
	graceToken := field[string](t, resp.Results[2+2*len(users)], "token")

	cfg.RecheckCacheTTL = time.Nanosecond // every re-check reads the rows
	cfg.Database.UserCacheTTL = -1
	cfg.SimpleJWT.CheckRevokeToken = revoke
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	handshake := func(u string) Handshake { return Handshake{Cookie: "sessionid=" + cookies[u]} }

	idents := map[string]*Identity{}
	for _, u := range users {
		id, err := a.Authenticate(ctx, handshake(u), time.Now())
		if err != nil || id.UserID != ids[u] || id.Method != MethodSession {
			t.Fatalf("%s (%s): %+v, %v; want user %s", u, st.Versions["django"], id, err, ids[u])
		}
		if time.Until(id.Expires) < 13*24*time.Hour {
			t.Errorf("%s: session expires at %s, want about two weeks from now", u, id.Expires)
		}
		idents[u] = id
	}
	tokenIdent := map[string]*Identity{}
	for u, tok := range map[string]string{"frank": frankToken, "grace": graceToken} {
		id, err := a.Authenticate(ctx, Handshake{Query: "token=" + tok}, time.Now())
		if err != nil || id.UserID != ids[u] || id.Method != MethodJWT {
			t.Fatalf("token of %s: %+v, %v", u, id, err)
		}
		tokenIdent[u] = id
	}
	if _, err := a.Authenticate(ctx, Handshake{Cookie: "sessionid=nosuchsessionkeyaaaaaaaaaaaaaaaa"}, time.Now()); !isReason(err, ReasonSessionNotFound) {
		t.Errorf("unknown key: %v", err)
	}

	// Django acts: a logout, a password change, a deactivation, a row
	// that expired a minute ago, and the same for the token users.
	runDjangoDB(t, st, db, jwtSettings,
		map[string]any{"op": "logout", "sessionid": cookies["alice"]},
		map[string]any{"op": "set_password", "username": "bob", "password": "bob-pw-2"},
		map[string]any{"op": "set_active", "username": "carol", "is_active": false},
		map[string]any{"op": "expire_in", "sessionid": cookies["dave"], "seconds": -60},
		map[string]any{"op": "expire_in", "sessionid": cookies["erin"], "seconds": 3600},
		map[string]any{"op": "set_active", "username": "frank", "is_active": false},
		map[string]any{"op": "set_password", "username": "grace", "password": "grace-pw-2"},
	)
	want := map[string]string{
		"alice": ReasonSessionNotFound,
		"bob":   ReasonSessionHashMismatch,
		"carol": ReasonUserInactive,
		"dave":  ReasonSessionExpired,
		"erin":  "",
		"frank": ReasonUserInactive,        // its session; its token below
		"grace": ReasonSessionHashMismatch, // its session; its token below
	}
	now := time.Now()
	for _, u := range users {
		for what, err := range map[string]error{
			"re-check":  a.Revalidate(ctx, idents[u], now),
			"handshake": second(a.Authenticate(ctx, handshake(u), now)),
		} {
			if want[u] == "" && err != nil || want[u] != "" && !isReason(err, want[u]) {
				t.Errorf("%s %s after Django's change: got %v, want %q", u, what, err, want[u])
			}
		}
	}
	wantJWT := map[string]string{"frank": ReasonUserInactive, "grace": ""}
	if revoke {
		wantJWT["grace"] = ReasonJWTPasswordChanged
	}
	for u, reason := range wantJWT {
		err := a.Revalidate(ctx, tokenIdent[u], now)
		if reason == "" && err != nil || reason != "" && !isReason(err, reason) {
			t.Errorf("token of %s after Django's change: got %v, want %q", u, err, reason)
		}
	}

	// The libraries' own verdicts on the same rows (last: Channels flushes
	// sessions whose hash does not match).
	oracleOps := []map[string]any{
		{"op": "jwt_user", "token": frankToken},
		{"op": "jwt_user", "token": graceToken},
		{"op": "channels_user", "sessionid": "nosuchsessionkeyaaaaaaaaaaaaaaaa"},
	}
	for _, u := range users[:5] {
		oracleOps = append(oracleOps, map[string]any{"op": "channels_user", "sessionid": cookies[u]})
	}
	oracle := runDjangoDB(t, st, db, jwtSettings, oracleOps...)
	if code := field[string](t, oracle.Results[0], "error"); code != "user_inactive" {
		t.Errorf("simplejwt on frank's token: %s", oracle.Results[0])
	}
	graceOK := !strings.Contains(string(oracle.Results[1]), "error")
	if graceOK != (wantJWT["grace"] == "") {
		t.Errorf("simplejwt on grace's token: %s, the sidecar wants %q", oracle.Results[1], wantJWT["grace"])
	}
	for i, u := range append([]string{"(unknown key)"}, users[:5]...) {
		got := oracle.Results[2+i]
		accepted := !strings.Contains(string(got), "null")
		if accepted != (u != "(unknown key)" && want[u] == "") {
			t.Errorf("channels.auth.get_user for %s: %s, the sidecar wants %q", u, got, want[u])
		}
	}
}

func second[T any](_ T, err error) error { return err }
