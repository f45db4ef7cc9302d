// Package hooks calls small Django views over signed HTTP, so that the
// business logic that must stay in Django (permission checks, database
// writes) can run on connect, on inbound frames and on disconnect, and
// turns their answers into checked actions for the route engine.
//
// The protocol: the sidecar POSTs a JSON description of the event to
// base_url+path, signed with HMAC-SHA256 over "<timestamp>.<body>" in the
// X-Sidecar-Timestamp and X-Sidecar-Signature headers; Django answers 200
// with a JSON object of optional actions (allow, reply, event, group_send,
// join, leave, error, close). Anything else is a hook failure. The Python
// side is compat/python/sidecar_hooks; docs/hooks.md has the details.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusSnippet is how much of a non-200 answer goes into the error: enough
// for the Django helper's JSON reason or the title of an error page.
const statusSnippet = 200

// userAgent names the caller in Django's logs.
const userAgent = "channels-sidecar-hooks/1"

// Client makes hook calls. It is safe for concurrent use.
type Client struct {
	cfg       Config
	log       *slog.Logger
	base      string
	secret    []byte
	http      *http.Client
	transport *http.Transport
	slots     chan struct{} // one token per running call
	cache     *authorizeCache
	now       func() time.Time
	stats     counters
}

// New checks cfg (after filling its defaults) and returns a Client. Unlike
// Validate, it refuses a Config with hooks off, since there would be
// nothing to call.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hooks config: %w", err)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("hooks config: %w", fieldError("base_url", "required: Django's internal URL, such as http://127.0.0.1:8000"))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := &http.Transport{
		// Hook calls go straight to Django's internal address; an
		// HTTP_PROXY meant for the outside world must not catch them.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   cfg.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxConnsPerHost:       cfg.MaxInFlight,
		MaxIdleConns:          cfg.MaxInFlight,
		MaxIdleConnsPerHost:   cfg.MaxInFlight,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	c := &Client{
		cfg:       cfg,
		log:       log.With("component", "hooks"),
		base:      strings.TrimRight(cfg.BaseURL, "/"),
		secret:    []byte(cfg.Secret),
		transport: transport,
		http: &http.Client{
			Transport: transport,
			// A redirect would turn the POST into a GET elsewhere; it is
			// reported as the failure it is instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		slots: make(chan struct{}, cfg.MaxInFlight),
		now:   time.Now,
	}
	if cfg.cacheEnabled() {
		c.cache = newAuthorizeCache(cfg.AuthorizeCacheTTL, cfg.AuthorizeCacheSize)
	}
	return c, nil
}

// Close releases the idle connections to Django. Calls still work after
// it, opening new connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Call POSTs req to the hook at path (such as /internal/ws/chat/message/)
// and returns Django's checked answer. The call, including any wait for a
// free slot, ends by Timeout or by ctx, whichever comes first. Every error
// is an *Error wrapping ErrHookFailed and the cause.
func (c *Client) Call(ctx context.Context, path string, req Request) (*Response, error) {
	c.stats.calls.Add(1)
	start := time.Now()
	resp, status, err := c.call(ctx, path, &req)
	elapsed := time.Since(start)
	if err != nil {
		var he *Error
		if !errors.As(err, &he) {
			he = &Error{Kind: KindTransport, Path: path, Err: err}
		}
		c.stats.fail(he.Kind)
		level := slog.LevelWarn
		if he.Kind == KindCanceled {
			// The socket went away; Django did nothing wrong.
			level = slog.LevelDebug
		}
		c.log.Log(ctx, level, "hook call failed", "path", path, "event", req.Event, "route", req.Route,
			"kind", string(he.Kind), "status", he.Status, "duration", elapsed, "error", he.Err)
		return nil, he
	}
	c.log.Debug("hook call", "path", path, "event", req.Event, "route", req.Route, "status", status, "duration", elapsed)
	return resp, nil
}

// call does the work of Call and returns Django's status for the log.
func (c *Client) call(ctx context.Context, path string, req *Request) (*Response, int, error) {
	fail := func(kind FailureKind, status int, err error) (*Response, int, error) {
		return nil, status, &Error{Kind: kind, Path: path, Status: status, Err: err}
	}
	if err := checkPath(path); err != nil {
		return fail(KindRequest, 0, err)
	}
	body, err := req.encode()
	if err != nil {
		return fail(KindRequest, 0, err)
	}

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.acquire(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return fail(KindCanceled, 0, err)
		}
		return fail(KindBusy, 0, fmt.Errorf("all %d call slots stayed busy: %w", c.cfg.MaxInFlight, err))
	}
	defer c.release()

	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fail(KindRequest, 0, err)
	}
	ts := c.now().Unix()
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", userAgent)
	hreq.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	hreq.Header.Set(HeaderSignature, Sign(c.secret, ts, body))

	hresp, err := c.http.Do(hreq)
	if err != nil {
		return fail(c.classify(ctx, err), 0, err)
	}
	defer hresp.Body.Close()

	if hresp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(hresp.Body, statusSnippet))
		return fail(KindStatus, hresp.StatusCode, statusError(hresp, snippet))
	}
	data, err := io.ReadAll(io.LimitReader(hresp.Body, int64(c.cfg.MaxResponseBytes)+1))
	if err != nil {
		return fail(c.classify(ctx, err), hresp.StatusCode, fmt.Errorf("read answer: %w", err))
	}
	if len(data) > c.cfg.MaxResponseBytes {
		return fail(KindMalformed, hresp.StatusCode, fmt.Errorf("answer is larger than max_response_bytes (%d)", c.cfg.MaxResponseBytes))
	}
	resp, err := parseResponse(data)
	if err != nil {
		return fail(KindMalformed, hresp.StatusCode, err)
	}
	return resp, hresp.StatusCode, nil
}

// acquire takes a call slot, waiting until ctx ends when all are taken.
func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.slots <- struct{}{}:
	default:
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.stats.inFlight.Add(1)
	return nil
}

func (c *Client) release() {
	c.stats.inFlight.Add(-1)
	<-c.slots
}

// classify tells a timeout and a cancellation from other transport errors.
func (c *Client) classify(ctx context.Context, err error) FailureKind {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(ctx.Err(), context.Canceled), errors.Is(err, context.Canceled):
		return KindCanceled
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout
	}
	return KindTransport
}

// checkPath accepts an absolute path with no scheme, host or fragment.
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return fmt.Errorf("hook path %q must start with a single '/'", path)
	}
	if strings.ContainsAny(path, "#\x00\r\n ") {
		return fmt.Errorf("hook path %q has a character a URL path cannot hold", path)
	}
	return nil
}

// statusError describes a non-200 answer: a redirect names its target,
// since it usually means a hook path differs from Django's URL (often by
// its trailing slash); anything else quotes the start of the body.
func statusError(resp *http.Response, snippet []byte) error {
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return fmt.Errorf("redirected to %q: hook paths must be Django's URLs exactly, trailing slash included", loc)
	}
	return fmt.Errorf("want 200, got %d: %s", resp.StatusCode, printable(snippet))
}

// printable makes a short body safe for a one-line log: valid UTF-8, no
// control characters.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	var sb strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			sb.WriteByte(' ')
			continue
		}
		sb.WriteRune(r)
	}
	out := strings.TrimSpace(sb.String())
	if out == "" {
		return "(empty body)"
	}
	if len(b) >= statusSnippet {
		out += "..."
	}
	return out
}

// Authorize is Call for authorize checks, with a cache: a successful
// answer (allow or refuse) is reused for AuthorizeCacheTTL for the same
// path, event, route, user and path parameters. Failures are never cached.
// An empty req.Event means EventAuthorize. The answer is the caller's own
// copy.
func (c *Client) Authorize(ctx context.Context, path string, req Request) (*Response, error) {
	if req.Event == "" {
		req.Event = EventAuthorize
	}
	if c.cache == nil {
		return c.Call(ctx, path, req)
	}
	key, err := authorizeKey(path, &req)
	if err != nil {
		// Call reports the unencodable parameters as a failure.
		return c.Call(ctx, path, req)
	}
	if r, ok := c.cache.get(key, c.now()); ok {
		c.stats.cacheHits.Add(1)
		return r.clone(), nil
	}
	c.stats.cacheMisses.Add(1)
	r, err := c.Call(ctx, path, req)
	if err != nil {
		return nil, err
	}
	c.cache.put(key, r.clone(), c.now())
	return r, nil
}
