// Package proxy is the sidecar's front door: a fasthttp server that takes
// WebSocket upgrades on declared routes, runs each route's engine, and
// reverse-proxies every other request to Django.
package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/metrics"
	"github.com/channels-sidecar/channels-sidecar/ratelimit"
)

// Config is the front door's configuration.
type Config struct {
	// Listen is the address to serve on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// Upstream is the Django server that gets every other request.
	Upstream UpstreamConfig `yaml:"upstream"`
	// WebSocket tunes connections.
	WebSocket WebSocketConfig `yaml:"websocket"`
	// Routes are the WebSocket routes, tried in order.
	Routes []RouteConfig `yaml:"routes"`
	// Tunnel passes undeclared WebSocket paths to a Daphne upstream.
	Tunnel TunnelConfig `yaml:"tunnel"`
	// Demo serves a small chat page at / that uses the first route.
	Demo bool `yaml:"demo"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	c.Upstream.SetDefaults()
	c.WebSocket.SetDefaults()
	c.Tunnel.SetDefaults()
	for i := range c.Routes {
		c.Routes[i].SetDefaults()
	}
}

// Validate checks the configuration and compiles nothing.
func (c *Config) Validate() error {
	if err := c.Upstream.Validate(); err != nil {
		return fieldErr("upstream", err)
	}
	if err := c.WebSocket.Validate(); err != nil {
		return fieldErr("websocket", err)
	}
	if err := c.Tunnel.Validate(); err != nil {
		return fieldErr("tunnel", err)
	}
	for i := range c.Routes {
		rc := c.Routes[i]
		if _, err := compileRoute(&rc); err != nil {
			return fieldErr(fmt.Sprintf("routes[%d]", i), err)
		}
	}
	return nil
}

// Authenticator turns a handshake into an identity; see package auth.
type Authenticator interface {
	// Authenticate proves who opens a socket.
	Authenticate(ctx context.Context, h auth.Handshake, now time.Time) (*auth.Identity, error)
	// Revalidate checks, before a critical frame, that the identity still
	// holds.
	Revalidate(ctx context.Context, id *auth.Identity, now time.Time) error
	// AuthenticateToken checks an access token sent in a frame.
	AuthenticateToken(ctx context.Context, token string, now time.Time) (*auth.Identity, error)
}

// Deps are the parts the server is wired to.
type Deps struct {
	Layer     bridge.Layer
	Hub       *Hub
	Auth      Authenticator // nil: every socket is anonymous
	Metrics   *metrics.Metrics
	Endpoints *metrics.Endpoints
	Log       *slog.Logger
	// Hooks calls Django views for routes that declare hooks; nil when
	// no hooks are configured.
	Hooks HookCaller
	// AllowedHosts are Django's ALLOWED_HOSTS for the Origin check when
	// websocket.allowed_origins is not set; nil falls back to the
	// authenticator's, if it has them.
	AllowedHosts []string
	// Presence tracks routes' presence groups; nil turns presence off.
	Presence PresenceTracker
	// Limiter applies the routes' rate limits; nil turns them off.
	Limiter ratelimit.Limiter
	// Subprotocols the server may select, in order of preference, such as
	// the marker that precedes an access token in Sec-WebSocket-Protocol.
	// The token itself is never echoed.
	Subprotocols []string
}

// Server is the HTTP and WebSocket server.
type Server struct {
	cfg       Config
	routes    []*route
	layer     bridge.Layer
	hub       *Hub
	auth      Authenticator
	hooks     HookCaller
	limiter   ratelimit.Limiter
	presence  PresenceTracker
	metrics   *metrics.Metrics
	endpoints *metrics.Endpoints
	log       *slog.Logger
	pass      *Passthrough
	upgrader  websocket.FastHTTPUpgrader
	tunnel    *tunnel
	stopping  chan struct{}
	stopOnce  sync.Once
	srv       *fasthttp.Server
	nextID    atomic.Uint64
	origins   *auth.OriginPolicy
}

// NewServer compiles the routes and prepares the server.
func NewServer(cfg Config, d Deps) (*Server, error) {
	cfg.SetDefaults()
	if d.Hub.layer == nil {
		d.Hub.SetLayer(d.Layer)
	}
	s := &Server{
		cfg: cfg, layer: d.Layer, hub: d.Hub, auth: d.Auth, hooks: d.Hooks, limiter: d.Limiter, presence: d.Presence, metrics: d.Metrics,
		endpoints: d.Endpoints, log: d.Log, stopping: make(chan struct{}),
	}
	for i := range cfg.Routes {
		r, err := compileRoute(&s.cfg.Routes[i])
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("routes[%d]", i), err)
		}
		s.routes = append(s.routes, r)
	}
	origins, err := newOriginPolicy(cfg.WebSocket.AllowedOrigins, d.AllowedHosts, d.Auth, d.Log)
	if err != nil {
		return nil, fieldErr("websocket", err)
	}
	s.origins = origins
	if cfg.Upstream.URL != "" {
		p, err := NewPassthrough(cfg.Upstream, d.Log)
		if err != nil {
			return nil, fieldErr("upstream", err)
		}
		s.pass = p
	}
	s.tunnel = newTunnel(s.cfg.Tunnel)
	s.upgrader = websocket.FastHTTPUpgrader{
		HandshakeTimeout: cfg.WebSocket.HandshakeTimeout,
		Subprotocols:     d.Subprotocols,
		// Idle sockets should hold as little as possible: a small read
		// buffer (frames from browsers are small; larger ones just take
		// more reads), and write buffers borrowed only while writing.
		ReadBufferSize:    1024,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: cfg.WebSocket.Compression.On(),
		// The Origin was checked before Upgrade is called.
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
		Error: func(ctx *fasthttp.RequestCtx, status int, reason error) {
			ctx.Error(reason.Error(), status)
		},
	}
	s.srv = &fasthttp.Server{
		Handler:               s.handle,
		Name:                  "channels-sidecar",
		NoDefaultServerHeader: true,
		ReadTimeout:           60 * time.Second,
		IdleTimeout:           120 * time.Second,
		MaxRequestBodySize:    int(cfg.Upstream.MaxBodySize),
		KeepHijackedConns:     true,
		StreamRequestBody:     true,
		// Multipart uploads go to Django as sent, not parsed and re-encoded.
		DisablePreParseMultipartForm: true,
		Logger:                       slogPrintf{d.Log},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	go s.pingLoop()
	return s.srv.Serve(ln)
}

// pingLoop pings every socket each ping_interval from one goroutine, rather
// than a timer per socket. A client that stays silent past
// ping_interval + pong_timeout is dropped by its read deadline.
func (s *Server) pingLoop() {
	t := time.NewTicker(s.cfg.WebSocket.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
			s.hub.eachConn(func(c *conn) { c.sendPing() })
		}
	}
}

// Shutdown closes every WebSocket with 1001 and stops the server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.hub.closeAll(closeGoingAway, "server shutting down")
	err := s.srv.ShutdownWithContext(ctx)
	if s.pass != nil {
		s.pass.Close()
	}
	return err
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	if s.endpoints != nil && s.endpoints.Serve(ctx) {
		return
	}
	if websocket.FastHTTPIsWebSocketUpgrade(ctx) {
		s.serveWebSocket(ctx)
		return
	}
	if s.cfg.Demo && string(ctx.Path()) == "/" && (ctx.IsGet() || ctx.IsHead()) {
		s.serveDemo(ctx)
		return
	}
	if s.pass != nil {
		s.pass.ServeHTTP(ctx)
		return
	}
	ctx.Error("channels-sidecar: no upstream is configured for this path\n", fasthttp.StatusNotFound)
}

// reject refuses a handshake with an HTTP status, a short body and a
// counted, logged reason.
func (s *Server) reject(ctx *fasthttp.RequestCtx, status int, reason, body string) {
	s.metrics.HandshakesRejected.WithLabelValues(reason).Inc()
	s.log.Info("websocket handshake refused", "path", string(ctx.Path()), "reason", reason,
		"remote", ctx.RemoteAddr().String())
	ctx.Error(body+"\n", status)
}

func (s *Server) serveWebSocket(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	var rt *route
	var params map[string]any
	for _, r := range s.routes {
		if p, ok := r.pattern.match(path); ok {
			rt, params = r, p
			break
		}
	}
	if rt == nil {
		if s.tunnel.takes(path) {
			s.serveTunnel(ctx)
			return
		}
		s.reject(ctx, fasthttp.StatusNotFound, "no_route", "no WebSocket route for this path")
		return
	}
	if ok, reason := s.originAllowed(ctx); !ok {
		s.reject(ctx, fasthttp.StatusForbidden, reason, "origin not allowed")
		return
	}
	var ident *auth.Identity
	if rt.cfg.Auth != AuthNone && s.auth != nil {
		h := auth.Handshake{
			Cookie:        string(ctx.Request.Header.Peek("Cookie")),
			Query:         string(ctx.URI().QueryString()),
			Authorization: string(ctx.Request.Header.Peek("Authorization")),
			Protocols:     splitProtocols(ctx.Request.Header.Peek("Sec-WebSocket-Protocol")),
			Remote:        ctx.RemoteAddr().String(),
		}
		actx, cancel := context.WithTimeout(context.Background(), s.cfg.WebSocket.HandshakeTimeout)
		id, err := s.auth.Authenticate(actx, h, time.Now())
		cancel()
		if err != nil {
			reason := failureReason(err)
			s.metrics.AuthFailures.WithLabelValues(reason).Inc()
			if strings.HasSuffix(reason, "_store_unavailable") || reason == "callback_unavailable" {
				// Django's store is down: not the user's fault, and worth
				// a retry.
				s.reject(ctx, fasthttp.StatusServiceUnavailable, "auth_"+reason, "service unavailable: cannot check credentials")
				return
			}
			if rt.cfg.Auth == AuthRequired || rt.cfg.Auth == AuthStaff {
				s.reject(ctx, fasthttp.StatusForbidden, "auth_"+reason, "forbidden: credentials refused")
				return
			}
			// The authenticator logged each refused credential at INFO.
			s.log.Debug("credential refused, continuing as anonymous", "path", path, "reason", reason)
		} else {
			ident = id
		}
	}
	if (rt.cfg.Auth == AuthRequired || rt.cfg.Auth == AuthStaff) && ident.Anonymous() {
		s.reject(ctx, fasthttp.StatusForbidden, "auth_missing", "forbidden: authentication required")
		return
	}
	if rt.cfg.Auth == AuthStaff && !isStaff(ident) {
		s.reject(ctx, fasthttp.StatusForbidden, "not_staff", "forbidden: staff only")
		return
	}
	id := s.nextID.Add(1)
	c := &conn{
		id: id, srv: s, route: rt, label: rt.cfg.Path, params: params, path: path,
		channel: s.layer.NewChannel(), sendQueue: sendQueue{finished: make(chan struct{})},
		done: make(chan struct{}), framesOut: s.metrics.FramesOut.WithLabelValues(rt.cfg.Path),
	}
	c.identity.Store(ident)
	c.log = s.log.With("conn", id, "route", rt.cfg.Path)
	if !ident.Anonymous() {
		// Every authenticated socket can be reached by user, so Django can
		// close them all after a logout with one group_send.
		if g := UserGroupPrefix + ident.UserID; validGroupName(g) {
			c.groups = append(c.groups, g)
		}
	}
	sc := c.scope(nil, nil)
	for _, g := range rt.groups {
		name := g.renderString(sc)
		if !validGroupName(name) {
			s.reject(ctx, fasthttp.StatusBadRequest, "invalid_group", "bad request: path gives an invalid group name")
			return
		}
		c.groups = append(c.groups, name)
	}
	if status, reason := s.authorize(rt, c); status != 0 {
		s.reject(ctx, status, reason, fasthttp.StatusMessage(status))
		return
	}
	c.compress = s.upgrader.EnableCompression && strings.Contains(
		strings.ToLower(string(ctx.Request.Header.Peek("Sec-WebSocket-Extensions"))), "permessage-deflate")
	if err := c.attach(); err != nil {
		c.log.Warn("joining groups failed", "err", err)
		s.reject(ctx, fasthttp.StatusServiceUnavailable, "layer_unavailable", "service unavailable: channel layer unreachable")
		return
	}
	// fasthttp may drop the connection without calling the hijack handler
	// (the 101 could not be written); whichever of the handler, a failed
	// Upgrade and this timer comes first owns the connection's fate.
	var state atomic.Int32 // 0 pending, 1 running, 2 abandoned
	abandon := func() {
		if state.CompareAndSwap(0, 2) {
			c.detach()
		}
	}
	timer := time.AfterFunc(s.cfg.WebSocket.HandshakeTimeout, abandon)
	err := s.upgrader.Upgrade(ctx, func(ws *websocket.Conn) {
		timer.Stop()
		if !state.CompareAndSwap(0, 1) {
			_ = ws.Close()
			return
		}
		c.ws = ws
		// Returning lets fasthttp release the request context and its
		// buffers (KeepHijackedConns leaves the socket to us); the
		// connection lives on in its own goroutine.
		go c.run()
	})
	if err != nil {
		timer.Stop()
		abandon()
		s.metrics.HandshakesRejected.WithLabelValues("bad_handshake").Inc()
		s.log.Info("websocket upgrade failed", "path", path, "err", err)
	}
}

// originAllowed applies the Origin policy to every Origin header of the
// handshake and returns the refusal reason, one of auth.OriginReasons.
func (s *Server) originAllowed(ctx *fasthttp.RequestCtx) (bool, string) {
	var origins []string
	ctx.Request.Header.VisitAll(func(k, v []byte) {
		if strings.EqualFold(string(k), "Origin") {
			origins = append(origins, string(v))
		}
	})
	return s.origins.Allow(origins, string(ctx.Host()))
}

// newOriginPolicy builds the Origin policy: websocket.allowed_origins,
// else Django's ALLOWED_HOSTS as the authenticator holds them, else the
// same-host default (see auth.NewOriginPolicy), and logs what it admits.
func newOriginPolicy(allowedOrigins, hosts []string, a Authenticator, log *slog.Logger) (*auth.OriginPolicy, error) {
	if h, ok := a.(interface{ AllowedHosts() []string }); ok && hosts == nil {
		hosts = h.AllowedHosts()
	}
	p, err := auth.NewOriginPolicy(allowedOrigins, hosts)
	if err != nil {
		return nil, err
	}
	if log != nil {
		log.Info("websocket origin check", "mode", p.Mode())
		for _, w := range p.Warnings() {
			log.Warn("websocket origin check", "warning", w)
		}
	}
	return p, nil
}

// isStaff applies Django's is_staff or is_superuser test to the user's
// fields.
func isStaff(id *auth.Identity) bool {
	for _, f := range []string{"is_staff", "is_superuser"} {
		if v, ok := id.Attrs[f].(bool); ok && v {
			return true
		}
	}
	return false
}

func splitProtocols(h []byte) []string {
	if len(h) == 0 {
		return nil
	}
	parts := strings.Split(string(h), ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// slogPrintf adapts fasthttp's logger to slog.
type slogPrintf struct{ l *slog.Logger }

func (p slogPrintf) Printf(format string, args ...any) {
	p.l.Warn(fmt.Sprintf(format, args...), "component", "http")
}
