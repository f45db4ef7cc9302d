package compat

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const testSecretKey = "django-insecure-e2e-#s3cret&key!for:tests"

// mint asks the real Django and simplejwt for credentials; each op is as
// compat/python/auth/mint.py documents.
func mint(t *testing.T, st testenv.PyStack, ops ...map[string]any) []string {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"secret_key": testSecretKey, "session_cookie_age": 1209600, "ops": ops})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := python(ctx, st, nil, "auth/mint.py")
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mint.py: %v", err)
	}
	var res struct {
		Results []struct {
			Value string `json:"value"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("mint.py output %q: %v", out, err)
	}
	vals := make([]string, len(res.Results))
	for i, r := range res.Results {
		vals[i] = r.Value
	}
	return vals
}

const authConfig = `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
  token_subprotocol: bearer
channel_layer: {backend: memory}
routes:
  - path: /ws/private/
    auth: required
    groups: ["user_{user.id}"]
    on_connect:
      - send: {type: welcome, user_id: "{user.id}"}
  - path: /ws/public/
    auth: optional
    on_connect:
      - send: {type: welcome, user_id: "{user.id}", authenticated: "{user.is_authenticated}"}
`

// TestRealDjangoCredentials: tokens minted by the real simplejwt and
// cookies made by the real signed_cookies engine let the right user in;
// expired, tampered and wrong-key ones get HTTP 403.
func TestRealDjangoCredentials(t *testing.T) {
	forEachStack(t, realDjangoCredentials)
}

func realDjangoCredentials(t *testing.T, st testenv.PyStack) {
	now := time.Now().Unix()
	v := mint(t, st,
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now - 3600, "lifetime": 300, "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now, "key": "not-the-secret-key", "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now, "class": "refresh", "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now, "algorithm": "none", "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_session", "at": now, "data": map[string]any{
			"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": strings.Repeat("a", 64)}},
		map[string]any{"op": "mint_session", "at": now - 1209600 - 60, "data": map[string]any{
			"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"}},
		map[string]any{"op": "mint_session", "at": now, "key": "not-the-secret-key", "data": map[string]any{"_auth_user_id": "42"}},
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": "9"}},
	)
	if len(v) != 9 {
		t.Fatalf("mint.py gave %d results", len(v))
	}
	token, expired, wrongKey, refresh, algNone, cookie, oldCookie, wrongKeyCookie, stringID := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
	tampered := token[:len(token)-4] + flip(token[len(token)-4:])
	tamperedCookie := strings.Replace(cookie, ":", "x:", 1)

	s := startSidecar(t, writeConfig(t, authConfig), "DJANGO_SECRET_KEY="+testSecretKey)
	accepted := []struct {
		name   string
		path   string
		header http.Header
		userID string
	}{
		{"token in query", "/ws/private/?token=" + token, nil, "7"},
		{"bearer header", "/ws/private/", http.Header{"Authorization": {"Bearer " + token}}, "7"},
		{"string user_id", "/ws/private/?token=" + stringID, nil, "9"},
		{"session cookie", "/ws/private/", http.Header{"Cookie": {"csrftoken=x; sessionid=" + cookie}}, "42"},
	}
	for _, c := range accepted {
		t.Run("accepts "+c.name, func(t *testing.T) {
			ws := s.dial(t, c.path, c.header)
			got := readJSON(t, ws)
			if got["type"] != "welcome" || jsonString(got["user_id"]) != c.userID {
				t.Fatalf("got %v, want user %s", got, c.userID)
			}
		})
	}
	t.Run("accepts token in subprotocol and echoes only the marker", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{"bearer", token}}
		ws, resp, err := d.Dial(s.wsURL("/ws/private/"), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer ws.Close()
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "bearer" {
			t.Fatalf("selected subprotocol %q, want bearer", got)
		}
		if got := readJSON(t, ws); jsonString(got["user_id"]) != "7" {
			t.Fatalf("got %v", got)
		}
	})
	refused := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"no credential", "/ws/private/", nil},
		{"expired token", "/ws/private/?token=" + expired, nil},
		{"tampered token", "/ws/private/?token=" + tampered, nil},
		{"wrong key token", "/ws/private/?token=" + wrongKey, nil},
		{"refresh token", "/ws/private/?token=" + refresh, nil},
		{"alg none token", "/ws/private/?token=" + algNone, nil},
		{"expired cookie", "/ws/private/", http.Header{"Cookie": {"sessionid=" + oldCookie}}},
		{"tampered cookie", "/ws/private/", http.Header{"Cookie": {"sessionid=" + tamperedCookie}}},
		{"wrong key cookie", "/ws/private/", http.Header{"Cookie": {"sessionid=" + wrongKeyCookie}}},
	}
	for _, c := range refused {
		t.Run("refuses "+c.name, func(t *testing.T) {
			if st := s.dialStatus(t, c.path, c.header); st != http.StatusForbidden {
				t.Fatalf("status %d, want 403", st)
			}
		})
	}
	t.Run("optional route admits anonymous", func(t *testing.T) {
		ws := s.dial(t, "/ws/public/?token="+expired, nil)
		got := readJSON(t, ws)
		if got["user_id"] != nil || got["authenticated"] != false {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("failures are counted by reason", func(t *testing.T) {
		_, body, _ := httpGet(t, s.url("/metrics"))
		if !strings.Contains(body, "sidecar_auth_failures_total{reason=") || !strings.Contains(body, `sidecar_handshakes_rejected_total{reason="auth_missing"} 1`) {
			t.Fatalf("auth metrics missing:\n%s", grepLines(body, "sidecar_"))
		}
	})
	if logs := s.logs.String(); strings.Contains(logs, token[:40]) || strings.Contains(logs, cookie[:40]) || strings.Contains(logs, testSecretKey) {
		t.Fatal("a credential or the secret key appears in the logs")
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func jsonString(v any) string {
	if n, ok := v.(json.Number); ok {
		return n.String()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
