package compat

import (
	"bufio"
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

		peer := python(ctx, st, env, "e2e/channels_peer.py", "expect_channel",
			`{"type":"relay.message","to":"CHANNEL","text":"to a consumer","list":[1,2.5]}`, "30")
		stdout, _ := peer.StdoutPipe()
		var stderr lockedBuffer
		peer.Stderr = &stderr
		if err := peer.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || !strings.HasPrefix(lines.Text(), "READY ") {
			t.Fatalf("python peer not ready: %q %s", lines.Text(), stderr.String())
		}
		pyChannel := strings.TrimPrefix(lines.Text(), "READY ")
		writeJSON(t, ws, map[string]any{"type": "to_django", "to": pyChannel, "text": "to a consumer", "list": []any{1, 2.5}})
		if !lines.Scan() {
			t.Fatalf("python peer printed nothing: %s", stderr.String())
		}
		if res := lines.Text(); res != "MATCH" {
			t.Fatalf("python received a different message: %s", res)
		}
		if err := peer.Wait(); err != nil {
			t.Fatalf("python peer: %v %s", err, stderr.String())
		}

		// A bad target gets an error frame and the socket stays usable.
		writeJSON(t, ws, map[string]any{"type": "to_django", "to": "not a channel!"})
		if got := readJSON(t, ws); got["type"] != "error" || got["error"] != "invalid_channel" {
			t.Fatalf("got %v", got)
		}
	})
}
