package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Headers of a session callback request. The signature is
// "sha256=" + hex(HMAC-SHA256(hook_secret, timestamp + "." + body)), so it
// covers the credential in the body and the time it was sent; the view
// refuses stale timestamps, which bounds replays.
const (
	CallbackTimestampHeader = "X-Sidecar-Timestamp"
	CallbackSignatureHeader = "X-Sidecar-Signature"
	callbackSignaturePrefix = "sha256="
)

// maxCallbackAnswer bounds the answer read from the view.
const maxCallbackAnswer = 64 << 10

// callbackRequest is the JSON body POSTed to the view.
type callbackRequest struct {
	// SessionKey is the value of the session cookie.
	SessionKey string `json:"session_key"`
}

// callbackAnswer is the view's JSON answer with status 200. Backend and
// SessionAuthHash are the session's _auth_user_backend and
// _auth_user_hash, so that the user checks this package makes against
// the user table (when a database is configured) apply to callback
// identities as to any other session.
type callbackAnswer struct {
	UserID          json.RawMessage `json:"user_id"`
	ExpiresAt       json.RawMessage `json:"expires_at"`
	Backend         string          `json:"backend"`
	SessionAuthHash string          `json:"session_auth_hash"`
}

// callbackSessions asks a Django view who a session cookie belongs to.
// Django runs its own SessionMiddleware and authentication backends, so
// this works for every session engine, serializer and user model. Answers
// are remembered per credential for cache_ttl; calls are bounded by
// max_concurrency and identical concurrent questions share one call. Any
// failure refuses the credential (ReasonCallbackUnavailable): a socket is
// never accepted because Django could not be asked.
type callbackSessions struct {
	url        string
	secret     []byte
	client     *http.Client
	cacheTTL   time.Duration
	recheckTTL time.Duration
	memo       *verdictMemo
	slots      chan struct{}

	mu       sync.Mutex
	inflight map[[sha256.Size]byte]*callbackCall
}

// callbackCall is one call in flight that others may wait for.
type callbackCall struct {
	done chan struct{}
	v    verdict
}

func newCallbackSessions(cfg *Config) (*callbackSessions, error) {
	c := &cfg.SessionCallback
	transport := &http.Transport{
		Proxy:               nil, // the view is internal; never send credentials through a proxy
		MaxConnsPerHost:     c.MaxConcurrency,
		MaxIdleConnsPerHost: c.MaxConcurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	return &callbackSessions{
		url:    c.URL,
		secret: []byte(c.HookSecret),
		client: &http.Client{
			Transport: transport,
			Timeout:   c.Timeout,
			// A redirect (say, to a login page) is not an answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cacheTTL:   c.CacheTTL,
		recheckTTL: min(c.CacheTTL, cfg.RecheckCacheTTL),
		memo:       newVerdictMemo(c.CacheSize, c.CacheTTL),
		slots:      make(chan struct{}, c.MaxConcurrency),
		inflight:   map[[sha256.Size]byte]*callbackCall{},
	}, nil
}

func (e *callbackSessions) identify(ctx context.Context, value string, now time.Time) (*Identity, error) {
	if len(value) > maxSignedCookie {
		return nil, refuse(ReasonSessionMalformed, "cookie too long")
	}
	if utf8.RuneCountInString(value) < minSessionKeyChars {
		return nil, refuse(ReasonSessionMalformed, "cookie too short to be a session")
	}
	return e.ask(ctx, value, now, e.cacheTTL)
}

// revalidate asks again (or reuses an answer younger than
// min(cache_ttl, recheck_cache_ttl)): the session must still belong to
// the same user and not have expired.
func (e *callbackSessions) revalidate(ctx context.Context, id *Identity, now time.Time) error {
	if !id.Expires.IsZero() && !now.Before(id.Expires) {
		return refuse(ReasonSessionExpired, "past the expiry Django gave")
	}
	if id.sessionKey == "" {
		return refuse(ReasonSessionNoUser, "identity has no session key")
	}
	cur, err := e.ask(ctx, id.sessionKey, now, e.recheckTTL)
	if err != nil {
		return err
	}
	if cur.UserID != id.UserID || cur.SessionAuthHash != id.SessionAuthHash {
		return refuse(ReasonSessionChanged, "the session now belongs to another user or auth hash")
	}
	return nil
}

// ask returns a remembered answer younger than maxAge, or waits for a
// call already in flight for the same credential, or makes the call.
func (e *callbackSessions) ask(ctx context.Context, value string, now time.Time, maxAge time.Duration) (*Identity, error) {
	key := credentialHash(value)
	if v, ok := e.memo.get(key, now, maxAge); ok {
		return v.result()
	}
	e.mu.Lock()
	// Again under the lock: a call that ended since stored its answer
	// before leaving the in-flight table.
	if v, ok := e.memo.get(key, now, maxAge); ok {
		e.mu.Unlock()
		return v.result()
	}
	if c, ok := e.inflight[key]; ok {
		e.mu.Unlock()
		select {
		case <-c.done:
			return c.v.result()
		case <-ctx.Done():
			return nil, refuseErr(ReasonCallbackUnavailable, fmt.Errorf("waiting for the session callback: %w", ctx.Err()))
		}
	}
	c := &callbackCall{done: make(chan struct{})}
	e.inflight[key] = c
	e.mu.Unlock()

	id, err := e.call(ctx, value, now)
	c.v = verdictOf(now, id, err)
	if c.v.reason != ReasonCallbackUnavailable {
		e.memo.put(key, c.v)
	}
	e.mu.Lock()
	delete(e.inflight, key)
	e.mu.Unlock()
	close(c.done)
	return c.v.result()
}

// call makes one signed request and reads the answer.
func (e *callbackSessions) call(ctx context.Context, value string, now time.Time) (*Identity, error) {
	unavailable := func(format string, args ...any) (*Identity, error) {
		return nil, refuseErr(ReasonCallbackUnavailable, fmt.Errorf(format, args...))
	}
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-ctx.Done():
		return unavailable("no free session callback slot: %w", ctx.Err())
	}
	body, err := json.Marshal(callbackRequest{SessionKey: value})
	if err != nil {
		return unavailable("encode callback request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return unavailable("callback request: %w", err)
	}
	// The wall clock, not now: the view compares it with its own clock.
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(CallbackTimestampHeader, ts)
	req.Header.Set(CallbackSignatureHeader, callbackSignaturePrefix+signCallback(e.secret, ts, body))
	resp, err := e.client.Do(req)
	if err != nil {
		// The URL error text names the URL only, never the body.
		return unavailable("session callback: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxCallbackAnswer+1))
	if err != nil {
		return unavailable("read session callback answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, refuse(ReasonSessionNoUser, "Django found no logged-in user for this session")
	case http.StatusForbidden:
		return nil, refuse(ReasonCallbackRefused, "Django refused this session")
	case http.StatusBadRequest:
		return unavailable("session callback answered 400: check that hook_secret is the same on both sides and the clocks agree")
	default:
		return unavailable("session callback answered HTTP %d", resp.StatusCode)
	}
	if len(answer) > maxCallbackAnswer {
		return unavailable("session callback answer longer than %d bytes", maxCallbackAnswer)
	}
	var a callbackAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return unavailable("session callback answer is not a JSON object")
	}
	if len(a.UserID) == 0 || string(a.UserID) == "null" {
		return nil, refuse(ReasonSessionNoUser, "Django answered without a user")
	}
	userID, err := userIDFromJSON(a.UserID)
	if err != nil {
		return unavailable("session callback answer: user_id: %w", err)
	}
	id := &Identity{UserID: userID, Method: MethodSession, Backend: a.Backend, SessionAuthHash: a.SessionAuthHash, sessionKey: value}
	if len(a.ExpiresAt) > 0 && string(a.ExpiresAt) != "null" {
		sec, err := numericDate(a.ExpiresAt)
		if err != nil {
			return unavailable("session callback answer: expires_at: %w", err)
		}
		id.Expires = time.Unix(sec, 0)
		if !now.Before(id.Expires) {
			return nil, refuse(ReasonSessionExpired, "Django says the session has expired")
		}
	}
	return id, nil
}

// signCallback is the request signature: hex HMAC-SHA256 over
// timestamp "." body.
func signCallback(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (e *callbackSessions) close() error {
	e.client.CloseIdleConnections()
	return nil
}
