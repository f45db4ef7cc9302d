package compat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// TestHTTPPassthroughToDjango runs the built binary in front of a real
// Django server and checks that status, body, cookies and headers survive
// in both directions, and that WebSocket routes still work beside it.
func TestHTTPPassthroughToDjango(t *testing.T) {
	forEachStack(t, httpPassthroughToDjango)
}

func httpPassthroughToDjango(t *testing.T, st testenv.PyStack) {
	django := testenv.StartDjango(t, st.Env...)
	s := startSidecar(t, "", "SIDECAR_UPSTREAM="+django)

	t.Run("status body cookies headers", func(t *testing.T) {
		resp, err := http.Get(s.url("/cookies/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 201 || string(body) != "cookies set\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if resp.Header.Get("X-Refsite-Custom") != "custom value" {
			t.Fatalf("custom header lost: %v", resp.Header)
		}
		sc := resp.Header.Values("Set-Cookie")
		if len(sc) != 2 || !strings.HasPrefix(sc[0], "first=one") || !strings.Contains(sc[1], "second=two") || !strings.Contains(sc[1], "HttpOnly") {
			t.Fatalf("Set-Cookie headers: %q", sc)
		}
	})

	t.Run("request reaches django intact", func(t *testing.T) {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		req, _ := http.NewRequest("POST", s.url("/echo/a/b/?x=1&x=2&y=%E2%9C%93"), bytes.NewReader(payload))
		req.Header.Set("Cookie", "sessionid=abc; csrftoken=def")
		req.Header.Set("X-Custom", "kept")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var echo struct {
			Method     string              `json:"method"`
			Path       string              `json:"path"`
			Query      map[string][]string `json:"query"`
			Headers    map[string]string   `json:"headers"`
			Cookies    map[string]string   `json:"cookies"`
			BodyLength int                 `json:"body_length"`
			BodySHA256 string              `json:"body_sha256"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(payload)
		if echo.Method != "POST" || echo.Path != "/echo/a/b/" || len(echo.Query["x"]) != 2 || echo.Query["y"][0] != "✓" {
			t.Fatalf("request line changed: %+v", echo)
		}
		if echo.Cookies["sessionid"] != "abc" || echo.Cookies["csrftoken"] != "def" || echo.Headers["X-Custom"] != "kept" {
			t.Fatalf("headers or cookies lost: %+v", echo)
		}
		if echo.BodyLength != len(payload) || echo.BodySHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("body changed: %d bytes, %s", echo.BodyLength, echo.BodySHA256)
		}
		if echo.Headers["X-Forwarded-For"] != "127.0.0.1" || echo.Headers["X-Forwarded-Proto"] != "http" || echo.Headers["X-Forwarded-Host"] != s.addr {
			t.Fatalf("X-Forwarded-*: %v", echo.Headers)
		}
	})

	t.Run("websocket routes beside the proxy", func(t *testing.T) {
		ws := s.dial(t, "/ws/demo/p/", nil)
		writeJSON(t, ws, map[string]any{"text": "ws still served"})
		if got := readJSON(t, ws); got["text"] != "ws still served" {
			t.Fatalf("got %v", got)
		}
	})
}

// TestUpstreamDownGives502: a dead Django gives a clear 502 and the
// WebSocket side keeps working.
func TestUpstreamDownGives502(t *testing.T) {
	dead := "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	s := startSidecar(t, "", "SIDECAR_UPSTREAM="+dead)
	status, body, _ := httpGet(t, s.url("/anything/"))
	if status != http.StatusBadGateway || !strings.Contains(strings.ToLower(body), "upstream") {
		t.Fatalf("got %d %q", status, body)
	}
	ws := s.dial(t, "/ws/demo/p/", nil)
	writeJSON(t, ws, map[string]any{"text": "alive"})
	if got := readJSON(t, ws); got["text"] != "alive" {
		t.Fatalf("got %v", got)
	}
}
