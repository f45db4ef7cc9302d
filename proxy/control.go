package proxy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// Control events: event types Django sends to steer sockets rather than to
// reach the browser. Every authenticated socket is in the group
// "sidecar.user.<id>", so one group_send reaches all of a user's sockets:
//
//	group_send("sidecar.user.42", {"type": "sidecar.close", "code": 4001, "reason": "logged out"})
//	group_send("chat_7", {"type": "sidecar.frame", "frame": {"type": "notice", "text": "..."}})
//	group_send("sidecar.user.42", {"type": "sidecar.group_add", "group": "project_9"})
//	group_send("sidecar.user.42", {"type": "sidecar.group_discard", "group": "project_9"})
const (
	controlPrefix       = "sidecar."
	controlClose        = "sidecar.close"
	controlFrame        = "sidecar.frame"
	controlGroupAdd     = "sidecar.group_add"
	controlGroupDiscard = "sidecar.group_discard"

	// UserGroupPrefix names the per-user group of authenticated sockets.
	UserGroupPrefix = "sidecar.user."

	closeAuthExpired = 4001 // after accept: the identity is no longer valid
	closeForbidden   = 4003 // after accept: Django refused the user
)

// control performs a control event on this socket. It runs on the layer's
// receive goroutine, so anything that waits on Redis moves to a goroutine.
func (c *conn) control(typ string, msg bridge.Message) {
	switch typ {
	case controlClose:
		code := closeAuthExpired
		if n, ok := intValue(msg["code"]); ok && (n == 1000 || (n >= 3000 && n <= 4999)) {
			code = int(n)
		}
		reason, _ := msg["reason"].(string)
		if len(reason) > 120 { // a close frame's payload is at most 125 bytes
			reason = reason[:120]
		}
		c.log.Info("closed by control event", "code", code, "reason", reason)
		c.close(code, reason)
	case controlFrame:
		var b []byte
		var err error
		switch f := msg["frame"].(type) {
		case string:
			b = []byte(f)
		case map[string]any, []any:
			b, err = json.Marshal(jsonSafe(f))
		default:
			err = errControlFrame
		}
		if err != nil {
			c.srv.metrics.EventsDropped.WithLabelValues("bad_control").Inc()
			return
		}
		c.sendBytes(b)
	case controlGroupAdd, controlGroupDiscard:
		group, _ := msg["group"].(string)
		if !validGroupName(group) {
			c.srv.metrics.EventsDropped.WithLabelValues("bad_control").Inc()
			return
		}
		go c.changeGroup(group, typ == controlGroupAdd)
	default:
		c.srv.metrics.EventsDropped.WithLabelValues("unknown_control").Inc()
	}
}

const errControlFrame = frameError("sidecar.frame needs a frame (object, list or text)")

// changeGroup joins or leaves a group for this socket on Django's request.
func (c *conn) changeGroup(group string, join bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.groupMu.Lock()
	defer c.groupMu.Unlock()
	if c.closed() {
		return
	}
	idx := -1
	for i, g := range c.joined {
		if g == group {
			idx = i
		}
	}
	switch {
	case join && idx < 0:
		if err := c.srv.hub.join(ctx, c, group); err != nil {
			c.srv.metrics.LayerErrors.WithLabelValues("group_add").Inc()
			c.log.Warn("joining group on request failed", "group", group, "err", err)
			return
		}
		c.joined = append(c.joined, group)
	case !join && idx >= 0:
		c.joined = append(c.joined[:idx], c.joined[idx+1:]...)
		if err := c.srv.hub.leave(ctx, c, group); err != nil {
			c.srv.metrics.LayerErrors.WithLabelValues("group_discard").Inc()
			c.log.Warn("leaving group on request failed", "group", group, "err", err)
		}
	}
}

func intValue(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), x < 1<<63
	case float64:
		return int64(x), x == float64(int64(x))
	case int:
		return int64(x), true
	}
	return 0, false
}
