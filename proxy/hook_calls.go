package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"github.com/channels-sidecar/channels-sidecar/hooks"
)

// HookCaller is what the route engine needs from package hooks.
type HookCaller interface {
	Call(ctx context.Context, path string, req hooks.Request) (*hooks.Response, error)
	Authorize(ctx context.Context, path string, req hooks.Request) (*hooks.Response, error)
}

// hookRequest describes this socket to Django.
func (c *conn) hookRequest(ph phase, frame map[string]any) hooks.Request {
	ident := c.identity.Load()
	return hooks.Request{
		Event: ph.event, Route: c.route.cfg.Path, Path: c.path, Handler: ph.handler,
		Channel: c.channel, Params: c.params, UserID: userIDOf(ident),
		Authenticated: !ident.Anonymous(), Frame: frame,
	}
}

func userIDOf(id *auth.Identity) string {
	if id.Anonymous() {
		return ""
	}
	return id.UserID
}

// callHook calls a Django hook and carries out what the answer asks that
// is not about the action's own events: replies, group sends, joins and
// leaves, an error frame or a close. It reports whether the action goes
// on.
func (c *conn) callHook(path string, ph phase, frame map[string]any) (*hooks.Response, bool) {
	if c.srv.hooks == nil {
		c.errorFrame("hook_failed", "hooks are not configured")
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.srv.hooks.Call(ctx, path, c.hookRequest(ph, frame))
	if err != nil {
		c.srv.metrics.HookFailures.WithLabelValues(hookFailureKind(err)).Inc()
		c.log.Warn("hook failed", "hook", path, "err", err)
		if ph.event != hooks.EventDisconnect {
			c.errorFrame("hook_failed", "the server could not handle this message, try again")
		}
		return nil, false
	}
	if ph.event != hooks.EventDisconnect {
		if resp.Denied() {
			c.close(closeForbidden, "forbidden")
			return resp, false
		}
		if resp.Close != nil {
			c.close(resp.Close.Code, resp.Close.Reason)
			return resp, false
		}
		if e := resp.Error; e != nil {
			c.srv.metrics.FrameErrors.WithLabelValues("hook_error").Inc()
			c.sendJSON(map[string]any{"type": "error", "error": e.Error, "message": e.Message})
			return resp, false
		}
		for _, f := range resp.Reply {
			c.sendJSON(f)
		}
	}
	for _, gs := range resp.GroupSend {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.srv.layer.GroupSend(sctx, gs.Group, gs.Event); err != nil {
			c.srv.metrics.LayerErrors.WithLabelValues("group_send").Inc()
			c.log.Warn("group_send from a hook failed", "group", gs.Group, "err", err)
		}
		scancel()
	}
	if ph.event != hooks.EventDisconnect {
		for _, g := range resp.Join {
			c.changeGroup(g, true)
		}
		for _, g := range resp.Leave {
			c.changeGroup(g, false)
		}
	}
	return resp, true
}

func hookFailureKind(err error) string {
	var he *hooks.Error
	if errors.As(err, &he) {
		return string(he.Kind)
	}
	return "other"
}

// authorize asks the route's authorize hook before the handshake is
// answered, and adds the groups its answer joins. It returns the HTTP
// status to refuse with, or 0 to go on.
func (s *Server) authorize(rt *route, c *conn) (status int, reason string) {
	if rt.cfg.Authorize == nil {
		return 0, ""
	}
	if s.hooks == nil {
		return 503, "hooks_unconfigured"
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WebSocket.HandshakeTimeout)
	defer cancel()
	resp, err := s.hooks.Authorize(ctx, rt.cfg.Authorize.Hook, c.hookRequest(phase{event: hooks.EventAuthorize}, nil))
	if err != nil {
		s.metrics.HookFailures.WithLabelValues(hookFailureKind(err)).Inc()
		s.log.Warn("authorize hook failed", "hook", rt.cfg.Authorize.Hook, "err", err)
		return 503, "authorize_unavailable"
	}
	if resp.Denied() || resp.Close != nil {
		return 403, "authorize_denied"
	}
	// Groups Django chose (a chat channel's, a direct conversation's) are
	// joined with the route's own, before the handshake is answered.
	for _, g := range resp.Join {
		if validGroupName(g) {
			c.groups = append(c.groups, g)
		}
	}
	return 0, ""
}
