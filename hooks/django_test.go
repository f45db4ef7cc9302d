package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// djangoNewSecret is listed before testSecret in Django's
// SIDECAR_HOOK_SECRETS, as during a rotation: clients signing with either
// are accepted.
const djangoNewSecret = "the-newest-secret-of-the-rotation"

// TestDjangoHooks calls the hook views of the reference Django project
// (compat/django/refsite/hook_views.py, written with the sidecar_hooks
// helper) through the Go client, on both Python stacks.
func TestDjangoHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Django")
	}
	for _, st := range testenv.PythonStacks(t, "django") {
		t.Run(st.Name, func(t *testing.T) {
			env := append(append([]string(nil), st.Env...), "SIDECAR_HOOK_SECRETS="+djangoNewSecret+","+testSecret)
			t.Logf("Django %s", st.Versions["django"])
			base := testenv.StartDjango(t, env...)
			testDjangoHooks(t, base)
		})
	}
}

func newDjangoClient(t *testing.T, base, secret string, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, Secret: secret, Timeout: timeout}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func projectRequest(event, user string, project int64, frame map[string]any) Request {
	return Request{
		Event: event, Route: "/ws/chat/project/{project_id:int}/", Path: "/ws/chat/project/" + strconv.FormatInt(project, 10) + "/",
		Params: map[string]any{"project_id": project}, UserID: user, Authenticated: user != "",
		Channel: "specific.test!" + user, Handler: "message", Frame: frame,
	}
}

func testDjangoHooks(t *testing.T, base string) {
	ctx := context.Background()
	// Generous: the first requests import Django's views on a busy machine.
	c := newDjangoClient(t, base, testSecret, 20*time.Second)

	t.Run("authorize by project", func(t *testing.T) {
		for _, tc := range []struct {
			user    string
			project int64
			allow   bool
		}{{"1", 7, true}, {"1", 9, true}, {"2", 9, true}, {"2", 7, false}, {"1", 8, false}, {"", 7, false}} {
			r, err := c.Authorize(ctx, "/hooktest/authorize/", projectRequest(EventAuthorize, tc.user, tc.project, nil))
			if err != nil {
				t.Fatalf("user %q project %d: %v", tc.user, tc.project, err)
			}
			if r.Allow == nil || *r.Allow != tc.allow {
				t.Fatalf("user %q project %d: allow %v, want %v", tc.user, tc.project, r.Allow, tc.allow)
			}
		}
		before := c.Stats()
		r, err := c.Authorize(ctx, "/hooktest/authorize/", projectRequest(EventAuthorize, "1", 7, nil))
		if err != nil || r.Denied() {
			t.Fatalf("cached: %+v, %v", r, err)
		}
		if after := c.Stats(); after.Calls != before.Calls || after.CacheHits != before.CacheHits+1 {
			t.Fatalf("the repeat reached Django: before %+v after %+v", before, after)
		}
	})

	t.Run("save message", func(t *testing.T) {
		var last int64
		for i, text := range []string{"  <b>hello</b> & bye ", "second"} {
			r, err := c.Call(ctx, "/hooktest/message/", projectRequest(EventReceive, "1", 7, map[string]any{"type": "message", "message": text}))
			if err != nil {
				t.Fatal(err)
			}
			id, ok := r.Event["message_id"].(int64)
			if !ok || id <= last {
				t.Fatalf("message %d: message_id %#v after %d", i, r.Event["message_id"], last)
			}
			last = id
			if i == 0 && r.Event["message"] != "&lt;b&gt;hello&lt;/b&gt; &amp; bye" {
				t.Fatalf("cleaned text %q", r.Event["message"])
			}
			if r.Event["user_id"] != "1" || r.Event["project_id"] != int64(7) {
				t.Fatalf("event %v", r.Event)
			}
			ts, _ := r.Event["timestamp"].(string)
			if when, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(when).Abs() > time.Hour {
				t.Fatalf("timestamp %q: %v", ts, err)
			}
			want := []map[string]any{{"type": "message_saved", "message_id": id}}
			if !reflect.DeepEqual(r.Reply, want) {
				t.Fatalf("reply %v", r.Reply)
			}
			if r.Error != nil || r.Allow != nil || r.Close != nil {
				t.Fatalf("unexpected keys: %+v", r)
			}
		}
	})

	t.Run("error frames", func(t *testing.T) {
		r, err := c.Call(ctx, "/hooktest/moderate/", projectRequest(EventReceive, "1", 7, map[string]any{"message": "a FORBIDDEN word"}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Error == nil || *r.Error != (ErrorFrame{Error: "forbidden_word", Message: "please rephrase that"}) {
			t.Fatalf("moderate: %+v", r.Error)
		}
		r, err = c.Call(ctx, "/hooktest/moderate/", projectRequest(EventReceive, "1", 7, map[string]any{"message": "fine"}))
		if err != nil || !reflect.DeepEqual(*r, Response{}) {
			t.Fatalf("a fine message: %+v, %v", r, err)
		}
		// HookError raised in the view.
		r, err = c.Call(ctx, "/hooktest/message/", projectRequest(EventReceive, "1", 7, map[string]any{"message": "   "}))
		if err != nil || r.Error == nil || r.Error.Error != "empty_message" || r.Event != nil {
			t.Fatalf("empty message: %+v, %v", r, err)
		}
	})

	t.Run("every key through Django", func(t *testing.T) {
		answer := map[string]any{
			"allow":      false,
			"reply":      []any{map[string]any{"type": "a", "n": 1}, map[string]any{"type": "b", "x": 2.5}},
			"event":      map[string]any{"message_id": 9007199254740993, "nested": map[string]any{"list": []any{1, "two", nil}}},
			"group_send": []any{map[string]any{"group": "chat_project_7", "event": map[string]any{"type": "chat.message", "id": 3}}},
			"join":       []any{"project_7.presence"},
			"leave":      []any{"lobby"},
			"error":      map[string]any{"error": "slow_down", "message": "wait"},
			"close":      map[string]any{"code": 4003, "reason": "bye"},
		}
		r, err := c.Call(ctx, "/hooktest/answer/", projectRequest(EventReceive, "1", 7, map[string]any{"answer": answer}))
		if err != nil {
			t.Fatal(err)
		}
		want := &Response{
			Allow:     new(false),
			Reply:     []map[string]any{{"type": "a", "n": int64(1)}, {"type": "b", "x": 2.5}},
			Event:     map[string]any{"message_id": int64(9007199254740993), "nested": map[string]any{"list": []any{int64(1), "two", nil}}},
			GroupSend: []GroupSend{{Group: "chat_project_7", Event: map[string]any{"type": "chat.message", "id": int64(3)}}},
			Join:      []string{"project_7.presence"},
			Leave:     []string{"lobby"},
			Error:     &ErrorFrame{Error: "slow_down", Message: "wait"},
			Close:     &Close{Code: 4003, Reason: "bye"},
		}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("answer\n got %#v\nwant %#v", r, want)
		}
		// A view's answer that breaks the protocol is a failure, not an
		// action.
		for _, bad := range []map[string]any{
			{"join": []any{"has space"}},
			{"close": map[string]any{"code": 1001}},
			{"group_send": []any{map[string]any{"group": "g", "event": map[string]any{}}}},
			{"reply": []any{"not an object"}},
		} {
			_, err := c.Call(ctx, "/hooktest/answer/", projectRequest(EventReceive, "1", 7, map[string]any{"answer": bad}))
			wantFailure(t, err, KindMalformed, "")
		}
	})

	t.Run("timeout", func(t *testing.T) {
		quick := newDjangoClient(t, base, testSecret, 300*time.Millisecond)
		start := time.Now()
		_, err := quick.Call(ctx, "/hooktest/sleepy/", projectRequest(EventReceive, "1", 7, map[string]any{"seconds": 3}))
		wantFailure(t, err, KindTimeout, "")
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Fatalf("a 300ms timeout took %s", d)
		}
		if _, err := quick.Call(ctx, "/hooktest/sleepy/", projectRequest(EventReceive, "1", 7, map[string]any{"seconds": 0})); err != nil {
			t.Fatalf("a quick answer after a timeout: %v", err)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		// A secret Django does not list.
		wrong := newDjangoClient(t, base, "a-secret-django-never-heard-of", 20*time.Second)
		_, err := wrong.Call(ctx, "/hooktest/authorize/", projectRequest(EventAuthorize, "1", 7, nil))
		if he := wantFailure(t, err, KindStatus, "bad_signature"); he.Status != http.StatusForbidden {
			t.Fatalf("status %d", he.Status)
		}
		// The newest secret of the rotation works too.
		newest := newDjangoClient(t, base, djangoNewSecret, 20*time.Second)
		if r, err := newest.Call(ctx, "/hooktest/authorize/", projectRequest(EventAuthorize, "1", 7, nil)); err != nil || r.Denied() {
			t.Fatalf("newest secret: %+v, %v", r, err)
		}
		// A view limited to some events refuses others with 400.
		_, err = c.Call(ctx, "/hooktest/authorize/", projectRequest(EventConnect, "1", 7, nil))
		wantFailure(t, err, KindStatus, "unexpected_event")
		// A hook path without Django's trailing slash is redirected.
		_, err = c.Call(ctx, "/hooktest/authorize", projectRequest(EventAuthorize, "1", 7, nil))
		wantFailure(t, err, KindStatus, `redirected to "/hooktest/authorize/"`)
		// No such view.
		_, err = c.Call(ctx, "/hooktest/nothing/", projectRequest(EventAuthorize, "1", 7, nil))
		if he := wantFailure(t, err, KindStatus, "got 404"); he.Status != 404 {
			t.Fatalf("status %d", he.Status)
		}
		// A Django view that is not a hook answers JSON the protocol
		// does not know.
		_, err = c.Call(ctx, "/echo/", projectRequest(EventConnect, "1", 7, nil))
		wantFailure(t, err, KindMalformed, "unknown key")
	})

	t.Run("raw signatures", func(t *testing.T) {
		body := []byte(`{"event":"authorize","route":"/ws/chat/project/{project_id:int}/","path":"/ws/chat/project/7/","params":{"project_id":7},"user":{"id":"1","authenticated":true},"channel":""}`)
		now := time.Now().Unix()
		for _, tc := range []struct {
			name, ts, sig string
			body          []byte
			status        int
			code          string
		}{
			{"good", strconv.FormatInt(now, 10), Sign([]byte(testSecret), now, body), body, 200, ""},
			{"wrong signature", strconv.FormatInt(now, 10), Sign([]byte("not-the-secret-at-all"), now, body), body, 403, "bad_signature"},
			{"no signature", strconv.FormatInt(now, 10), "", body, 403, "bad_signature"},
			{"uppercase hex", strconv.FormatInt(now, 10), strings.ToUpper(Sign([]byte(testSecret), now, body)), body, 403, "bad_signature"},
			{"body changed", strconv.FormatInt(now, 10), Sign([]byte(testSecret), now, body), append(body[:len(body)-1:len(body)-1], ` }`...), 403, "bad_signature"},
			{"old timestamp", strconv.FormatInt(now-301, 10), Sign([]byte(testSecret), now-301, body), body, 403, "stale_timestamp"},
			{"future timestamp", strconv.FormatInt(now+400, 10), Sign([]byte(testSecret), now+400, body), body, 403, "stale_timestamp"},
			{"no timestamp", "", Sign([]byte(testSecret), now, body), body, 403, "stale_timestamp"},
			{"signed garbage", strconv.FormatInt(now, 10), Sign([]byte(testSecret), now, []byte("not json")), []byte("not json"), 400, "bad_request"},
		} {
			req, err := http.NewRequest(http.MethodPost, base+"/hooktest/authorize/", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.ts != "" {
				req.Header.Set(HeaderTimestamp, tc.ts)
			}
			if tc.sig != "" {
				req.Header.Set(HeaderSignature, tc.sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: answer is not JSON: %v", tc.name, err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: status %d (%v), want %d", tc.name, resp.StatusCode, got, tc.status)
			}
			if tc.code == "" {
				if got["allow"] != true {
					t.Fatalf("%s: %v", tc.name, got)
				}
			} else if got["error"] != tc.code || got["message"] == "" {
				t.Fatalf("%s: %v, want error %q with a message", tc.name, got, tc.code)
			}
		}
		resp, err := http.Get(base + "/hooktest/authorize/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Fatalf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

// TestPythonHelperUnit runs the sidecar_hooks unit tests
// (compat/python/sidecar_hooks/tests) on both Python stacks.
func TestPythonHelperUnit(t *testing.T) {
	for _, st := range testenv.PythonStacks(t, "django") {
		t.Run(st.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := st.Command(ctx, "-m", "unittest", "discover", "-s", "sidecar_hooks/tests", "-t", ".")
			cmd.Dir = filepath.Join(testenv.RepoRoot(), "compat", "python")
			cmd.Env = append(cmd.Env, "PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("python -m unittest (%s, Django %s): %v\n%s", st.Name, st.Versions["django"], err, out)
			}
			if !bytes.Contains(out, []byte("OK")) {
				t.Fatalf("no OK from unittest:\n%s", out)
			}
			t.Logf("%s", lastLine(out))
		})
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
