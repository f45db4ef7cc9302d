package compat

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const sessionCacheConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.cache
  session_cache:
    backend: ${CACHE_BACKEND}
    location: ${SESSION_REDIS_URL}
    key_prefix: shop
    version: 2
  recheck_cache_ttl: 200ms
channel_layer: {backend: memory}
routes:
  - path: /ws/chat/
    auth: required
    receive:
      discriminator: type
      handlers:
        message:
          critical: true
          send: {type: message, text: "{msg.text}"}
        typing:
          send: {type: typing}
`

// djangoSessions drives compat/python/auth/session_peer.py: the real
// Django logs users in and out through its real cache session engine.
type djangoSessions struct {
	t   *testing.T
	enc *json.Encoder
	out *bufio.Scanner
}

func startDjangoSessions(t *testing.T, st testenv.PyStack, settings map[string]any) *djangoSessions {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := python(ctx, st, nil, filepath.Join("auth", "session_peer.py"))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("session_peer.py stderr:\n%s", stderr.String())
		}
	})
	d := &djangoSessions{t: t, enc: json.NewEncoder(in), out: bufio.NewScanner(out)}
	if ready := d.do(settings); ready["ready"] != true {
		t.Fatalf("session_peer.py: %v\n%s", ready, stderr.String())
	}
	return d
}

func (d *djangoSessions) do(op map[string]any) map[string]any {
	d.t.Helper()
	if err := d.enc.Encode(op); err != nil {
		d.t.Fatal(err)
	}
	if !d.out.Scan() {
		d.t.Fatalf("session_peer.py exited: %v", d.out.Err())
	}
	var m map[string]any
	if err := json.Unmarshal(d.out.Bytes(), &m); err != nil || m["error"] != nil {
		d.t.Fatalf("session_peer.py answered %s", d.out.Bytes())
	}
	return m
}

// TestCacheSessionsLogoutClosesOnCriticalFrame: a user logged in by the
// real Django, whose session the real cache backend keeps in Redis
// (django-redis on Django 3.2, Django's RedisCache on 5.2), connects with
// the session cookie; once Django logs the user out, the next critical
// frame closes the socket with 4001.
func TestCacheSessionsLogoutClosesOnCriticalFrame(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		backend := "django.core.cache.backends.redis.RedisCache"
		if st.Name == testenv.StackDebian12 {
			testenv.RequirePython(t, "django_redis")
			backend = "django_redis.cache.RedisCache"
		}
		rd := testenv.StartRedis(t)
		url := "redis://" + rd.Addr() + "/3"
		django := startDjangoSessions(t, st, map[string]any{
			"mode": "inline", "secret_key": testSecretKey, "db_path": filepath.Join(t.TempDir(), "db.sqlite3"),
			"caches": map[string]any{"default": map[string]any{
				"BACKEND": backend, "LOCATION": url, "KEY_PREFIX": "shop", "VERSION": 2,
			}},
			"session_engine": "django.contrib.sessions.backends.cache",
		})
		alice := django.do(map[string]any{"op": "login", "username": "alice"})
		bob := django.do(map[string]any{"op": "login", "username": "bob"})

		s := startSidecar(t, writeConfig(t, sessionCacheConfig),
			"DJANGO_SECRET_KEY="+testSecretKey, "CACHE_BACKEND="+backend, "SESSION_REDIS_URL="+url)
		cookie := func(m map[string]any) http.Header {
			return http.Header{"Cookie": {"csrftoken=abc; sessionid=" + m["session_key"].(string)}}
		}
		if code := s.dialStatus(t, "/ws/chat/", http.Header{"Cookie": {"sessionid=0123456789abcdefghijklmnopqrstuv"}}); code != http.StatusForbidden {
			t.Fatalf("a session Django never issued: HTTP %d, want 403", code)
		}
		a := s.dial(t, "/ws/chat/", cookie(alice))
		b := s.dial(t, "/ws/chat/", cookie(bob))
		writeJSON(t, a, map[string]any{"type": "message", "text": "hello"})
		if got := readJSON(t, a); got["text"] != "hello" {
			t.Fatalf("got %v", got)
		}

		django.do(map[string]any{"op": "logout", "session_key": alice["session_key"]})
		time.Sleep(300 * time.Millisecond) // past recheck_cache_ttl

		writeJSON(t, a, map[string]any{"type": "typing"})
		if got := readJSON(t, a); got["type"] != "typing" {
			t.Fatalf("a non-critical frame is not re-checked: got %v", got)
		}
		writeJSON(t, a, map[string]any{"type": "message", "text": "after logout"})
		_ = a.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, data, err := a.ReadMessage()
		var ce *websocket.CloseError
		if err == nil || !asCloseError(err, &ce) || ce.Code != 4001 || ce.Text != "session_not_found" {
			t.Fatalf("want close 4001 session_not_found, got %v %s", err, data)
		}
		// Bob is still logged in.
		writeJSON(t, b, map[string]any{"type": "message", "text": "still here"})
		if got := readJSON(t, b); got["text"] != "still here" {
			t.Fatalf("bob: got %v", got)
		}
		if code := s.dialStatus(t, "/ws/chat/", cookie(alice)); code != http.StatusForbidden {
			t.Fatalf("reconnect after logout: HTTP %d, want 403", code)
		}
	})
}
