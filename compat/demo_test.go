package compat

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// TestDemoGoRun runs the README's first command, `go run .`, and chats
// between two clients on the demo route, as two browser tabs would.
func TestDemoGoRun(t *testing.T) {
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = testenv.RepoRoot()
	s := startProcess(t, cmd)

	status, body, _ := httpGet(t, s.url("/"))
	if status != http.StatusOK || !strings.Contains(body, "new WebSocket") || !strings.Contains(body, "/ws/demo/") {
		t.Fatalf("demo page: HTTP %d, body %.200q", status, body)
	}

	a := s.dial(t, "/ws/demo/lobby/", nil)
	b := s.dial(t, "/ws/demo/lobby/", nil)
	other := s.dial(t, "/ws/demo/elsewhere/", nil)

	writeJSON(t, a, map[string]any{"name": "ann", "text": "hello from tab one"})
	for _, c := range []*websocket.Conn{b, a} {
		got := readJSON(t, c)
		if got["type"] != "demo.message" || got["name"] != "ann" || got["text"] != "hello from tab one" {
			t.Fatalf("got %v", got)
		}
	}
	// The other room's first frame must be its own message, not the lobby's.
	writeJSON(t, other, map[string]any{"name": "bob", "text": "elsewhere"})
	if got := readJSON(t, other); got["text"] != "elsewhere" {
		t.Fatalf("room isolation broken: %v", got)
	}
}

// TestMalformedFramesKeepSocketOpen sends bad input and checks the error
// frame, then that the same socket still works.
func TestMalformedFramesKeepSocketOpen(t *testing.T) {
	s := startSidecar(t, "")
	a := s.dial(t, "/ws/demo/r1/", nil)
	for _, bad := range []string{"not json", "[1,2]", `{"unclosed": `, `"text"`} {
		if err := a.WriteMessage(websocket.TextMessage, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		got := readJSON(t, a)
		if got["type"] != "error" || got["error"] != "invalid_json" {
			t.Fatalf("%q: got %v", bad, got)
		}
	}
	writeJSON(t, a, map[string]any{"text": "still here"})
	if got := readJSON(t, a); got["text"] != "still here" {
		t.Fatalf("socket stopped working: %v", got)
	}
}

// TestOversizedFrameClosesOnlyThatSocket checks the read limit: the sender
// of a too-large frame is closed with 1009, a neighbour keeps working.
func TestOversizedFrameClosesOnlyThatSocket(t *testing.T) {
	cfg := writeConfig(t, `
websocket:
  read_limit: 1024
channel_layer: {backend: memory}
routes:
  - path: /ws/demo/{room:slug}/
    auth: none
    groups: ["demo_{room}"]
    receive:
      default:
        group_send: {group: "demo_{room}", forward_frame: true, event: {type: demo.message}}
`)
	s := startSidecar(t, cfg)
	big := s.dial(t, "/ws/demo/r/", nil)
	ok := s.dial(t, "/ws/demo/r/", nil)
	// The server may refuse the frame as soon as it reads its header, so
	// the write itself can fail; the close frame is what counts.
	_ = big.WriteMessage(websocket.TextMessage, []byte(`{"text":"`+strings.Repeat("x", 4096)+`"}`))
	_, _, err := big.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("want close 1009, got %v", err)
	}
	writeJSON(t, ok, map[string]any{"text": "fine"})
	if got := readJSON(t, ok); got["text"] != "fine" {
		t.Fatalf("neighbour affected: %v", got)
	}
}

func TestUnknownWebSocketPathIs404(t *testing.T) {
	s := startSidecar(t, "")
	if st := s.dialStatus(t, "/ws/nothing/here/", nil); st != http.StatusNotFound {
		t.Fatalf("status %d, want 404", st)
	}
	if st := s.dialStatus(t, "/ws/demo/not.a.slug/", nil); st != http.StatusNotFound {
		t.Fatalf("typed parameter mismatch: status %d, want 404", st)
	}
}

func TestHostileOriginRefused(t *testing.T) {
	s := startSidecar(t, "")
	h := http.Header{"Origin": {"https://evil.example"}}
	if st := s.dialStatus(t, "/ws/demo/lobby/", h); st != http.StatusForbidden {
		t.Fatalf("status %d, want 403", st)
	}
	h = http.Header{"Origin": {"http://" + s.addr}}
	if st := s.dialStatus(t, "/ws/demo/lobby/", h); st != http.StatusSwitchingProtocols {
		t.Fatalf("same-origin status %d, want 101", st)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	s := startSidecar(t, "")
	if st, body, _ := httpGet(t, s.url("/healthz")); st != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz: %d %q", st, body)
	}
	if st, body, _ := httpGet(t, s.url("/readyz")); st != 200 || !strings.Contains(body, "channel_layer: ok") {
		t.Fatalf("readyz: %d %q", st, body)
	}
	a := s.dial(t, "/ws/demo/m/", nil)
	writeJSON(t, a, map[string]any{"text": "count me"})
	readJSON(t, a)
	_ = s.dialStatus(t, "/ws/missing/", nil)
	_, body, _ := httpGet(t, s.url("/metrics"))
	for _, want := range []string{
		`sidecar_connections_open{route="/ws/demo/{room:slug}/"} 1`,
		`sidecar_frames_in_total{route="/ws/demo/{room:slug}/"} 1`,
		`sidecar_frames_out_total{route="/ws/demo/{room:slug}/"} 1`,
		`sidecar_layer_messages_received_total 1`,
		`sidecar_handshakes_rejected_total{reason="no_route"} 1`,
		`sidecar_layer_group_sent_total 1`,
		`sidecar_layer_lag_seconds_count 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
