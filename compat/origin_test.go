package compat

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// These tests check the handshake's Origin rules of the built binary in
// each mode: an exact websocket.allowed_origins list, Django's
// ALLOWED_HOSTS with Channels' AllowedHostsOriginValidator rules, DEBUG's
// defaults, and the same-host default; each refusal is a 403 counted under
// its own reason.

// originHeaders builds a request header with the given Origin values (none
// for a request without Origin).
func originHeaders(values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add("Origin", v)
	}
	return h
}

// metricValue returns the value of name{reason="reason"} in a /metrics
// body, or 0 when the series is absent.
func metricValue(body, name, reason string) float64 {
	prefix := name + `{reason="` + reason + `"} `
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			v, err := strconv.ParseFloat(strings.TrimPrefix(l, prefix), 64)
			if err == nil {
				return v
			}
		}
	}
	return 0
}

// metricReasons returns every reason label of a counter, with its value.
func metricReasons(body, name string) map[string]float64 {
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(l, name+`{reason="`)
		if !ok {
			continue
		}
		reason, value, ok := strings.Cut(rest, `"} `)
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			out[reason] = v
		}
	}
	return out
}

func scrape(t *testing.T, s *sidecar) string {
	t.Helper()
	st, body, _ := httpGet(t, s.url("/metrics"))
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	return body
}

// logRecords returns the process's JSON log records whose msg is msg.
func logRecords(t *testing.T, s *sidecar, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue // not a log record (Go's race detector, for example)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type originCase struct {
	name    string
	origins []string // nil: no Origin header
	status  int
	reason  string // handshake rejection reason when status is 403
}

// checkOrigins dials path once per case and checks the status, then that
// each rejection reason was counted as often as expected.
func checkOrigins(t *testing.T, s *sidecar, path string, cases []originCase) {
	t.Helper()
	want := map[string]float64{}
	for _, c := range cases {
		if st := s.dialStatus(t, path, originHeaders(c.origins...)); st != c.status {
			t.Errorf("%s (Origin %q): status %d, want %d", c.name, c.origins, st, c.status)
		}
		if c.reason != "" {
			want[c.reason]++
		}
	}
	body := scrape(t, s)
	for reason, n := range want {
		if got := metricValue(body, "sidecar_handshakes_rejected_total", reason); got != n {
			t.Errorf("sidecar_handshakes_rejected_total{reason=%q} = %v, want %v\n%s", reason, got, n, grepLines(body, "sidecar_handshakes_rejected_total"))
		}
	}
	for reason := range metricReasons(body, "sidecar_handshakes_rejected_total") {
		if _, ok := want[reason]; !ok {
			t.Errorf("unexpected rejection reason %q", reason)
		}
	}
}

func TestOriginExactAllowedOrigins(t *testing.T) {
	s := startSidecar(t, writeConfig(t, `
log: {format: json}
websocket:
  allowed_origins: ["https://app.example.com", "http://localhost:3000"]
channel_layer: {backend: memory}
routes:
  - path: /ws/public/
    auth: none
`))
	checkOrigins(t, s, "/ws/public/", []originCase{
		{"listed origin", []string{"https://app.example.com"}, 101, ""},
		{"listed origin, other case, default port", []string{"HTTPS://App.Example.com:443"}, 101, ""},
		{"second listed origin", []string{"http://localhost:3000"}, 101, ""},
		{"hostile site", []string{"https://evil.example"}, 403, "origin_not_allowed"},
		{"other scheme", []string{"http://app.example.com"}, 403, "origin_not_allowed"},
		{"other port", []string{"https://app.example.com:8443"}, 403, "origin_not_allowed"},
		{"subdomain", []string{"https://x.app.example.com"}, 403, "origin_not_allowed"},
		{"lookalike suffix", []string{"https://app.example.com.evil.example"}, 403, "origin_not_allowed"},
		{"null origin (sandboxed frame, file)", []string{"null"}, 403, "origin_not_allowed"},
		{"no Origin", nil, 403, "origin_missing"},
		{"two Origin headers, good last", []string{"https://evil.example", "https://app.example.com"}, 403, "origin_multiple"},
		{"two Origin headers, good first", []string{"https://app.example.com", "https://evil.example"}, 403, "origin_multiple"},
		{"tab inside (Python would strip it)", []string{"https://app.\texample.com"}, 403, "origin_malformed"},
	})
	refused := logRecords(t, s, "websocket handshake refused")
	if len(refused) != 10 {
		t.Errorf("%d handshake refusals logged, want 10", len(refused))
	}
	for _, r := range refused {
		if !strings.HasPrefix(fmt.Sprint(r["reason"]), "origin_") || !strings.HasPrefix(fmt.Sprint(r["remote"]), "127.0.0.1:") {
			t.Errorf("refusal logged without its reason or remote address: %v", r)
		}
	}
	if modes := logRecords(t, s, "websocket origin check"); len(modes) == 0 || modes[0]["mode"] != "allowed_origins" {
		t.Errorf("startup does not log the origin mode: %v", modes)
	}
}

// TestOriginAllowedHostsLikeChannels replays the handshakes that Daphne
// answered behind AllowedHostsOriginValidator(AuthMiddlewareStack(...))
// with ALLOWED_HOSTS = ["example.com", ".example.org"] and signed-cookie
// sessions, with cookies the real Django makes.
func TestOriginAllowedHostsLikeChannels(t *testing.T) {
	forEachStack(t, func(t *testing.T, st testenv.PyStack) {
		now := time.Now().Unix()
		login := map[string]any{"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": strings.Repeat("a", 64)}
		v := mint(t, st, map[string]any{"op": "mint_session", "at": now, "data": login})
		cookie := "sessionid=" + v[0]
		tampered := cookie[:len(cookie)-2] + "xx"
		s := startSidecar(t, writeConfig(t, `
log: {format: json}
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
  allowed_hosts: ["example.com", ".example.org"]
channel_layer: {backend: memory}
routes:
  - path: /ws/room/
    auth: required
    on_connect:
      - send: {type: hello, user: "{user.id}"}
`), "DJANGO_SECRET_KEY="+testSecretKey)
		h := func(cookie string, origins ...string) http.Header {
			hd := originHeaders(origins...)
			if cookie != "" {
				hd.Set("Cookie", cookie)
			}
			return hd
		}
		cases := []struct {
			name   string
			header http.Header
			status int
			reason string
		}{
			{"good origin, valid cookie", h(cookie, "https://example.com"), 101, ""},
			{"subdomain origin allowed by the dot pattern", h(cookie, "https://x.example.org"), 101, ""},
			{"pattern without scheme ignores scheme and port", h(cookie, "http://example.com:8000"), 101, ""},
			{"cross-site origin, valid cookie", h(cookie, "https://evil.net"), 403, "origin_not_allowed"},
			{"missing origin, valid cookie", h(cookie), 403, "origin_missing"},
			{"lookalike suffix", h(cookie, "https://evilexample.org"), 403, "origin_not_allowed"},
			{"unparsable origin (Channels raises)", h(cookie, "http://[::1"), 403, "origin_malformed"},
			{"good origin, no cookie", h("", "https://example.com"), 403, "auth_missing"},
			{"good origin, tampered cookie", h(tampered, "https://example.com"), 403, "auth_session_bad_signature"},
		}
		for _, c := range cases {
			if got := s.dialStatus(t, "/ws/room/", c.header); got != c.status {
				t.Errorf("%s: status %d, want %d", c.name, got, c.status)
			}
		}
		ws := s.dial(t, "/ws/room/", h(cookie, "https://example.com"))
		if got := readJSON(t, ws); jsonString(got["user"]) != "42" {
			t.Errorf("first frame %v, want user 42", got)
		}
		want := map[string]float64{}
		for _, c := range cases {
			if c.reason != "" {
				want[c.reason]++
			}
		}
		body := scrape(t, s)
		for reason, n := range want {
			if got := metricValue(body, "sidecar_handshakes_rejected_total", reason); got != n {
				t.Errorf("%s counted %v times, want %v\n%s", reason, got, n, grepLines(body, "sidecar_handshakes_rejected_total"))
			}
		}
		warned := false
		for _, w := range logRecords(t, s, "websocket origin check") {
			warned = warned || strings.Contains(fmt.Sprint(w["warning"]), `".example.org" accepts every subdomain`)
		}
		if !warned {
			t.Error("no startup warning about the .example.org pattern")
		}
	})
}

func TestOriginDebugDefaults(t *testing.T) {
	s := startSidecar(t, writeConfig(t, `
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
  debug: true
channel_layer: {backend: memory}
routes:
  - path: /ws/public/
    auth: optional
`), "DJANGO_SECRET_KEY="+testSecretKey)
	checkOrigins(t, s, "/ws/public/", []originCase{
		{"localhost dev server", []string{"http://localhost:3000"}, 101, ""},
		{"127.0.0.1", []string{"http://127.0.0.1:8000"}, 101, ""},
		{"[::1]", []string{"http://[::1]:8000"}, 101, ""},
		{"any other site", []string{"https://example.com"}, 403, "origin_not_allowed"},
		{"no Origin", nil, 403, "origin_missing"},
	})
}

func TestOriginSameHostDefault(t *testing.T) {
	s := startSidecar(t, writeConfig(t, `
channel_layer: {backend: memory}
routes:
  - path: /ws/public/
    auth: none
`))
	checkOrigins(t, s, "/ws/public/", []originCase{
		{"same host and port", []string{"http://" + s.addr}, 101, ""},
		{"no Origin (not a browser)", nil, 101, ""},
		{"same host, other port", []string{"http://127.0.0.1:1"}, 403, "origin_not_allowed"},
		{"hostile site", []string{"https://evil.example"}, 403, "origin_not_allowed"},
		{"two Origin headers", []string{"http://" + s.addr, "http://" + s.addr}, 403, "origin_multiple"},
	})
}

// TestOriginBadSettingsAreErrors: an allowed_origins entry that is not an
// origin stops the server at startup, and an ALLOWED_HOSTS entry that
// Channels would fail on is refused by the check command, both naming the
// entry.
func TestOriginBadSettingsAreErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := writeConfig(t, `
websocket:
  allowed_origins: ["https://app.example.com", "*.example.com"]
channel_layer: {backend: memory}
routes:
  - path: /ws/public/
    auth: none
`)
	cmd := exec.CommandContext(ctx, sidecarBinary(t), "--config", cfg)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SIDECAR_LISTEN=127.0.0.1:%d", testenv.FreePort(t)), "SIDECAR_CONFIG=")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("server started with a bad allowed_origins entry (err %v):\n%s", err, out)
	}
	if !strings.Contains(string(out), `allowed_origins[1] \"*.example.com\"`) && !strings.Contains(string(out), `allowed_origins[1] "*.example.com"`) {
		t.Errorf("error does not name the entry:\n%s", out)
	}

	cfg = writeConfig(t, `
auth:
  secret_key: s3cret
  session_engine: django.contrib.sessions.backends.signed_cookies
  allowed_hosts: ["example.com", "[::1"]
channel_layer: {backend: memory}
routes:
  - path: /ws/public/
    auth: optional
`)
	out, err = exec.CommandContext(ctx, sidecarBinary(t), "check", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "allowed_hosts[1]") {
		t.Errorf("check accepted a bad allowed_hosts entry (err %v):\n%s", err, out)
	}
}
