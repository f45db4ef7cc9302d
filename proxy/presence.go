package proxy

import (
	"context"
	"strconv"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/presence"
)

// PresenceTracker is what the route engine needs from package presence.
type PresenceTracker interface {
	Join(ctx context.Context, group, userID, connID string, info map[string]any) (bool, error)
	Leave(ctx context.Context, group, userID, connID string) (bool, error)
	Online(ctx context.Context, group string) ([]presence.Member, error)
}

// routeInfoKey stores the route in a user's presence info, so that any
// process can announce a user whose sidecar died, with the route's own
// leave event.
const routeInfoKey = "_route"

// joinPresence registers an authenticated socket in its route's presence
// group and announces the user if this is their first socket.
func (c *conn) joinPresence() {
	pr := c.route.presence
	id := c.identity.Load()
	if pr == nil || c.srv.presence == nil || id.Anonymous() {
		return
	}
	sc := c.scope(nil, nil)
	c.presenceGroup = pr.group.renderString(sc)
	info, _ := pr.info.render(sc).(map[string]any)
	info[routeInfoKey] = c.route.cfg.Path
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := c.srv.presence.Join(ctx, c.presenceGroup, id.UserID, c.channel, info)
	if err != nil {
		c.log.Warn("presence join failed", "err", err)
		c.presenceGroup = ""
		return
	}
	if first && pr.join != nil {
		c.srv.announce(ctx, pr.announce.renderString(sc), pr.join, presenceScope(sc, info))
	}
}

// leavePresence removes the socket and announces the user's departure if
// it was their last socket.
func (c *conn) leavePresence() {
	pr := c.route.presence
	if pr == nil || c.presenceGroup == "" {
		return
	}
	id := c.identity.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	last, err := c.srv.presence.Leave(ctx, c.presenceGroup, id.UserID, c.channel)
	if err != nil {
		c.log.Warn("presence leave failed", "err", err)
		return
	}
	if last && pr.leave != nil {
		sc := c.scope(nil, nil)
		info, _ := pr.info.render(sc).(map[string]any)
		c.srv.announce(ctx, pr.announce.renderString(sc), pr.leave, presenceScope(sc, info))
	}
}

// onlineUsers lists a presence group for {presence.online}: one object per
// user with user_id (an int when numeric) and the stored info.
func (c *conn) onlineUsers() []any {
	if c.srv.presence == nil || c.presenceGroup == "" {
		return []any{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := c.srv.presence.Online(ctx, c.presenceGroup)
	if err != nil {
		c.log.Warn("presence list failed", "err", err)
		return []any{}
	}
	out := make([]any, 0, len(members))
	for _, m := range members {
		entry := map[string]any{"user_id": userIDValue(m.UserID)}
		for k, v := range m.Info {
			if k != routeInfoKey {
				entry[k] = v
			}
		}
		out = append(out, entry)
	}
	return out
}

func userIDValue(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return n
	}
	return id
}

// presenceScope adds {info.*} to a socket's scope.
func presenceScope(sc Scope, info map[string]any) Scope {
	return func(name string) (any, bool) {
		if len(name) > 5 && name[:5] == "info." {
			return lookupPath(info, name[5:])
		}
		return sc(name)
	}
}

// announce renders a presence event and sends it to a group.
func (s *Server) announce(ctx context.Context, group string, t *template, sc Scope) {
	ev, ok := t.render(sc).(map[string]any)
	if !ok || !validGroupName(group) {
		return
	}
	if err := s.layer.GroupSend(ctx, group, bridge.Message(ev)); err != nil {
		s.metrics.LayerErrors.WithLabelValues("group_send").Inc()
		s.log.Warn("presence announcement failed", "group", group, "err", err)
	}
}

// PresenceLeft announces users whose sidecar stopped heartbeating, found
// by any process's sweep. It is presence.Hooks.OnLeft.
func (s *Server) PresenceLeft(ctx context.Context, left []presence.Left) {
	for _, l := range left {
		route, _ := l.Info[routeInfoKey].(string)
		var pr *presenceRule
		for _, r := range s.routes {
			if r.cfg.Path == route {
				pr = r.presence
			}
		}
		if pr == nil || pr.leave == nil {
			continue
		}
		sc := func(name string) (any, bool) {
			switch name {
			case "user.id":
				return userIDValue(l.UserID), true
			case "now":
				return pythonISOTime(time.Now()), true
			}
			if len(name) > 5 && name[:5] == "info." {
				return lookupPath(l.Info, name[5:])
			}
			return nil, false
		}
		group := l.Group
		if a := pr.announce; a != nil && a.kind == kindLiteral {
			group, _ = a.lit.(string)
		}
		s.announce(ctx, group, pr.leave, sc)
	}
}
