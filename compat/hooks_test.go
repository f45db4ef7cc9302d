package compat

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const hookSecret = "hook-secret-for-the-tests-0123"

const hooksConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
hooks:
  base_url: ${DJANGO_URL}
  secret: ${HOOK_SECRET}
  timeout: 1s
channel_layer: {backend: memory}
routes:
  - path: /ws/chat/project/{project_id:int}/
    auth: required
    authorize: {hook: /hooktest/authorize/}
    groups: ["chat_{project_id}"]
    receive:
      handlers:
        message:
          hook: /hooktest/message/
          group_send: {group: "chat_{project_id}", event: {type: chat_message}}
        moderated:
          hook: /hooktest/moderate/
          send: {type: accepted}
        slow:
          hook: /hooktest/sleepy/
          send: {type: done}
  - path: /ws/open/
    auth: none
    receive:
      handlers:
        moderated: {hook: /hooktest/moderate/, send: {type: accepted}}
        ping: {send: {type: pong}}
`

// TestDjangoHooks: the route engine asks real Django views, signed, to
// authorize sockets and to handle frames; Django's answers reply, enrich
// the broadcast event, or refuse; a slow or dead Django gives an error
// frame and the socket keeps working.
func TestDjangoHooks(t *testing.T) {
	st := testenv.PythonStacks(t)[0]
	django := testenv.StartDjango(t, append(st.Env, "SIDECAR_HOOK_SECRETS="+hookSecret)...)
	now := time.Now().Unix()
	tok := mint(t, st,
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 1}}, // in projects 7 and 9
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 8}}, // in none
	)
	cfg := writeConfig(t, hooksConfig)
	s := startSidecar(t, cfg, "DJANGO_SECRET_KEY="+testSecretKey, "DJANGO_URL="+django, "HOOK_SECRET="+hookSecret)

	if st := s.dialStatus(t, "/ws/chat/project/2/?token="+tok[0], nil); st != http.StatusForbidden {
		t.Fatalf("user 1 is not in project 2: %d, want 403", st)
	}
	if st := s.dialStatus(t, "/ws/chat/project/7/?token="+tok[1], nil); st != http.StatusForbidden {
		t.Fatalf("user 8 is in no project: %d, want 403", st)
	}
	c := s.dial(t, "/ws/chat/project/7/?token="+tok[0], nil)

	writeJSON(t, c, map[string]any{"type": "message", "message": "  <b>paint</b> done "})
	saved := readJSON(t, c)
	if saved["type"] != "message_saved" {
		t.Fatalf("the hook's reply: %v", saved)
	}
	ev := readJSON(t, c)
	if ev["type"] != "chat_message" || ev["message"] != "&lt;b&gt;paint&lt;/b&gt; done" || jsonString(ev["message_id"]) != jsonString(saved["message_id"]) {
		t.Fatalf("the group event with Django's fields: %v", ev)
	}
	writeJSON(t, c, map[string]any{"type": "message", "message": "   "})
	if got := readJSON(t, c); got["type"] != "error" || got["error"] != "empty_message" {
		t.Fatalf("Django's refusal: %v", got)
	}
	writeJSON(t, c, map[string]any{"type": "moderated", "message": "a forbidden word"})
	if got := readJSON(t, c); got["type"] != "error" || got["error"] != "forbidden_word" {
		t.Fatalf("moderated: %v", got)
	}
	writeJSON(t, c, map[string]any{"type": "moderated", "message": "fine"})
	if got := readJSON(t, c); got["type"] != "accepted" {
		t.Fatalf("moderated, allowed: %v", got)
	}
	writeJSON(t, c, map[string]any{"type": "slow", "seconds": 3})
	if got := readJSON(t, c); got["type"] != "error" || got["error"] != "hook_failed" {
		t.Fatalf("a hook past its timeout: %v", got)
	}
	writeJSON(t, c, map[string]any{"type": "moderated", "message": "still here"})
	if got := readJSON(t, c); got["type"] != "accepted" {
		t.Fatalf("after a failed hook: %v", got)
	}

	// Django down: handshakes that need authorize get 503; nothing crashes.
	dead := startSidecar(t, cfg, "DJANGO_SECRET_KEY="+testSecretKey,
		"DJANGO_URL=http://127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)), "HOOK_SECRET="+hookSecret)
	if st := dead.dialStatus(t, "/ws/chat/project/7/?token="+tok[0], nil); st != http.StatusServiceUnavailable {
		t.Fatalf("authorize with Django down: %d, want 503", st)
	}
	// After accept: the frame that needs Django gets an error frame, the
	// socket and its neighbours keep working.
	open1 := dead.dial(t, "/ws/open/", nil)
	open2 := dead.dial(t, "/ws/open/", nil)
	writeJSON(t, open1, map[string]any{"type": "moderated", "message": "hello"})
	if got := readJSON(t, open1); got["type"] != "error" || got["error"] != "hook_failed" {
		t.Fatalf("a handler hook with Django down: %v", got)
	}
	for _, c := range []*websocket.Conn{open1, open2} {
		writeJSON(t, c, map[string]any{"type": "ping"})
		if got := readJSON(t, c); got["type"] != "pong" {
			t.Fatalf("after Django failed: %v", got)
		}
	}
	_, body, _ := httpGet(t, dead.url("/metrics"))
	if !strings.Contains(body, `sidecar_hook_failures_total{kind="transport"} 2`) {
		t.Fatalf("hook failure not counted:\n%s", grepLines(body, "hook"))
	}
}
