package compat

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fasthttp/websocket"
)

const compressionConfig = `
channel_layer: {backend: memory}
websocket:
  read_limit: 4096
  compression: {enabled: true, level: 1, min_size: 64}
routes:
  - path: /ws/demo/{room:slug}/
    auth: none
    groups: ["demo_{room}"]
    receive:
      default:
        group_send: {group: "demo_{room}", forward_frame: true, event: {type: demo.message}}
`

// countingConn counts the bytes a client reads off the wire.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestPermessageDeflate: compression is negotiated, large frames cross the
// wire deflated and arrive intact, and a small compressed frame that
// inflates past read_limit (an inflate bomb) closes only its own socket
// with 1009.
func TestPermessageDeflate(t *testing.T) {
	s := startSidecar(t, writeConfig(t, compressionConfig))
	var wire atomic.Int64
	d := websocket.Dialer{
		EnableCompression: true,
		NetDial: func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			return countingConn{Conn: c, read: &wire}, err
		},
	}
	a, resp, err := d.Dial(s.wsURL("/ws/demo/z/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("compression not negotiated: %q", ext)
	}
	plain := s.dial(t, "/ws/demo/z/", nil) // offers no compression

	text := strings.Repeat("compressible text ", 200) // 3,600 bytes
	writeJSON(t, plain, map[string]any{"text": text})
	before := wire.Load()
	got := readJSON(t, a)
	if got["text"] != text {
		t.Fatal("compressed frame arrived changed")
	}
	if n := wire.Load() - before; n > 600 {
		t.Fatalf("a %d-byte frame took %d bytes on the wire: not compressed", len(text), n)
	}
	if got := readJSON(t, plain); got["text"] != text {
		t.Fatal("uncompressed client got a different frame")
	}

	bomb := `{"text":"` + strings.Repeat("a", 100_000) + `"}`
	if err := a.WriteMessage(websocket.TextMessage, []byte(bomb)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err = a.ReadMessage(); err != nil {
			break
		}
	}
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("inflate bomb: want close 1009, got %v", err)
	}
	writeJSON(t, plain, map[string]any{"text": "neighbour fine"})
	if got := readJSON(t, plain); got["text"] != "neighbour fine" {
		t.Fatalf("neighbour affected: %v", got)
	}
}
