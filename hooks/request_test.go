package hooks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func decodeBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func TestRequestEncodeReceive(t *testing.T) {
	r := Request{
		Event: EventReceive, Route: "/ws/chat/project/{project_id:int}/", Path: "/ws/chat/project/7/",
		Handler: "message", Channel: "specific.abc!def", Params: map[string]any{"project_id": int64(7)},
		UserID: "42", Authenticated: true, Frame: map[string]any{"type": "message", "message": "hi"},
	}
	b, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event": "receive", "route": "/ws/chat/project/{project_id:int}/", "path": "/ws/chat/project/7/",
		"params": map[string]any{"project_id": 7.0}, "user": map[string]any{"id": "42", "authenticated": true},
		"channel": "specific.abc!def", "handler": "message",
		"frame": map[string]any{"type": "message", "message": "hi"},
	}
	if got := decodeBody(t, b); !reflect.DeepEqual(got, want) {
		t.Fatalf("body\n got %v\nwant %v", got, want)
	}
}

func TestRequestEncodeDefaults(t *testing.T) {
	// Anonymous authorize: id is null, params {}, and no handler or frame.
	b, err := (&Request{Event: EventAuthorize, Route: "/ws/x/", Path: "/ws/x/"}).encode()
	if err != nil {
		t.Fatal(err)
	}
	got := decodeBody(t, b)
	want := map[string]any{
		"event": "authorize", "route": "/ws/x/", "path": "/ws/x/", "params": map[string]any{},
		"user": map[string]any{"id": nil, "authenticated": false}, "channel": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body\n got %v\nwant %v", got, want)
	}
	// A receive event always has handler and frame, even empty ones.
	b, err = (&Request{Event: EventReceive}).encode()
	if err != nil {
		t.Fatal(err)
	}
	got = decodeBody(t, b)
	if got["handler"] != "" || !reflect.DeepEqual(got["frame"], map[string]any{}) {
		t.Fatalf("empty receive: %s", b)
	}
}

func TestRequestEncodeErrors(t *testing.T) {
	if _, err := (&Request{Event: "message"}).encode(); err == nil || !strings.Contains(err.Error(), "authorize, connect") {
		t.Fatalf("unknown event: %v", err)
	}
	if _, err := (&Request{Event: EventConnect, Params: map[string]any{"f": func() {}}}).encode(); err == nil {
		t.Fatal("a function parameter must not encode")
	}
}
