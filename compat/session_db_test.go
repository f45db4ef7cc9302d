package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const sessionDBConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.db
  recheck_cache_ttl: 200ms
  database:
    engine: ${DB_ENGINE}
    dsn: ${DB_DSN}
    user_cache_ttl: 200ms
channel_layer: {backend: memory}
routes:
  - path: /ws/chat/
    auth: required
    on_connect:
      - send: {type: welcome, user_id: "{user.id}"}
    receive:
      discriminator: type
      handlers:
        message:
          critical: true
          send: {type: message, text: "{msg.text}"}
        typing:
          send: {type: typing}
`

// djangoDBSite is a database that the real Django and the sidecar share.
type djangoDBSite struct {
	env    []string // selects the database in refsite.settings
	engine string   // the sidecar's database.engine
	dsn    string   // the sidecar's database.dsn
}

// dbSession runs compat/python/auth/dbsession.py with ops on st's Django
// and returns one result per op.
func dbSession(t *testing.T, st testenv.PyStack, site djangoDBSite, ops ...map[string]any) []map[string]any {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"ops": ops})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := python(ctx, st, append([]string{"SECRET_KEY=" + testSecretKey}, site.env...), filepath.Join("auth", "dbsession.py"))
	cmd.Stdin = strings.NewReader(string(in))
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dbsession.py: %v\n%s", err, stderr.String())
	}
	var res struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Results) != len(ops) {
		t.Fatalf("dbsession.py output %q: %v", out, err)
	}
	return res.Results
}

// TestDBSessionsSQLiteLogoutClosesOnCriticalFrame: users logged in by the
// real Django into an SQLite file connect with their sessionid; after
// Django logs one out and changes another's password, their next critical
// frame closes the socket with 4001.
func TestDBSessionsSQLiteLogoutClosesOnCriticalFrame(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		path := filepath.Join(t.TempDir(), "django.sqlite3")
		dbSessionsCloseOnCriticalFrame(t, st, djangoDBSite{env: []string{"DJANGO_DB_PATH=" + path}, engine: "sqlite3", dsn: path})
	})
}

// TestDBSessionsPostgresLogoutClosesOnCriticalFrame is the same with a real
// PostgreSQL server.
func TestDBSessionsPostgresLogoutClosesOnCriticalFrame(t *testing.T) {
	pg := testenv.StartPostgres(t)
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		testenv.RequirePython(t, "psycopg2")
		name := pg.CreateDatabase("blackbox_" + strings.ReplaceAll(st.Name, "-", "_"))
		dbSessionsCloseOnCriticalFrame(t, st, djangoDBSite{
			env: []string{"DJANGO_DB_ENGINE=django.db.backends.postgresql", "DJANGO_DB_NAME=" + name,
				"DJANGO_DB_HOST=127.0.0.1", fmt.Sprintf("DJANGO_DB_PORT=%d", pg.Port), "DJANGO_DB_USER=" + testenv.PostgresSuperuser},
			engine: "postgresql",
			dsn:    pg.DSN(name),
		})
	})
}

func dbSessionsCloseOnCriticalFrame(t *testing.T, st testenv.PyStack, site djangoDBSite) {
	users := []string{"alice", "bob", "carol"}
	ops := []map[string]any{{"op": "migrate"}}
	for _, u := range users {
		ops = append(ops, map[string]any{"op": "create_user", "username": u, "password": u + "-pw"})
	}
	for _, u := range users {
		ops = append(ops, map[string]any{"op": "login", "username": u, "password": u + "-pw"})
	}
	res := dbSession(t, st, site, ops...)
	ids, cookies := map[string]string{}, map[string]http.Header{}
	for i, u := range users {
		ids[u] = fmt.Sprint(res[1+i]["id"])
		cookies[u] = http.Header{"Cookie": {"csrftoken=abc; sessionid=" + res[1+len(users)+i]["sessionid"].(string)}}
	}

	s := startSidecar(t, writeConfig(t, sessionDBConfig),
		"DJANGO_SECRET_KEY="+testSecretKey, "DB_ENGINE="+site.engine, "DB_DSN="+site.dsn)
	if code := s.dialStatus(t, "/ws/chat/", http.Header{"Cookie": {"sessionid=0123456789abcdefghijklmnopqrstuv"}}); code != http.StatusForbidden {
		t.Fatalf("a session Django never issued: HTTP %d, want 403", code)
	}
	conns := map[string]*websocket.Conn{}
	for _, u := range users {
		c := s.dial(t, "/ws/chat/", cookies[u])
		if got := readJSON(t, c); got["type"] != "welcome" || fmt.Sprint(got["user_id"]) != ids[u] {
			t.Fatalf("%s: welcome %v, want user_id %s", u, got, ids[u])
		}
		writeJSON(t, c, map[string]any{"type": "message", "text": "hello " + u})
		if got := readJSON(t, c); got["text"] != "hello "+u {
			t.Fatalf("%s: got %v", u, got)
		}
		conns[u] = c
	}

	logout := dbSession(t, st, site,
		map[string]any{"op": "logout", "sessionid": strings.TrimPrefix(cookies["alice"].Get("Cookie"), "csrftoken=abc; sessionid=")},
		map[string]any{"op": "set_password", "username": "bob", "password": "bob-pw-2"},
	)
	if logout[0]["deleted"] != true {
		t.Fatalf("Django's logout did not delete the row: %v", logout[0])
	}
	time.Sleep(300 * time.Millisecond) // past recheck_cache_ttl

	writeJSON(t, conns["alice"], map[string]any{"type": "typing"})
	if got := readJSON(t, conns["alice"]); got["type"] != "typing" {
		t.Fatalf("a non-critical frame is not re-checked: got %v", got)
	}
	for u, reason := range map[string]string{"alice": "session_not_found", "bob": "session_hash_mismatch"} {
		writeJSON(t, conns[u], map[string]any{"type": "message", "text": "after"})
		_ = conns[u].SetReadDeadline(time.Now().Add(20 * time.Second))
		_, data, err := conns[u].ReadMessage()
		var ce *websocket.CloseError
		if err == nil || !asCloseError(err, &ce) || ce.Code != 4001 || ce.Text != reason {
			t.Errorf("%s: want close 4001 %s, got %v %s", u, reason, err, data)
		}
		if code := s.dialStatus(t, "/ws/chat/", cookies[u]); code != http.StatusForbidden {
			t.Errorf("%s: a new handshake got HTTP %d, want 403", u, code)
		}
	}
	writeJSON(t, conns["carol"], map[string]any{"type": "message", "text": "still here"})
	if got := readJSON(t, conns["carol"]); got["text"] != "still here" {
		t.Fatalf("carol: got %v", got)
	}
}
