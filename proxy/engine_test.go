package proxy

import (
	"testing"
)

func TestReceiveOptions(t *testing.T) {
	layer := newCountingLayer()
	s := testServer(t, layer, RouteConfig{
		Path: "/ws/r/", Auth: AuthNone,
		Receive: ReceiveConfig{
			Discriminator: "type", DefaultType: "message", Unknown: "ignore",
			InvalidFrame: map[string]any{"type": "error", "message": "Invalid JSON format"},
			Handlers: map[string]ActionConfig{
				"message": {Send: map[string]any{"type": "echo", "text": "{msg.text}"}},
			},
		},
	})
	c := testConn(s, s.routes[0])
	c.onFrame([]byte(`{"text":"no type means message"}`))
	c.onFrame([]byte(`{"type":"other"}`))
	c.onFrame([]byte(`not json`))
	got := takeQueued(c)
	if len(got) != 2 {
		t.Fatalf("want 2 frames (echo, invalid), got %d", len(got))
	}
	if string(got[0].data) != `{"text":"no type means message","type":"echo"}` {
		t.Fatalf("default_type: %s", got[0].data)
	}
	if string(got[1].data) != `{"message":"Invalid JSON format","type":"error"}` {
		t.Fatalf("invalid_frame: %s", got[1].data)
	}
}
