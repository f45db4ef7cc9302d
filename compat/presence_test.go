package compat

import (
	"strconv"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const presenceConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
channel_layer:
  backend: redis
  hosts: ["${SIDECAR_REDIS_URL}"]
routes:
  - path: /ws/status/
    auth: required
    groups: [user_status]
    presence:
      group: user_status
      info: {username: "user{user.id}"}
      join_event: {type: user_status_changed, user_id: "{user.id}", username: "{info.username}", status: online, timestamp: "{now}"}
      leave_event: {type: user_status_changed, user_id: "{user.id}", username: "{info.username}", status: offline, timestamp: "{now}"}
    on_connect:
      - send: {type: connection_established, online_users: "{presence.online}"}
    events:
      user_status_changed:
        skip_self: true
        frame: {type: user_status_changed, user_id: "{event.user_id}", username: "{event.username}", status: "{event.status}"}
`

// TestPresenceIsMultiTabAware: a user is announced online with their first
// socket, across two sidecar processes, and offline only when their last
// socket closes.
func TestPresenceIsMultiTabAware(t *testing.T) {
	st := testenv.PythonStacks(t)[0]
	rd := testenv.StartRedis(t)
	cfg := writeConfig(t, presenceConfig)
	env := []string{"SIDECAR_REDIS_URL=" + rd.URL(), "DJANGO_SECRET_KEY=" + testSecretKey}
	a := startSidecar(t, cfg, env...)
	b := startSidecar(t, cfg, env...)
	now := time.Now().Unix()
	tok := mint(t, st,
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 1}},
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 2}},
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 3}},
	)
	expect := func(c *websocket.Conn, user int64, status string) {
		t.Helper()
		got := readJSON(t, c)
		if got["type"] != "user_status_changed" || jsonString(got["user_id"]) != strconv.FormatInt(user, 10) || got["status"] != status {
			t.Fatalf("want user %d %s, got %v", user, status, got)
		}
	}

	tab1 := a.dial(t, "/ws/status/?token="+tok[0], nil)
	if got := readJSON(t, tab1); got["type"] != "connection_established" || len(got["online_users"].([]any)) != 1 {
		t.Fatalf("first user: %v", got)
	}
	watcher := b.dial(t, "/ws/status/?token="+tok[1], nil)
	welcome := readJSON(t, watcher)
	if users := welcome["online_users"].([]any); len(users) != 2 {
		t.Fatalf("online_users after two users: %v", welcome)
	}
	expect(tab1, 2, "online") // user 1 hears of user 2; user 2 does not hear itself

	tab2 := b.dial(t, "/ws/status/?token="+tok[0], nil) // user 1, second tab, other process
	readJSON(t, tab2)
	_ = tab1.Close() // one of two tabs closes: user 1 stays online
	probe := a.dial(t, "/ws/status/?token="+tok[2], nil)
	readJSON(t, probe)
	expect(watcher, 3, "online") // the next thing user 2 hears is user 3, not user 1

	_ = tab2.Close() // the last tab: now user 1 goes offline
	expect(watcher, 1, "offline")
}
