package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestClient returns a Client for srv with small limits; edit changes
// the config first.
func newTestClient(t *testing.T, srv *httptest.Server, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: srv.URL, Secret: testSecret, Timeout: 2 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// answer returns a handler that writes body with status 200.
func answer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// wantFailure checks that err is an *Error of kind and wraps ErrHookFailed.
func wantFailure(t *testing.T, err error, kind FailureKind, inMsg string) *Error {
	t.Helper()
	var he *Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T) is not a *hooks.Error", err, err)
	}
	if !errors.Is(err, ErrHookFailed) {
		t.Fatalf("error %v does not wrap ErrHookFailed", err)
	}
	if he.Kind != kind {
		t.Fatalf("kind %s, want %s: %v", he.Kind, kind, err)
	}
	if !strings.Contains(err.Error(), inMsg) {
		t.Fatalf("error %q does not mention %q", err, inMsg)
	}
	return he
}

func TestCallSignedRequest(t *testing.T) {
	type seen struct {
		method, path, ctype, ua string
		body                    map[string]any
		verifyErr               error
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		s := seen{method: r.Method, path: r.URL.Path, ctype: r.Header.Get("Content-Type"), ua: r.Header.Get("User-Agent")}
		s.verifyErr = VerifySignature([][]byte{[]byte("old-secret-still-listed"), []byte(testSecret)},
			r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), raw, time.Now())
		_ = json.Unmarshal(raw, &s.body)
		got <- s
		answer(`{"reply": [{"type": "ack", "message_id": 5}], "event": {"message_id": 5, "message": "hi"}}`)(w, r)
	}))
	defer srv.Close()
	// A trailing slash on the base URL must not double the path's.
	c := newTestClient(t, srv, func(cfg *Config) { cfg.BaseURL += "/" })

	resp, err := c.Call(context.Background(), "/internal/ws/chat/message/", Request{
		Event: EventReceive, Route: "/ws/chat/{room}/", Path: "/ws/chat/lobby/", Handler: "message",
		Channel: "specific.x!y", Params: map[string]any{"room": "lobby"}, UserID: "3", Authenticated: true,
		Frame: map[string]any{"type": "message", "message": "hi"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.verifyErr != nil {
		t.Fatalf("signature: %v", s.verifyErr)
	}
	if s.method != http.MethodPost || s.path != "/internal/ws/chat/message/" || s.ctype != "application/json" || !strings.HasPrefix(s.ua, "channels-sidecar") {
		t.Fatalf("request: %+v", s)
	}
	wantBody := map[string]any{
		"event": "receive", "route": "/ws/chat/{room}/", "path": "/ws/chat/lobby/", "params": map[string]any{"room": "lobby"},
		"user": map[string]any{"id": "3", "authenticated": true}, "channel": "specific.x!y", "handler": "message",
		"frame": map[string]any{"type": "message", "message": "hi"},
	}
	if !reflect.DeepEqual(s.body, wantBody) {
		t.Fatalf("body\n got %v\nwant %v", s.body, wantBody)
	}
	if !reflect.DeepEqual(resp.Reply, []map[string]any{{"type": "ack", "message_id": int64(5)}}) || resp.Event["message"] != "hi" {
		t.Fatalf("response: %+v", resp)
	}
	st := c.Stats()
	if st.Calls != 1 || st.InFlight != 0 || st.Failures[KindStatus] != 0 || len(st.Failures) != len(FailureKinds()) {
		t.Fatalf("stats: %+v", st)
	}
}

// verifyingServer refuses, with 403 as the Django helper does, any call
// whose signature or timestamp does not check out against the real clock.
func verifyingServer(t *testing.T, secret string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if err := VerifySignature([][]byte{[]byte(secret)}, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), raw, time.Now()); err != nil {
			http.Error(w, `{"error": "bad_signature", "message": "`+err.Error()+`"}`, http.StatusForbidden)
			return
		}
		answer(`{"allow": true}`)(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCallTimestamp(t *testing.T) {
	srv := verifyingServer(t, testSecret)
	c := newTestClient(t, srv, nil)
	if _, err := c.Call(context.Background(), "/hook/", Request{Event: EventConnect}); err != nil {
		t.Fatalf("fresh timestamp: %v", err)
	}
	// A sidecar clock ten minutes slow signs with a timestamp the
	// receiver refuses as a possible replay.
	c.now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	_, err := c.Call(context.Background(), "/hook/", Request{Event: EventConnect})
	he := wantFailure(t, err, KindStatus, "stale hook timestamp")
	if he.Status != http.StatusForbidden {
		t.Fatalf("status %d", he.Status)
	}
}

func TestCallWrongSecret(t *testing.T) {
	srv := verifyingServer(t, "the-secret-django-has-configured")
	c := newTestClient(t, srv, nil)
	_, err := c.Call(context.Background(), "/hook/", Request{Event: EventConnect})
	wantFailure(t, err, KindStatus, "bad_signature")
	if got := c.Stats().Failures[KindStatus]; got != 1 {
		t.Fatalf("status failures %d", got)
	}
}

func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, srv, func(cfg *Config) { cfg.Timeout = 150 * time.Millisecond })
	start := time.Now()
	_, err := c.Call(context.Background(), "/slow/", Request{Event: EventConnect})
	wantFailure(t, err, KindTimeout, "timeout")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the call took %s with a 150ms timeout", d)
	}
	var he *Error
	errors.As(err, &he)
	if he.ClientMessage() != "the server did not answer in time" {
		t.Fatalf("client message %q", he.ClientMessage())
	}
	if st := c.Stats(); st.Failures[KindTimeout] != 1 || st.InFlight != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestCallCanceledByCaller(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := c.Call(ctx, "/hook/", Request{Event: EventDisconnect})
	wantFailure(t, err, KindCanceled, "canceled")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v does not wrap context.Canceled", err)
	}
}

func TestCallBoundedInFlight(t *testing.T) {
	var running, most atomic.Int32
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		running.Add(-1)
		answer(`{}`)(w, r)
	}))
	defer srv.Close()
	c := newTestClient(t, srv, func(cfg *Config) { cfg.MaxInFlight = 2; cfg.Timeout = 5 * time.Second })

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	call := func() {
		defer wg.Done()
		_, err := c.Call(context.Background(), "/hook/", Request{Event: EventConnect})
		errs <- err
	}
	wg.Add(2)
	go call()
	go call()
	<-entered
	<-entered
	if got := c.Stats().InFlight; got != 2 {
		t.Fatalf("in flight %d, want 2", got)
	}

	// A third caller waits for a slot as long as its context allows, then
	// fails as busy without reaching Django.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := c.Call(ctx, "/hook/", Request{Event: EventConnect})
	cancel()
	he := wantFailure(t, err, KindBusy, "all 2 call slots stayed busy")
	if he.ClientMessage() != "the server is busy; try again" {
		t.Fatalf("client message %q", he.ClientMessage())
	}

	// A fourth caller with time to wait gets a slot once one frees up.
	wg.Add(1)
	go call()
	time.Sleep(50 * time.Millisecond)
	if most.Load() != 2 {
		t.Fatalf("Django saw %d calls at once, want at most 2", most.Load())
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a waiting call failed: %v", err)
		}
	}
	if most.Load() != 2 {
		t.Fatalf("Django saw %d calls at once, want at most 2", most.Load())
	}
	st := c.Stats()
	if st.Calls != 4 || st.Failures[KindBusy] != 1 || st.InFlight != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestCallStatusFailures(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/boom/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "<h1>Server Error (500)</h1>\n"+strings.Repeat("x", 500))
	})
	mux.HandleFunc("/no-slash", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/no-slash/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/empty/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newTestClient(t, srv, nil)

	_, err := c.Call(context.Background(), "/boom/", Request{Event: EventConnect})
	he := wantFailure(t, err, KindStatus, "want 200, got 500: <h1>Server Error (500)</h1>")
	if he.Status != 500 || he.Path != "/boom/" || len(err.Error()) > 400 {
		t.Fatalf("error: %+v (%d bytes)", he, len(err.Error()))
	}
	if he.ClientMessage() != "the server could not handle this request" || strings.Contains(he.ClientMessage(), "500") {
		t.Fatalf("client message %q", he.ClientMessage())
	}
	_, err = c.Call(context.Background(), "/no-slash", Request{Event: EventConnect})
	wantFailure(t, err, KindStatus, `redirected to "/no-slash/"`)
	_, err = c.Call(context.Background(), "/empty/", Request{Event: EventConnect})
	wantFailure(t, err, KindStatus, "got 204: (empty body)")
	if got := c.Stats().Failures[KindStatus]; got != 3 {
		t.Fatalf("status failures %d", got)
	}
}

func TestCallMalformedAnswers(t *testing.T) {
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(body.Load().(string))(w, r)
	}))
	defer srv.Close()
	c := newTestClient(t, srv, func(cfg *Config) { cfg.MaxResponseBytes = 64 })
	cases := []struct{ body, want string }{
		{``, "not valid JSON"},
		{`<html>Login</html>`, "not valid JSON"},
		{`[{"allow": true}]`, "must be a JSON object"},
		{`{"allow": "yes"}`, `"allow" must be true or false`},
		{`{"join": ["bad name"]}`, "not a valid group name"},
		{`{"close": {"code": 1011}}`, "1000 or 3000-4999"},
		{`{"reply": ["hello"]}`, `"reply[0]" must be a JSON object`},
		{`{"event": {"text": "` + strings.Repeat("z", 80) + `"}}`, "larger than max_response_bytes (64)"},
	}
	for i, tc := range cases {
		body.Store(tc.body)
		_, err := c.Call(context.Background(), "/hook/", Request{Event: EventConnect})
		wantFailure(t, err, KindMalformed, tc.want)
		if got := c.Stats().Failures[KindMalformed]; got != uint64(i+1) {
			t.Fatalf("malformed failures %d after %d answers", got, i+1)
		}
	}
}

func TestCallTransportAndRequestFailures(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		answer(`{}`)(w, r)
	}))
	c := newTestClient(t, srv, nil)
	for _, tc := range []struct {
		path  string
		req   Request
		inMsg string
	}{
		{"internal/hook/", Request{Event: EventConnect}, "must start with a single '/'"},
		{"//evil.example/hook/", Request{Event: EventConnect}, "must start with a single '/'"},
		{"/hook/\r\nX: y", Request{Event: EventConnect}, "cannot hold"},
		{"/hook/", Request{Event: "message"}, `event "message"`},
		{"/hook/", Request{Event: EventConnect, Params: map[string]any{"c": make(chan int)}}, "encode request"},
	} {
		_, err := c.Call(context.Background(), tc.path, tc.req)
		wantFailure(t, err, KindRequest, tc.inMsg)
	}
	if hits.Load() != 0 {
		t.Fatalf("bad requests reached the server %d times", hits.Load())
	}

	srv.Close()
	_, err := c.Call(context.Background(), "/hook/", Request{Event: EventConnect})
	wantFailure(t, err, KindTransport, "connect")
	st := c.Stats()
	if st.Calls != 6 || st.Failures[KindRequest] != 5 || st.Failures[KindTransport] != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// countingServer answers with the body that answerFor picks and counts
// the calls per user id.
func countingServer(t *testing.T, answerFor func(body map[string]any) (int, string)) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		status, out := answerFor(body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// allowOddProjects allows a user into odd-numbered projects.
func allowOddProjects(body map[string]any) (int, string) {
	p, _ := body["params"].(map[string]any)
	if n, _ := p["project_id"].(float64); int(n)%2 == 1 {
		return 200, `{"allow": true, "reply": [{"type": "welcome"}]}`
	}
	return 200, `{"allow": false}`
}

func authorizeReq(user string, project int) Request {
	return Request{Route: "/ws/p/{project_id:int}/", Path: "/ws/p/x/", UserID: user, Authenticated: user != "",
		Channel: "specific.unique!" + user, Params: map[string]any{"project_id": project}}
}

func TestAuthorizeCache(t *testing.T) {
	srv, hits := countingServer(t, allowOddProjects)
	c := newTestClient(t, srv, func(cfg *Config) { cfg.AuthorizeCacheTTL = time.Minute })
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	c.now = clock.Now
	ctx := context.Background()

	r, err := c.Authorize(ctx, "/authz/", authorizeReq("1", 7))
	if err != nil || r.Denied() || len(r.Reply) != 1 {
		t.Fatalf("first authorize: %+v, %v", r, err)
	}
	// The caller owns its copy: changing it does not change the cache.
	r.Reply[0]["type"] = "changed"
	*r.Allow = false

	// Same path, user and params, another socket: served from the cache.
	req := authorizeReq("1", 7)
	req.Channel = "specific.other!socket"
	r, err = c.Authorize(ctx, "/authz/", req)
	if err != nil || r.Denied() || r.Reply[0]["type"] != "welcome" {
		t.Fatalf("cached authorize: %+v, %v", r, err)
	}
	if hits.Load() != 1 {
		t.Fatalf("Django called %d times, want 1", hits.Load())
	}
	// A refusal is an answer too, and cached.
	for range 2 {
		r, err = c.Authorize(ctx, "/authz/", authorizeReq("1", 8))
		if err != nil || !r.Denied() {
			t.Fatalf("project 8: %+v, %v", r, err)
		}
	}
	// Another user, another path, another event: each its own entry.
	if _, err := c.Authorize(ctx, "/authz/", authorizeReq("2", 7)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authorize(ctx, "/authz-other/", authorizeReq("1", 7)); err != nil {
		t.Fatal(err)
	}
	connect := authorizeReq("1", 7)
	connect.Event = EventConnect
	if _, err := c.Authorize(ctx, "/authz/", connect); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 5 {
		t.Fatalf("Django called %d times, want 5", hits.Load())
	}
	st := c.Stats()
	if st.CacheHits != 2 || st.CacheMisses != 5 || st.Calls != 5 || st.CacheEntries != 5 {
		t.Fatalf("stats: %+v", st)
	}

	// Expiry: just before the TTL the entry serves, at the TTL it does not.
	clock.Advance(time.Minute - time.Second)
	if _, err := c.Authorize(ctx, "/authz/", authorizeReq("1", 7)); err != nil || hits.Load() != 5 {
		t.Fatalf("before expiry: %v, %d calls", err, hits.Load())
	}
	clock.Advance(time.Second)
	if _, err := c.Authorize(ctx, "/authz/", authorizeReq("1", 7)); err != nil || hits.Load() != 6 {
		t.Fatalf("at expiry: %v, %d calls", err, hits.Load())
	}
}

func TestAuthorizeFailuresNotCached(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	srv, hits := countingServer(t, func(map[string]any) (int, string) {
		if fail.Load() {
			return 500, "down"
		}
		return 200, `{"allow": true}`
	})
	c := newTestClient(t, srv, nil)
	ctx := context.Background()
	for range 2 {
		if _, err := c.Authorize(ctx, "/authz/", authorizeReq("1", 1)); err == nil {
			t.Fatal("a 500 must be a failure")
		}
	}
	fail.Store(false)
	for range 2 {
		if r, err := c.Authorize(ctx, "/authz/", authorizeReq("1", 1)); err != nil || r.Denied() {
			t.Fatalf("after recovery: %+v, %v", r, err)
		}
	}
	if hits.Load() != 3 {
		t.Fatalf("Django called %d times, want 3 (two failures, then one cached answer)", hits.Load())
	}
}

func TestAuthorizeCacheBoundedAndOff(t *testing.T) {
	srv, hits := countingServer(t, allowOddProjects)
	ctx := context.Background()
	c := newTestClient(t, srv, func(cfg *Config) { cfg.AuthorizeCacheSize = 2 })
	for _, p := range []int{1, 3, 1, 5} { // 5 evicts 3, the least recently used
		if _, err := c.Authorize(ctx, "/authz/", authorizeReq("1", p)); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 3 || c.Stats().CacheEntries != 2 {
		t.Fatalf("%d calls, %d entries", hits.Load(), c.Stats().CacheEntries)
	}
	if _, err := c.Authorize(ctx, "/authz/", authorizeReq("1", 1)); err != nil || hits.Load() != 3 {
		t.Fatalf("project 1 should still be cached: %v, %d calls", err, hits.Load())
	}
	if _, err := c.Authorize(ctx, "/authz/", authorizeReq("1", 3)); err != nil || hits.Load() != 4 {
		t.Fatalf("project 3 should have been evicted: %v, %d calls", err, hits.Load())
	}

	hits.Store(0)
	off := newTestClient(t, srv, func(cfg *Config) { cfg.AuthorizeCacheTTL = -1 })
	for range 3 {
		if _, err := off.Authorize(ctx, "/authz/", authorizeReq("1", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 3 || off.Stats().CacheHits != 0 {
		t.Fatalf("with the cache off: %d calls, stats %+v", hits.Load(), off.Stats())
	}
}

func TestLogsLeaveOutSecretAndFrames(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Secret: testSecret}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := Request{Event: EventReceive, Handler: "message", Frame: map[string]any{"message": "private words in a frame"}}
	if _, err := c.Call(context.Background(), "/hook/", req); err != nil {
		t.Fatal(err)
	}
	status.Store(502)
	if _, err := c.Call(context.Background(), "/hook/", req); err == nil {
		t.Fatal("a 502 must fail")
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "hook call failed") || !strings.Contains(out, "path=/hook/") {
		t.Fatalf("the failure was not logged:\n%s", out)
	}
	for _, secret := range []string{testSecret, "private words", Sign([]byte(testSecret), 0, nil)[:10]} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
