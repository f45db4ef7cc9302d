package compat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const rateLimitConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
channel_layer:
  backend: redis
  hosts: ["${SIDECAR_REDIS_URL}"]
routes:
  - path: /ws/chat/
    auth: required
    receive:
      limit: {rate: 3/m, key: ChatConsumer}
      handlers:
        message:
          send: {type: echo, n: "{msg.n}"}
`

// TestRateLimitSharedAcrossProcesses: a user's budget is shared by every
// sidecar process through Redis, refused frames get Kibray's error frame
// and the socket stays open, and another user has a budget of their own.
func TestRateLimitSharedAcrossProcesses(t *testing.T) {
	st := testenv.PythonStacks(t)[0]
	rd := testenv.StartRedis(t)
	cfg := writeConfig(t, rateLimitConfig)
	env := []string{"SIDECAR_REDIS_URL=" + rd.URL(), "DJANGO_SECRET_KEY=" + testSecretKey}
	a := startSidecar(t, cfg, env...)
	b := startSidecar(t, cfg, env...)
	now := time.Now().Unix()
	tok := mint(t, st,
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 1}},
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 2}},
	)
	onA := a.dial(t, "/ws/chat/?token="+tok[0], nil)
	onB := b.dial(t, "/ws/chat/?token="+tok[0], nil)
	other := b.dial(t, "/ws/chat/?token="+tok[1], nil)

	send := func(c *websocket.Conn, n int) map[string]any {
		t.Helper()
		writeJSON(t, c, map[string]any{"type": "message", "n": n})
		return readJSON(t, c)
	}
	for i, c := range []*websocket.Conn{onA, onB, onA} {
		if got := send(c, i); got["type"] != "echo" {
			t.Fatalf("frame %d within the budget: got %v", i, got)
		}
	}
	got := send(onB, 3)
	want := map[string]any{"type": "error", "error": "rate_limit_exceeded", "message": "Rate limit exceeded. Maximum 3 messages per minute."}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("fourth frame of the user, on the other process: got %v", got)
		}
	}
	if n, _ := got["retry_after"].(json.Number).Int64(); n < 1 || n > 60 {
		t.Fatalf("retry_after %v", got["retry_after"])
	}
	if got := send(other, 0); got["type"] != "echo" {
		t.Fatalf("another user's budget: got %v", got)
	}
	_, body, _ := httpGet(t, b.url("/metrics"))
	if !strings.Contains(body, `sidecar_rate_limited_total{route="/ws/chat/"} 1`) {
		t.Fatalf("rate limit not counted:\n%s", grepLines(body, "rate_limit"))
	}
}
