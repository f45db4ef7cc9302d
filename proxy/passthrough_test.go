package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// ptLog is a concurrency-safe log sink that tests read back.
type ptLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *ptLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *ptLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// ptNew builds a passthrough whose log goes to the returned sink.
func ptNew(t *testing.T, cfg UpstreamConfig) (*Passthrough, *ptLog) {
	t.Helper()
	sink := &ptLog{}
	log := slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := NewPassthrough(cfg, log)
	if err != nil {
		t.Fatalf("NewPassthrough: %v", err)
	}
	t.Cleanup(p.Close)
	return p, sink
}

// ptServe runs a fasthttp server that only calls h, configured the way the
// passthrough documents (streamed request bodies, no multipart parsing),
// and returns its host:port.
func ptServe(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	return ptServeWith(t, &fasthttp.Server{
		Handler:                      h,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  time.Minute,
		WriteTimeout:                 time.Minute,
	})
}

// ptServeWith runs srv on a free port until the test ends.
func ptServeWith(t *testing.T, srv *fasthttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
		<-done
	})
	return ln.Addr().String()
}

// ptClient is an independent HTTP client (net/http) playing the browser.
func ptClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// ptRaw sends raw request bytes on a new connection and reads one response.
func ptRaw(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, body
}

// ptEcho is what the reference project's /echo/ view answers.
type ptEcho struct {
	Method      string              `json:"method"`
	Path        string              `json:"path"`
	QueryString string              `json:"query_string"`
	Query       map[string][]string `json:"query"`
	Headers     map[string]string   `json:"headers"`
	CookieRaw   string              `json:"cookie_header"`
	Cookies     map[string]string   `json:"cookies"`
	Host        string              `json:"host"`
	BodyLength  int64               `json:"body_length"`
	BodySHA256  string              `json:"body_sha256"`
}

func ptDecodeEcho(t *testing.T, status int, body []byte) ptEcho {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("echo status %d, body %q", status, body)
	}
	var e ptEcho
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("echo body is not JSON: %v: %q", err, body)
	}
	return e
}

// ptHeader reads a header from the echo, case-insensitively, and says
// whether it was there.
func (e ptEcho) ptHeader(name string) (string, bool) {
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// ptBigBlock holds the /big/ view's pattern, byte i = i % 251, long enough
// that any read of up to 64 KiB fits at any phase.
var ptBigBlock = func() []byte {
	b := make([]byte, 251*300)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

// ptCheckPattern reads r to the end and checks every byte against the
// /big/ pattern. It returns the byte count and the first mismatch or read
// error.
func ptCheckPattern(r io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			phase := int(off % 251)
			if !bytes.Equal(buf[:n], ptBigBlock[phase:phase+n]) {
				for i := range n {
					if buf[i] != byte((off+int64(i))%251) {
						return off + int64(i), fmt.Errorf("byte %d is %d, want %d", off+int64(i), buf[i], (off+int64(i))%251)
					}
				}
			}
			off += int64(n)
		}
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

func TestPassthroughDjango(t *testing.T) {
	base := testenv.StartDjango(t)
	p, _ := ptNew(t, UpstreamConfig{URL: base})
	var results sync.Map // status -> *atomic.Int64
	p.OnResult = func(status int) {
		v, _ := results.LoadOrStore(status, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	front := ptServe(t, p.ServeHTTP)
	client := ptClient(t)
	url := "http://" + front

	t.Run("status and body", func(t *testing.T) {
		for _, code := range []int{200, 201, 404, 418, 500, 503} {
			resp, err := client.Get(url + "/status/" + strconv.Itoa(code) + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Errorf("status %d: got %d", code, resp.StatusCode)
			}
			if want := fmt.Sprintf("status %d\n", code); string(body) != want {
				t.Errorf("status %d: body %q, want %q", code, body, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("status %d: content-type %q", code, ct)
			}
		}
		resp, err := client.Get(url + "/status/204/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 204 || len(body) != 0 {
			t.Errorf("204: got %d with %d body bytes", resp.StatusCode, len(body))
		}
		for range 2 {
			req, _ := http.NewRequest(http.MethodHead, url+"/status/200/", nil)
			resp, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len("status 200\n")) {
				t.Errorf("HEAD: %d, Content-Length %d, %d body bytes", resp.StatusCode, resp.ContentLength, len(body))
			}
		}
		v, ok := results.Load(418)
		if !ok || v.(*atomic.Int64).Load() != 1 {
			t.Errorf("OnResult did not count the 418 once")
		}
	})

	t.Run("path and raw query", func(t *testing.T) {
		resp, err := client.Get(url + "/echo/deep/path/?a=1&a=2&b=x%20y&c=&d=%E2%9C%93")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e := ptDecodeEcho(t, resp.StatusCode, body)
		if e.Method != "GET" || e.Path != "/echo/deep/path/" {
			t.Errorf("method %q path %q", e.Method, e.Path)
		}
		if e.QueryString != "a=1&a=2&b=x%20y&c=&d=%E2%9C%93" {
			t.Errorf("query string %q", e.QueryString)
		}
		if !slices.Equal(e.Query["a"], []string{"1", "2"}) || !slices.Equal(e.Query["b"], []string{"x y"}) ||
			!slices.Equal(e.Query["d"], []string{"\u2713"}) {
			t.Errorf("query %v", e.Query)
		}
	})

	t.Run("request headers, cookies, hop-by-hop, forwarding", func(t *testing.T) {
		// The messages cookie is quoted with a backslash escape, as Django's
		// SimpleCookie writes it; it must reach Django byte for byte.
		cookie := `sessionid=abc123; messages="a\054b"; csrftoken=tok`
		raw := "PUT /echo/?k=v HTTP/1.1\r\n" +
			"Host: example.test:8080\r\n" +
			"User-Agent: pt-test/1\r\n" +
			"Cookie: " + cookie + "\r\n" +
			"X-Custom: keep me\r\n" +
			"Authorization: Bearer t0ken\r\n" +
			"Connection: keep-alive, X-Hop-Secret\r\n" +
			"X-Hop-Secret: must not pass\r\n" +
			"Keep-Alive: timeout=5\r\n" +
			"Proxy-Authorization: Basic cHJveHk=\r\n" +
			"Proxy: http://evil.example\r\n" +
			"Te: trailers\r\n" +
			"X-Forwarded-For: 6.6.6.6\r\n" +
			"X-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Host: spoofed.example\r\n" +
			"X-Real-Ip: 6.6.6.6\r\n" +
			"Forwarded: for=6.6.6.6\r\n" +
			"Content-Type: application/json\r\n" +
			"Content-Length: 13\r\n" +
			"\r\n" +
			`{"hello": 1}` + "\n"
		resp, body := ptRaw(t, front, raw)
		e := ptDecodeEcho(t, resp.StatusCode, body)
		if e.Method != "PUT" || e.Host != "example.test:8080" {
			t.Errorf("method %q host %q", e.Method, e.Host)
		}
		if e.CookieRaw != cookie {
			t.Errorf("Cookie reached Django as %q, want %q", e.CookieRaw, cookie)
		}
		if e.Cookies["messages"] != "a,b" || e.Cookies["sessionid"] != "abc123" || e.Cookies["csrftoken"] != "tok" {
			t.Errorf("Django parsed cookies %v", e.Cookies)
		}
		want := map[string]string{
			"User-Agent":        "pt-test/1",
			"X-Custom":          "keep me",
			"Authorization":     "Bearer t0ken",
			"Content-Type":      "application/json",
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "example.test:8080",
		}
		for k, v := range want {
			if got, _ := e.ptHeader(k); got != v {
				t.Errorf("header %s reached Django as %q, want %q", k, got, v)
			}
		}
		for _, k := range []string{"X-Hop-Secret", "Keep-Alive", "Proxy-Authorization", "Proxy", "Te",
			"X-Real-Ip", "Forwarded", "Transfer-Encoding", "Upgrade", "Trailer"} {
			if v, ok := e.ptHeader(k); ok {
				t.Errorf("header %s should not reach Django, got %q", k, v)
			}
		}
		if e.BodyLength != 13 {
			t.Errorf("body length %d", e.BodyLength)
		}
	})

	t.Run("trusted proxy keeps forwarding headers", func(t *testing.T) {
		tp, _ := ptNew(t, UpstreamConfig{URL: base, TrustedProxies: []string{"127.0.0.0/8", "::1"}})
		tfront := ptServe(t, tp.ServeHTTP)
		raw := "GET /echo/ HTTP/1.1\r\n" +
			"Host: internal:9000\r\n" +
			"X-Forwarded-For: 203.0.113.7, 10.0.0.2\r\n" +
			"X-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Host: www.example.com\r\n" +
			"Connection: close\r\n\r\n"
		resp, body := ptRaw(t, tfront, raw)
		e := ptDecodeEcho(t, resp.StatusCode, body)
		for k, v := range map[string]string{
			"X-Forwarded-For":   "203.0.113.7, 10.0.0.2, 127.0.0.1",
			"X-Forwarded-Proto": "https",
			"X-Forwarded-Host":  "www.example.com",
		} {
			if got, _ := e.ptHeader(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if v, ok := e.ptHeader("Connection"); ok {
			t.Errorf("Connection reached Django: %q", v)
		}
	})

	t.Run("every Set-Cookie and custom headers come back", func(t *testing.T) {
		resp, err := client.Get(url + "/cookies/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || string(body) != "cookies set\n" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		got := resp.Header.Values("Set-Cookie")
		want := []string{"first=one; Path=/", "second=two; HttpOnly; Path=/cookies/; SameSite=Lax"}
		if !slices.Equal(got, want) {
			t.Errorf("Set-Cookie headers %q, want %q", got, want)
		}
		if v := resp.Header.Get("X-Refsite-Custom"); v != "custom value" {
			t.Errorf("X-Refsite-Custom %q", v)
		}
	})

	t.Run("20 MiB upload is hashed identically by Django", func(t *testing.T) {
		const size = 20 << 20
		h := sha256.New()
		src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{7}), size), h)
		req, err := http.NewRequest(http.MethodPost, url+"/echo/upload/", src)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e := ptDecodeEcho(t, resp.StatusCode, body)
		if e.BodyLength != size {
			t.Errorf("Django read %d bytes, want %d", e.BodyLength, size)
		}
		if want := hex.EncodeToString(h.Sum(nil)); e.BodySHA256 != want {
			t.Errorf("Django's sha256 %s, want %s", e.BodySHA256, want)
		}
	})

	t.Run("large responses stream back intact", func(t *testing.T) {
		for _, tc := range []struct {
			query  string
			size   int64
			length bool
		}{
			{"n=25165831", 25165831, false}, // end of body is the end of the stream
			{"n=9437189&length=1", 9437189, true},
		} {
			resp, err := client.Get(url + "/big/?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			n, err := ptCheckPattern(resp.Body)
			resp.Body.Close()
			if err != nil || n != tc.size {
				t.Errorf("%s: read %d bytes, err %v; want %d", tc.query, n, err, tc.size)
			}
			if tc.length && resp.ContentLength != tc.size {
				t.Errorf("%s: Content-Length %d, want %d", tc.query, resp.ContentLength, tc.size)
			}
			if resp.Header.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("%s: content-type %q", tc.query, resp.Header.Get("Content-Type"))
			}
		}
	})

	t.Run("size limits", func(t *testing.T) {
		lp, log := ptNew(t, UpstreamConfig{URL: base, MaxBodySize: 1 << 20})
		lfront := ptServe(t, lp.ServeHTTP)
		lurl := "http://" + lfront

		// An announced length over the limit is refused without reading on:
		// the answer comes after the first 16 KiB (the server pre-reads up
		// to 8 KiB before calling the handler).
		resp, body := ptRaw(t, lfront, "POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n"+strings.Repeat("z", 16<<10))
		if resp.StatusCode != http.StatusRequestEntityTooLarge || string(body) != "413 Request Entity Too Large: request body too large\n" {
			t.Errorf("oversized upload: %d %q", resp.StatusCode, body)
		}
		if !resp.Close {
			t.Errorf("the connection of a refused upload must be closed")
		}

		resp, err := client.Get(lurl + "/big/?n=2097152&length=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "upstream response too large") {
			t.Errorf("oversized announced response: %d %q", resp.StatusCode, body)
		}

		resp, err = client.Get(lurl + "/big/?n=2097152")
		if err != nil {
			t.Fatal(err)
		}
		n, err := ptCheckPattern(resp.Body)
		resp.Body.Close()
		if err == nil || n > 1<<20 {
			t.Errorf("oversized streamed response: read %d bytes, err %v; want it cut at 1 MiB", n, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(log.String(), "upstream response cut off") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(log.String(), "upstream response cut off") {
			t.Errorf("no warning for the cut response; log:\n%s", log.String())
		}
	})

	t.Run("slow upstream times out with 504", func(t *testing.T) {
		sp, log := ptNew(t, UpstreamConfig{URL: base, Timeout: 700 * time.Millisecond})
		sfront := ptServe(t, sp.ServeHTTP)
		start := time.Now()
		resp, err := client.Get("http://" + sfront + "/slow/?seconds=3")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "did not answer in time") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if el := time.Since(start); el > 2500*time.Millisecond {
			t.Errorf("504 took %s", el)
		}
		if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "upstream request failed") {
			t.Errorf("no warning logged:\n%s", log.String())
		}
		// Fast answers are unaffected by the short timeout.
		resp, err = client.Get("http://" + sfront + "/slow/?seconds=0")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("fast request: %d", resp.StatusCode)
		}
	})
}

func TestPassthroughUpstreamDown(t *testing.T) {
	port := testenv.FreePort(t) // nothing listens there
	p, log := ptNew(t, UpstreamConfig{URL: "http://127.0.0.1:" + strconv.Itoa(port)})
	var got atomic.Int64
	p.OnResult = func(status int) { got.Store(int64(status)) }
	front := ptServe(t, p.ServeHTTP)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, "http://"+front+"/anything/?token=secret", strings.NewReader("x"))
		resp, err := ptClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d", method, resp.StatusCode)
		}
		if string(body) != "502 Bad Gateway: upstream unreachable\n" {
			t.Errorf("%s: body %q", method, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: content-type %q", method, ct)
		}
	}
	if got.Load() != http.StatusBadGateway {
		t.Errorf("OnResult saw %d", got.Load())
	}
	l := log.String()
	if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "upstream request failed") ||
		!strings.Contains(l, "connection refused") {
		t.Errorf("warning with the dial error missing:\n%s", l)
	}
	if strings.Contains(l, "secret") {
		t.Errorf("the query string was logged:\n%s", l)
	}
}

// TestPassthroughClientBreaksOff checks that an upload the client abandons
// is answered 400 and not blamed on the upstream.
func TestPassthroughClientBreaksOff(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	p, log := ptNew(t, UpstreamConfig{URL: up.URL})
	front := ptServe(t, p.ServeHTTP)
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("u", 300000))
	_ = c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || string(body) != "400 Bad Request: request body incomplete\n" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("a client's broken upload was logged as an upstream failure:\n%s", log.String())
	}
}

func TestPassthroughNoUpstream(t *testing.T) {
	p, _ := ptNew(t, UpstreamConfig{})
	front := ptServe(t, p.ServeHTTP)
	resp, body := ptRaw(t, front, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || string(body) != "502 Bad Gateway: no upstream configured\n" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
}

func TestPassthroughClosed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	p, _ := ptNew(t, UpstreamConfig{URL: up.URL})
	front := ptServe(t, p.ServeHTTP)
	resp, body := ptRaw(t, front, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("before Close: %d %q", resp.StatusCode, body)
	}
	p.Close()
	resp, body = ptRaw(t, front, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Errorf("after Close: %d %q", resp.StatusCode, body)
	}
}

// TestPassthroughStreamsBothWays proves that neither body is buffered
// whole: the upstream sees the start of the upload while the client is
// still holding back the rest, and the client sees the start of the
// download while the upstream is still holding back the rest. A buffering
// proxy would deadlock here until the test's timeout.
func TestPassthroughStreamsBothWays(t *testing.T) {
	const part = 1 << 20
	upstreamGotFirst := make(chan struct{})
	clientGotFirst := make(chan struct{})
	wait := func(ch chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadFull(r.Body, make([]byte, part)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(upstreamGotFirst)
		rest, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Upload-Rest", strconv.FormatInt(rest, 10))
		w.WriteHeader(200)
		_, _ = w.Write(bytes.Repeat([]byte{'a'}, part))
		w.(http.Flusher).Flush()
		if !wait(clientGotFirst) {
			return // the client never saw the first part: it was buffered
		}
		_, _ = w.Write(bytes.Repeat([]byte{'b'}, part))
	}))
	defer up.Close()
	p, _ := ptNew(t, UpstreamConfig{URL: up.URL})
	front := ptServe(t, p.ServeHTTP)

	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(bytes.Repeat([]byte{'x'}, part))
		if !wait(upstreamGotFirst) {
			pw.CloseWithError(fmt.Errorf("upstream never saw the first part of the upload"))
			return
		}
		_, _ = pw.Write(bytes.Repeat([]byte{'y'}, part))
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+front+"/up", pr)
	req.ContentLength = 2 * part
	resp, err := ptClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("X-Upload-Rest"); got != strconv.Itoa(part) {
		t.Fatalf("upstream read %q bytes after the first part, want %d", got, part)
	}
	first := make([]byte, part)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first part of the download: %v", err)
	}
	close(clientGotFirst)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != part || rest[0] != 'b' || first[0] != 'a' {
		t.Fatalf("second part: %d bytes, err %v", len(rest), err)
	}
}

// TestPassthroughUploadFraming sends fixed-length and chunked uploads
// through a streaming and a buffering front server and checks that the
// upstream receives every byte, chunked only when the client chunked and
// the body is streamed.
func TestPassthroughUploadFraming(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Chunked", strconv.FormatBool(r.ContentLength == -1))
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	defer up.Close()
	p, _ := ptNew(t, UpstreamConfig{URL: up.URL})
	fronts := map[string]string{
		"streaming": ptServe(t, p.ServeHTTP),
		"buffering": ptServeWith(t, &fasthttp.Server{Handler: p.ServeHTTP, MaxRequestBodySize: 8 << 20}),
	}
	const size = 3<<20 + 17
	for name, front := range fronts {
		for _, chunked := range []bool{false, true} {
			h := sha256.New()
			var src io.Reader = io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{9}), size), h)
			if chunked {
				src = struct{ io.Reader }{src} // unknown length: net/http chunks it
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+front+"/u", src)
			if !chunked {
				req.ContentLength = size
			}
			resp, err := ptClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("%d %x", size, h.Sum(nil)); resp.StatusCode != 200 || string(body) != want {
				t.Errorf("%s chunked=%v: %d %q, want %q", name, chunked, resp.StatusCode, body, want)
			}
			wantChunked := strconv.FormatBool(chunked && name == "streaming")
			if got := resp.Header.Get("X-Chunked"); got != wantChunked {
				t.Errorf("%s chunked=%v: upstream saw chunked=%s, want %s", name, chunked, got, wantChunked)
			}
		}
	}

	// A chunked upload has no length to check up front; it is cut at the
	// limit instead.
	lp, log := ptNew(t, UpstreamConfig{URL: up.URL, MaxBodySize: 1 << 20})
	lfront := ptServe(t, lp.ServeHTTP)
	c, err := net.Dial("tcp", lfront)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		_, _ = io.WriteString(c, "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("c", 64<<10))
		for range 40 { // 2.5 MiB
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(c, "0\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(body) != "413 Request Entity Too Large: request body too large\n" {
		t.Errorf("oversized chunked upload: %d %q", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("the connection of a cut upload must be closed")
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("an oversized upload was logged as an upstream failure:\n%s", log.String())
	}
}

// TestPassthroughResponseHeaders checks what fasthttp would otherwise
// change: Set-Cookie headers for the same cookie name, hop-by-hop response
// headers, a missing Content-Type, the reason phrase, and HEAD.
func TestPassthroughResponseHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Set-Cookie"] = []string{
			"pref=a; Path=/a/",
			"pref=b; Path=/b/",
			`messages="x\054y"; Path=/`,
		}
		h["Content-Type"] = nil // no Content-Type at all
		h.Set("Connection", "X-Drop, close")
		h.Set("X-Drop", "hop")
		h.Set("Keep-Alive", "timeout=1")
		h.Set("X-Keep", "end-to-end")
		h.Set("Content-Length", "5")
		w.WriteHeader(http.StatusAccepted)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, "hello")
		}
	}))
	defer up.Close()
	p, _ := ptNew(t, UpstreamConfig{URL: up.URL})
	front := ptServe(t, p.ServeHTTP)

	for _, method := range []string{"GET", "HEAD"} {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, method+" /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		head, err := textproto.NewReader(bufio.NewReader(c)).ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if head != "HTTP/1.1 202 Accepted" {
			t.Errorf("%s: status line %q", method, head)
		}
		req, _ := http.NewRequest(method, "http://"+front+"/x", nil)
		resp, err := ptClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantBody := "hello"
		if method == "HEAD" {
			wantBody = ""
		}
		if resp.StatusCode != 202 || string(body) != wantBody {
			t.Errorf("%s: %d %q", method, resp.StatusCode, body)
		}
		if resp.ContentLength != 5 {
			t.Errorf("%s: Content-Length %d", method, resp.ContentLength)
		}
		if got, want := resp.Header.Values("Set-Cookie"), []string{"pref=a; Path=/a/", "pref=b; Path=/b/", `messages="x\054y"; Path=/`}; !slices.Equal(got, want) {
			t.Errorf("%s: Set-Cookie %q, want %q", method, got, want)
		}
		if v, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("%s: Content-Type invented: %q", method, v)
		}
		if resp.Header.Get("X-Keep") != "end-to-end" || resp.Header.Get("X-Drop") != "" || resp.Header.Get("Keep-Alive") != "" {
			t.Errorf("%s: headers %v", method, resp.Header)
		}
	}
}

// TestPassthroughHeadWithBody uses an upstream that, like Django 3.2's
// runserver, sends a body after a HEAD response. The connection that
// carried the HEAD must not serve the next request, or the stray body
// would be read as that request's response.
func TestPassthroughHeadWithBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var afterHead atomic.Int64 // requests read on a connection after a HEAD
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				sawHead := false
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if sawHead {
						afterHead.Add(1)
					}
					sawHead = sawHead || req.Method == http.MethodHead
					body := "GOT " + req.Method
					_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				}
			}()
		}
	}()
	p, _ := ptNew(t, UpstreamConfig{URL: "http://" + ln.Addr().String()})
	front := ptServe(t, p.ServeHTTP)
	c := ptClient(t)
	for i := range 3 {
		for _, m := range []string{http.MethodHead, http.MethodGet} {
			req, _ := http.NewRequest(m, "http://"+front+"/", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "GOT GET"
			if m == http.MethodHead {
				want = ""
			}
			if resp.StatusCode != 200 || string(body) != want {
				t.Errorf("round %d %s: %d %q", i, m, resp.StatusCode, body)
			}
		}
	}
	if n := afterHead.Load(); n != 0 {
		t.Errorf("%d requests were sent on a connection that had carried a HEAD", n)
	}
}

// TestPassthroughRawTarget checks that the request target reaches the
// upstream byte for byte: no path cleaning, no query re-encoding.
func TestPassthroughRawTarget(t *testing.T) {
	got := make(chan string, 8)
	upAddr := ptServe(t, func(ctx *fasthttp.RequestCtx) {
		got <- string(ctx.Request.Header.RequestURI()) + " " + string(ctx.Request.Header.Host())
	})
	p, _ := ptNew(t, UpstreamConfig{URL: "http://" + upAddr})
	front := ptServe(t, p.ServeHTTP)
	for _, target := range []string{
		"/a//b/../c/%2F%2e%2E/?x=%20+y&&z=%zz",
		"//double/leading",
		"/plain",
	} {
		resp, _ := ptRaw(t, front, "GET "+target+" HTTP/1.1\r\nHost: Example.TEST\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", target, resp.StatusCode)
		}
		if g := <-got; g != target+" Example.TEST" {
			t.Errorf("upstream saw %q, want %q", g, target+" Example.TEST")
		}
	}
	// An absolute-form target is reduced to path and query.
	resp, _ := ptRaw(t, front, "GET http://other.example/p?q=1 HTTP/1.1\r\nHost: Example.TEST\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("absolute form: status %d", resp.StatusCode)
	}
	if g := <-got; !strings.HasPrefix(g, "/p?q=1 ") {
		t.Errorf("absolute form reached upstream as %q", g)
	}
}

func TestPassthroughUpstreamConfig(t *testing.T) {
	var c UpstreamConfig
	c.SetDefaults()
	if c.Timeout != 30*time.Second || c.MaxConns != 512 || c.MaxBodySize != 64<<20 || c.IdleConnTimeout != time.Second {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("empty URL must be valid: %v", err)
	}

	var fromYAML UpstreamConfig
	src := "url: http://127.0.0.1:8000\ntimeout: 45s\nmax_conns: 10\nmax_body_size: 1048576\nidle_conn_timeout: 500ms\ntrusted_proxies: [10.0.0.0/8, 192.0.2.1]\n"
	if err := yaml.Unmarshal([]byte(src), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if fromYAML.URL != "http://127.0.0.1:8000" || fromYAML.Timeout != 45*time.Second || fromYAML.MaxConns != 10 ||
		fromYAML.MaxBodySize != 1<<20 || fromYAML.IdleConnTimeout != 500*time.Millisecond || len(fromYAML.TrustedProxies) != 2 {
		t.Errorf("yaml decoded to %+v", fromYAML)
	}
	if err := fromYAML.Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}

	for _, tc := range []struct {
		cfg  UpstreamConfig
		want string
	}{
		{UpstreamConfig{URL: "127.0.0.1:8000"}, "upstream.url"},
		{UpstreamConfig{URL: "localhost"}, "no scheme"},
		{UpstreamConfig{URL: "ftp://h"}, `scheme "ftp" is not supported`},
		{UpstreamConfig{URL: "http://"}, "no host"},
		{UpstreamConfig{URL: "http://h/app/"}, "path prefix"},
		{UpstreamConfig{URL: "http://h/?a=1"}, "query"},
		{UpstreamConfig{URL: "http://u:p@h"}, "user info"},
		{UpstreamConfig{URL: "http://h:8000 x"}, "not a URL"},
		{UpstreamConfig{Timeout: -1}, "upstream.timeout"},
		{UpstreamConfig{MaxConns: -1}, "upstream.max_conns"},
		{UpstreamConfig{MaxBodySize: -1}, "upstream.max_body_size"},
		{UpstreamConfig{IdleConnTimeout: -1}, "upstream.idle_conn_timeout"},
		{UpstreamConfig{TrustedProxies: []string{"10.0.0.0/33"}}, "not a CIDR"},
		{UpstreamConfig{TrustedProxies: []string{"proxy.example"}}, "neither a CIDR nor an IP"},
		{UpstreamConfig{TrustedProxies: []string{""}}, "empty entry"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to mention %q", tc.cfg, err, tc.want)
		}
		if _, err := NewPassthrough(tc.cfg, nil); err == nil {
			t.Errorf("%+v: NewPassthrough accepted it", tc.cfg)
		}
	}

	for url, addr := range map[string]string{
		"http://127.0.0.1:8000":  "127.0.0.1:8000",
		"http://django":          "django:80",
		"https://django/":        "django:443",
		"HTTP://[::1]:9000":      "[::1]:9000",
		"https://app.example:44": "app.example:44",
	} {
		c := UpstreamConfig{URL: url}
		tg, err := c.ptTarget()
		if err != nil || tg.addr != addr {
			t.Errorf("%s: addr %q err %v, want %q", url, tg.addr, err, addr)
		}
	}
}

// ptHopHeaders are the headers a forwarded request must never carry.
var ptHopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection",
	"Proxy", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect", "X-Real-Ip", "Forwarded"}

// FuzzPassthroughRequestHeaders feeds arbitrary client header blocks
// through the request rewriting and checks the invariants on what would be
// sent upstream, parsed back by an independent HTTP parser.
func FuzzPassthroughRequestHeaders(f *testing.F) {
	for _, s := range []string{
		"Host: a\r\n",
		"Host: a\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\nKeep-Alive: 5\r\n",
		"Host: a\r\nCookie: a=b; m=\"x\\054y\"\r\nCookie: c=d\r\n",
		"Host: a\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\nX-Real-IP: 3\r\nForwarded: for=x\r\n",
		"Host: a\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: websocket\r\n",
		"Host: a\r\nProxy: x\r\nProxy-Authorization: y\r\nProxy-Connection: keep-alive\r\nExpect: 100-continue\r\n",
		"Host: a\r\nConnection: close, Cookie\r\nCookie: s=1\r\n",
		"Host: a\r\nConnection: ,,, \r\nUser-Agent: ua\r\nContent-Type: text/plain\r\n",
		"Host:0 0\r\n",
		"X-Forwarded-Host: spoof\r\n",
	} {
		f.Add(s)
	}
	p, err := NewPassthrough(UpstreamConfig{URL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	peer := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 5555}
	f.Fuzz(func(t *testing.T, headers string) {
		var in fasthttp.Request
		raw := "GET /f?q=1 HTTP/1.1\r\n" + headers + "\r\n"
		if err := in.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return // fasthttp's server would have rejected it
		}
		var u fasthttp.URI
		if err := u.Parse(in.Header.Host(), in.Header.RequestURI()); err != nil {
			return // so would its URI check
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&in, peer, nil)
		out := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(out)
		p.ptBuildRequest(&ctx, out)
		_ = out.URI() // as the client does before writing
		var wire bytes.Buffer
		bw := bufio.NewWriter(&wire)
		if err := out.Write(bw); err != nil {
			t.Fatalf("forwarded request cannot be written: %v", err)
		}
		_ = bw.Flush()
		got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire.Bytes())))
		if err != nil {
			t.Fatalf("forwarded request is not valid HTTP: %v\n%q", err, wire.String())
		}
		if got.RequestURI != "/f?q=1" || got.Method != "GET" {
			t.Errorf("target %s %q", got.Method, got.RequestURI)
		}
		for _, h := range ptHopHeaders {
			if v, ok := got.Header[h]; ok {
				t.Errorf("%s forwarded: %q\n%q", h, v, wire.String())
			}
		}
		if v := got.Header.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "198.51.100.7" {
			t.Errorf("X-Forwarded-For %q", v)
		}
		if v := got.Header.Values("X-Forwarded-Proto"); len(v) != 1 || v[0] != "http" {
			t.Errorf("X-Forwarded-Proto %q", v)
		}
		for _, tok := range in.Header.PeekAll(fasthttp.HeaderConnection) {
			for name := range strings.SplitSeq(string(tok), ",") {
				name = strings.TrimSpace(name)
				switch textproto.CanonicalMIMEHeaderKey(name) {
				case "", "Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host":
					continue // set by the passthrough itself, whatever the client says
				}
				if v, ok := got.Header[textproto.CanonicalMIMEHeaderKey(name)]; ok {
					t.Errorf("%s is listed in Connection but was forwarded: %q", name, v)
				}
			}
		}
		wantFwdHost := []string{string(in.Header.Host())}
		if len(in.Header.Host()) == 0 {
			wantFwdHost = nil
		}
		if v := got.Header.Values("X-Forwarded-Host"); !slices.Equal(v, wantFwdHost) {
			t.Errorf("X-Forwarded-Host %q, want %q", v, wantFwdHost)
		}
		wantHost := string(in.Header.Host())
		if wantHost == "" {
			wantHost = "127.0.0.1:1"
		}
		if got.Host != wantHost {
			t.Errorf("Host %q, want %q", got.Host, wantHost)
		}
	})
}
