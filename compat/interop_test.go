package compat

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// layerModes are the channel layer settings every interop test runs with.
var layerModes = []struct {
	name string
	keys string // symmetric_encryption_keys, comma separated
}{
	{"plain", ""},
	{"encrypted", "first-secret-key,an-older-key"},
}

// interopConfig is docs/examples/interop.yaml, or a copy with
// symmetric_encryption_keys added.
func interopConfig(t testing.TB, keys string) string { return interopBackendConfig(t, "redis", keys) }

// interopBackendConfig is interopConfig for a given channel layer backend.
func interopBackendConfig(t testing.TB, backend, keys string) string {
	example := filepath.Join(testenv.RepoRoot(), "docs", "examples", "interop.yaml")
	if keys == "" && backend == "redis" {
		return example
	}
	quoted := make([]string, 0)
	for _, k := range strings.Split(keys, ",") {
		if k != "" {
			quoted = append(quoted, `"`+k+`"`)
		}
	}
	return writeConfig(t, `
listen: ${SIDECAR_LISTEN}
channel_layer:
  backend: `+backend+`
  hosts: ["${SIDECAR_REDIS_URL}"]
  symmetric_encryption_keys: [`+strings.Join(quoted, ", ")+`]
routes:
  - path: /ws/room/{name}/
    auth: none
    groups: ["room_{name}"]
    receive:
      default:
        group_send: {group: "room_{name}", forward_frame: true, event: {type: room.message}}
`)
}

// richFields covers the JSON types a frame or event can carry.
func richFields() map[string]any {
	return map[string]any{
		"text":    "héllo wörld ✓ 日本語 🎉",
		"int":     42,
		"neg":     -7,
		"big":     int64(math.MaxInt64),
		"float":   3.25,
		"true":    true,
		"false":   false,
		"nothing": nil,
		"list":    []any{1, "two", 3.5, nil, false},
		"nested":  map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": "deep"}}}, "n": 0},
		"empty":   map[string]any{},
	}
}

// TestDjangoGroupSendReachesSocket: the real channels_redis group_send
// reaches a WebSocket client of the sidecar, with and without encryption.
func TestDjangoGroupSendReachesSocket(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		for _, mode := range layerModes {
			t.Run(mode.name, func(t *testing.T) { djangoGroupSendReachesSocket(t, st, "redis", mode.keys) })
			// channels_redis 4.0's pub/sub layer has no encryption.
			if mode.keys == "" || st.Name != testenv.StackDebian12 {
				t.Run("pubsub-"+mode.name, func(t *testing.T) { djangoGroupSendReachesSocket(t, st, "pubsub", mode.keys) })
			}
		}
	})
}

func djangoGroupSendReachesSocket(t *testing.T, st testenv.PyStack, backend, keys string) {
	redis := testenv.StartRedis(t)
	s := startSidecar(t, interopBackendConfig(t, backend, keys), "SIDECAR_REDIS_URL="+redis.URL())
	c := s.dial(t, "/ws/room/lobby/", nil)
	other := s.dial(t, "/ws/room/other/", nil)

	event := richFields()
	event["type"] = "room.message"
	payload, _ := json.Marshal(event)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := []string{"REDIS_URL=" + redis.URL(), "LAYER_KEYS=" + keys, "LAYER_BACKEND=" + backend}
	if out, err := python(ctx, st, env, "e2e/channels_peer.py", "group_send", "room_lobby", string(payload)).CombinedOutput(); err != nil {
		t.Fatalf("python group_send: %v\n%s", err, out)
	}
	got := readJSON(t, c)
	assertSameJSON(t, got, event)

	// The socket in another group got nothing: its first frame is
	// the one sent to its own group afterwards.
	if out, err := python(ctx, st, env, "e2e/channels_peer.py", "group_send", "room_other", `{"type":"room.message","text":"for other"}`).CombinedOutput(); err != nil {
		t.Fatalf("python group_send: %v\n%s", err, out)
	}
	if got := readJSON(t, other); got["text"] != "for other" {
		t.Fatalf("other room got %v", got)
	}
}

// TestSocketFrameReachesDjangoConsumer: a frame sent by a WebSocket client
// arrives at a channel that Python added to the same group, with equal
// fields and Python types.
func TestSocketFrameReachesDjangoConsumer(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		for _, mode := range layerModes {
			t.Run(mode.name, func(t *testing.T) { socketFrameReachesDjangoConsumer(t, st, "redis", mode.keys) })
			// channels_redis 4.0's pub/sub layer has no encryption.
			if mode.keys == "" || st.Name != testenv.StackDebian12 {
				t.Run("pubsub-"+mode.name, func(t *testing.T) { socketFrameReachesDjangoConsumer(t, st, "pubsub", mode.keys) })
			}
		}
	})
}

func socketFrameReachesDjangoConsumer(t *testing.T, st testenv.PyStack, backend, keys string) {
	redis := testenv.StartRedis(t)
	s := startSidecar(t, interopBackendConfig(t, backend, keys), "SIDECAR_REDIS_URL="+redis.URL())

	frame := richFields()
	expected := richFields()
	expected["type"] = "room.message"
	want, _ := json.Marshal(expected)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := []string{"REDIS_URL=" + redis.URL(), "LAYER_KEYS=" + keys, "LAYER_BACKEND=" + backend}
	peer := startExpectPeer(ctx, t, st, env, "expect", "room_lobby", string(want), "30")
	c := s.dial(t, "/ws/room/lobby/", nil)
	writeJSON(t, c, frame)
	// The sender is in the group too and gets its own broadcast.
	assertSameJSON(t, readJSON(t, c), expected)
	peer.requireMatch()
}

// assertSameJSON compares a received frame with what was sent, treating
// numbers by value.
func assertSameJSON(t *testing.T, got map[string]any, want map[string]any) {
	t.Helper()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	var g, w any
	_ = json.Unmarshal(gb, &g)
	_ = json.Unmarshal(wb, &w)
	g2, _ := json.Marshal(g)
	w2, _ := json.Marshal(w)
	if string(g2) != string(w2) {
		t.Fatalf("frame differs:\n got  %s\n want %s", g2, w2)
	}
}
