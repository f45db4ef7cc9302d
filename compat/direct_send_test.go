package compat

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const directConfig = `
channel_layer:
  backend: redis
  hosts: ["${SIDECAR_REDIS_URL}"]
routes:
  - path: /ws/direct/
    auth: none
    on_connect:
      - send: {type: welcome, channel: "{channel}"}
    receive:
      handlers:
        to_django:
          channel_send: {channel: "{msg.to}", forward_frame: true, event: {type: relay.message}}
`

// TestDirectSendsBothWays: Django send()s to a sidecar socket's channel
// name, and a sidecar socket sends to a Django consumer's channel.
func TestDirectSendsBothWays(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		redis := testenv.StartRedis(t)
		s := startSidecar(t, writeConfig(t, directConfig), "SIDECAR_REDIS_URL="+redis.URL())
		ws := s.dial(t, "/ws/direct/", nil)
		welcome := readJSON(t, ws)
		channel, _ := welcome["channel"].(string)
		if welcome["type"] != "welcome" || !strings.HasPrefix(channel, "specific.") || !strings.Contains(channel, "!") {
			t.Fatalf("welcome %v", welcome)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		env := []string{"REDIS_URL=" + redis.URL()}

		out, err := python(ctx, st, env, "e2e/channels_peer.py", "send", channel, `{"type":"direct.note","text":"just for you","n":3}`).CombinedOutput()
		if err != nil {
			t.Fatalf("python send: %v\n%s", err, out)
		}
		assertSameJSON(t, readJSON(t, ws), map[string]any{"type": "direct.note", "text": "just for you", "n": 3})

		peer := startExpectPeer(ctx, t, st, env, "expect_channel",
			`{"type":"relay.message","to":"CHANNEL","text":"to a consumer","list":[1,2.5]}`, "30")
		writeJSON(t, ws, map[string]any{"type": "to_django", "to": peer.Channel, "text": "to a consumer", "list": []any{1, 2.5}})
		peer.requireMatch()

		// A bad target gets an error frame and the socket stays usable.
		writeJSON(t, ws, map[string]any{"type": "to_django", "to": "not a channel!"})
		if got := readJSON(t, ws); got["type"] != "error" || got["error"] != "invalid_channel" {
			t.Fatalf("got %v", got)
		}
	})
}
