package compat

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const controlConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
channel_layer:
  backend: redis
  hosts: ["${SIDECAR_REDIS_URL}"]
routes:
  - path: /ws/private/
    auth: required
    on_connect:
      - send: {type: welcome}
`

// TestDjangoControlEvents: Django steers sockets with control events sent
// to the per-user group: a raw frame, joining a group, and closing every
// socket of the user after a logout.
func TestDjangoControlEvents(t *testing.T) {
	st := testenv.PythonStacks(t)[0]
	now := time.Now().Unix()
	tok := mint(t, st,
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 42}},
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 43}},
	)
	rd := testenv.StartRedis(t)
	s := startSidecar(t, writeConfig(t, controlConfig), "SIDECAR_REDIS_URL="+rd.URL(), "DJANGO_SECRET_KEY="+testSecretKey)
	tab1 := s.dial(t, "/ws/private/?token="+tok[0], nil)
	tab2 := s.dial(t, "/ws/private/?token="+tok[0], nil)
	other := s.dial(t, "/ws/private/?token="+tok[1], nil)
	for _, c := range []*websocket.Conn{tab1, tab2, other} {
		readJSON(t, c) // welcome
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := []string{"REDIS_URL=" + rd.URL()}
	send := func(group, event string) {
		t.Helper()
		if out, err := python(ctx, st, env, "e2e/channels_peer.py", "group_send", group, event).CombinedOutput(); err != nil {
			t.Fatalf("group_send: %v\n%s", err, out)
		}
	}

	send("sidecar.user.42", `{"type":"sidecar.frame","frame":{"type":"notice","text":"hello 42"}}`)
	for _, c := range []*websocket.Conn{tab1, tab2} {
		if got := readJSON(t, c); got["type"] != "notice" || got["text"] != "hello 42" {
			t.Fatalf("raw frame: got %v", got)
		}
	}

	send("sidecar.user.42", `{"type":"sidecar.group_add","group":"project_9"}`)
	// The join runs in the background; publish until the first frame arrives.
	arrived := make(chan map[string]any, 1)
	go func() { arrived <- readJSONNoFail(tab1) }()
	deadline := time.After(20 * time.Second)
poll:
	for {
		send("project_9", `{"type":"project.update","n":1}`)
		select {
		case got := <-arrived:
			if got["type"] != "project.update" {
				t.Fatalf("after group_add: got %v", got)
			}
			break poll
		case <-deadline:
			t.Fatal("the socket never joined project_9")
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The other user got nothing so far: its first frame is its own close.
	send("sidecar.user.42", `{"type":"sidecar.close","code":4001,"reason":"logged out"}`)
	for _, c := range []*websocket.Conn{tab1, tab2} {
		if err := readUntilClose(c); !websocket.IsCloseError(err, 4001) {
			t.Fatalf("want close 4001, got %v", err)
		}
	}
	send("sidecar.user.43", `{"type":"sidecar.close"}`)
	if err := readUntilClose(other); !websocket.IsCloseError(err, 4001) {
		t.Fatalf("other user: want close 4001 as its first event, got %v", err)
	}
}

func readJSONNoFail(c *websocket.Conn) map[string]any {
	var m map[string]any
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.ReadJSON(&m); err != nil {
		return map[string]any{"error": err.Error()}
	}
	return m
}

// readUntilClose reads frames until the connection ends and returns why.
// Frames of the earlier phase (polling) may still be queued.
func readUntilClose(c *websocket.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), "project.update") {
			return errUnexpectedFrame(string(data))
		}
	}
}

type errUnexpectedFrame string

func (e errUnexpectedFrame) Error() string { return "unexpected frame: " + string(e) }
