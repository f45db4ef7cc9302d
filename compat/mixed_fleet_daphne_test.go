package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// mixedFleetMessages is how many group_send events the burst publishes.
const mixedFleetMessages = 50

// mixedFleetBurstWait bounds the wait for a whole burst on one socket: a
// hang guard for a loaded two-core machine, not a performance check.
const mixedFleetBurstWait = 60 * time.Second

// fleetSocket is one WebSocket client of either implementation.
type fleetSocket struct {
	name string
	conn *websocket.Conn
}

// TestMixedFleetDaphneAndSidecar: a real Daphne running the Channels
// consumer that docs/examples/interop.yaml stands in for, and the sidecar
// running that file, serve sockets of one group side by side. Every
// channels_redis group_send reaches every socket of both exactly once, and
// a frame sent by a client of either one reaches the clients of the other.
func TestMixedFleetDaphneAndSidecar(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		for _, mode := range layerModes {
			t.Run(mode.name, func(t *testing.T) { mixedFleetDaphneAndSidecar(t, st, mode.keys) })
		}
	})
}

func mixedFleetDaphneAndSidecar(t *testing.T, st testenv.PyStack, keys string) {
	redis := testenv.StartRedis(t)
	layerEnv := []string{"REDIS_URL=" + redis.URL(), "LAYER_KEYS=" + keys}
	daphne := testenv.StartDaphne(t, append(append([]string(nil), st.Env...), layerEnv...)...)
	s := startSidecar(t, interopConfig(t, keys), "SIDECAR_REDIS_URL="+redis.URL())

	// Both implementations join the group before the handshake completes,
	// so every socket below is a member once its dial returns.
	const room = "/ws/room/mixed/"
	sockets := []fleetSocket{
		{"daphne-0", dialDaphne(t, daphne, room)},
		{"daphne-1", dialDaphne(t, daphne, room)},
		{"sidecar-0", s.dial(t, room, nil)},
		{"sidecar-1", s.dial(t, room, nil)},
	}

	// Inbound frames: each implementation broadcasts them to the group as
	// room.message, and every member, the sender included, gets them.
	for _, from := range []fleetSocket{sockets[2], sockets[0]} {
		frame := map[string]any{"from": from.name, "text": "hello from " + from.name, "list": []any{1, "two", 3.5}}
		writeJSON(t, from.conn, frame)
		want := map[string]any{"type": "room.message", "from": from.name, "text": "hello from " + from.name, "list": []any{1, "two", 3.5}}
		for _, sock := range sockets {
			got := readJSON(t, sock.conn)
			if got["from"] != from.name {
				t.Fatalf("%s: next frame is not the one %s sent: %v", sock.name, from.name, got)
			}
			assertSameJSON(t, got, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := python(ctx, st, layerEnv, "e2e/group_publish.py", "room_mixed", fmt.Sprint(mixedFleetMessages), "burst").CombinedOutput()
	if err != nil {
		t.Fatalf("python group_publish: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(fmt.Sprintf("PUBLISHED %d", mixedFleetMessages))) {
		t.Fatalf("python group_publish did not report the burst: %s", out)
	}
	for _, sock := range sockets {
		collectBurst(t, sock, mixedFleetMessages)
	}

	// A duplicate of any earlier event would sit before the sentinel, which
	// was published after every socket had the whole burst.
	sentinel := map[string]any{"type": "room.message", "tag": "sentinel"}
	payload, _ := json.Marshal(sentinel)
	if out, err := python(ctx, st, layerEnv, "e2e/channels_peer.py", "group_send", "room_mixed", string(payload)).CombinedOutput(); err != nil {
		t.Fatalf("python group_send: %v\n%s", err, out)
	}
	for _, sock := range sockets {
		got := readJSON(t, sock.conn)
		if got["tag"] != "sentinel" {
			t.Fatalf("%s: extra frame before the sentinel: %v", sock.name, got)
		}
		assertSameJSON(t, got, sentinel)
	}
}

// dialDaphne opens a WebSocket to Daphne and fails the test on error.
func dialDaphne(t *testing.T, addr, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+path, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial daphne %s: %v (HTTP %d)", path, err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// collectBurst reads frames from one socket until events 0..n-1 of the
// burst have all arrived, failing on a duplicate, a frame that is not one
// of them, or a missing one once the hang guard expires.
func collectBurst(t *testing.T, sock fleetSocket, n int) {
	t.Helper()
	seen := make([]bool, n)
	got := 0
	_ = sock.conn.SetReadDeadline(time.Now().Add(mixedFleetBurstWait))
	defer func() { _ = sock.conn.SetReadDeadline(time.Time{}) }()
	for got < n {
		_, data, err := sock.conn.ReadMessage()
		if err != nil {
			t.Fatalf("%s: %d of %d events arrived, missing %v: %v", sock.name, got, n, missingNumbers(seen), err)
		}
		var frame struct {
			Type string `json:"type"`
			Tag  string `json:"tag"`
			N    *int   `json:"n"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&frame); err != nil || frame.Type != "room.message" || frame.Tag != "burst" || frame.N == nil {
			t.Fatalf("%s: unexpected frame during the burst: %s", sock.name, data)
		}
		i := *frame.N
		if i < 0 || i >= n {
			t.Fatalf("%s: event number %d out of range 0..%d", sock.name, i, n-1)
		}
		if seen[i] {
			t.Fatalf("%s: event %d arrived twice", sock.name, i)
		}
		seen[i] = true
		got++
	}
}

// missingNumbers lists the events not yet seen, for the failure message.
func missingNumbers(seen []bool) string {
	var miss []string
	for i, ok := range seen {
		if !ok {
			miss = append(miss, fmt.Sprint(i))
		}
	}
	return "[" + strings.Join(miss, " ") + "]"
}
