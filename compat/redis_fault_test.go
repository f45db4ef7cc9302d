package compat

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// TestRedisRestart kills redis-server under a running sidecar: sockets stay
// open, /readyz reports the outage, frames get a clear error, and once an
// empty Redis is back the sidecar restores its group memberships so that a
// Django group_send reaches the old socket within 5 seconds.
func TestRedisRestart(t *testing.T) {
	st := testenv.PythonStacks(t)[0]
	rd := testenv.StartRedis(t)
	s := startSidecar(t, interopConfig(t, ""), "SIDECAR_REDIS_URL="+rd.URL())
	ws := s.dial(t, "/ws/room/fault/", nil)
	env := []string{"REDIS_URL=" + rd.URL()}

	rd.Stop()
	waitFor(t, 15*time.Second, "readyz to report the outage", func() bool {
		st, body, _ := httpGet(t, s.url("/readyz"))
		return st == http.StatusServiceUnavailable && strings.Contains(body, "channel_layer")
	})
	if st, _, _ := httpGet(t, s.url("/healthz")); st != http.StatusOK {
		t.Fatalf("healthz %d during the outage", st)
	}
	writeJSON(t, ws, map[string]any{"text": "while redis is down"})
	if got := readJSON(t, ws); got["type"] != "error" || got["error"] != "unavailable" {
		t.Fatalf("frame during the outage: got %v", got)
	}
	// A new group cannot be joined while Redis is down; the handshake says
	// so. (Another socket of an already joined group is accepted: the
	// membership is the process's, and is restored with the others.)
	if code := s.dialStatus(t, "/ws/room/new-group/", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("handshake to a new group during the outage: %d, want 503", code)
	}

	rd.Restart()
	back := time.Now()
	deadline := back.Add(5 * time.Second)
	_ = ws.SetReadDeadline(deadline)
	received := make(chan map[string]any, 1)
	go func() {
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				close(received)
				return
			}
			if m["text"] == "after restart" {
				received <- m
				return
			}
		}
	}()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = python(ctx, st, env, "e2e/channels_peer.py", "group_send", "room_fault", `{"type":"room.message","text":"after restart"}`).Run()
		cancel()
		select {
		case m, ok := <-received:
			if !ok {
				t.Fatalf("no group_send reached the socket within 5s of Redis coming back (readyz: %s)", readyBody(t, s))
			}
			t.Logf("delivered %s after Redis came back: %v", time.Since(back).Round(time.Millisecond), m["text"])
			waitFor(t, 10*time.Second, "readyz to recover", func() bool {
				st, _, _ := httpGet(t, s.url("/readyz"))
				return st == http.StatusOK
			})
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func readyBody(t *testing.T, s *sidecar) string {
	_, body, _ := httpGet(t, s.url("/readyz"))
	return strings.TrimSpace(body)
}

// waitFor polls cond until it holds or the hang guard runs out.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
