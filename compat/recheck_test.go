package compat

import (
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const recheckConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
channel_layer: {backend: memory}
routes:
  - path: /ws/chat/
    auth: required
    receive:
      discriminator: type
      handlers:
        message:
          critical: true
          send: {type: message, text: "{msg.text}"}
        typing:
          send: {type: typing}
        refresh:
          refresh_token: {field: token}
          send: {type: token_refreshed}
`

// TestCriticalFramesRecheckTokens: an access token that expires while its
// socket is open closes the socket with 4001 on the next critical frame;
// a token refreshed in a frame keeps the socket open.
func TestCriticalFramesRecheckTokens(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		s := startSidecar(t, writeConfig(t, recheckConfig), "DJANGO_SECRET_KEY="+testSecretKey)
		now := time.Now().Unix()
		// Tokens that expire 5 seconds from now (simplejwt's default
		// lifetime is 300 s), and fresh ones.
		tok := mint(t, st,
			map[string]any{"op": "mint_token", "at": now - 295, "claims": map[string]any{"user_id": 5}},
			map[string]any{"op": "mint_token", "at": now - 295, "claims": map[string]any{"user_id": 5}},
			map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 5}},
			map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 6}},
		)
		shortA, shortB, fresh, otherUser := tok[0], tok[1], tok[2], tok[3]
		a := s.dial(t, "/ws/chat/?token="+shortA, nil)
		b := s.dial(t, "/ws/chat/?token="+shortB, nil)

		writeJSON(t, a, map[string]any{"type": "message", "text": "while valid"})
		if got := readJSON(t, a); got["text"] != "while valid" {
			t.Fatalf("got %v", got)
		}
		writeJSON(t, b, map[string]any{"type": "refresh", "token": otherUser})
		if got := readJSON(t, b); got["type"] != "error" || got["error"] != "invalid_token" {
			t.Fatalf("refresh with another user's token: got %v", got)
		}
		writeJSON(t, b, map[string]any{"type": "refresh", "token": fresh})
		if got := readJSON(t, b); got["type"] != "token_refreshed" {
			t.Fatalf("refresh: got %v", got)
		}

		time.Sleep(time.Until(time.Unix(now+6, 0))) // past the short tokens' exp

		writeJSON(t, a, map[string]any{"type": "typing"})
		if got := readJSON(t, a); got["type"] != "typing" {
			t.Fatalf("a non-critical frame is not re-checked: got %v", got)
		}
		writeJSON(t, a, map[string]any{"type": "message", "text": "after expiry"})
		_, data, err := a.ReadMessage()
		var ce *websocket.CloseError
		if err == nil || !asCloseError(err, &ce) || ce.Code != 4001 || ce.Text != "jwt_expired" {
			t.Fatalf("want close 4001 jwt_expired, got %v %s", err, data)
		}
		writeJSON(t, b, map[string]any{"type": "message", "text": "refreshed"})
		if got := readJSON(t, b); got["text"] != "refreshed" {
			t.Fatalf("the refreshed socket: got %v", got)
		}
	})
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}
