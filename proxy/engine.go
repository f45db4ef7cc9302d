package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/hooks"
)

// This file is the route engine: what a connection does on connect, on an
// inbound frame and on a group event, as its RouteConfig declares.

// scope resolves placeholders for this connection. msg and event are the
// inbound frame and the group event when there is one.
func (c *conn) scope(msg, event map[string]any) Scope {
	return func(name string) (any, bool) {
		if v, ok := c.params[name]; ok {
			return v, true
		}
		head, rest, _ := strings.Cut(name, ".")
		switch head {
		case "now":
			return pythonISOTime(time.Now()), true
		case "channel":
			return c.channel, true
		case "presence":
			if rest == "online" {
				return c.onlineUsers(), true
			}
			return nil, false
		case "user":
			return c.userField(rest)
		case "msg":
			if msg == nil || rest == "" {
				return msg, msg != nil
			}
			return lookupPath(msg, rest)
		case "event":
			if event == nil || rest == "" {
				return event, event != nil
			}
			return lookupPath(event, rest)
		}
		return nil, false
	}
}

func (c *conn) userField(field string) (any, bool) {
	ident := c.identity.Load()
	anon := ident.Anonymous()
	switch field {
	case "id":
		if anon {
			return nil, true
		}
		// A numeric primary key keeps its JSON type, as user.id in Python.
		if n, err := strconv.ParseInt(ident.UserID, 10, 64); err == nil {
			return n, true
		}
		return ident.UserID, true
	case "is_authenticated":
		return !anon, true
	case "is_anonymous":
		return anon, true
	}
	if !anon && field != "" {
		if v, ok := ident.Attrs[field]; ok {
			return v, true
		}
	}
	return nil, false
}

// isSelf reports whether an event field names this socket's user, as a
// Channels consumer compares event["user_id"] == self.user.id.
func (c *conn) isSelf(v any) bool {
	ident := c.identity.Load()
	if ident.Anonymous() || v == nil {
		return false
	}
	return stringify(v) == ident.UserID
}

// pythonISOTime formats like Python's datetime.isoformat() on an aware UTC
// datetime, the form Channels consumers usually send.
func pythonISOTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

// onDisconnect runs the route's on_disconnect actions; the socket is still
// in its groups.
func (c *conn) onDisconnect() {
	for _, a := range c.route.onClose {
		c.runAction(a, phase{event: hooks.EventDisconnect}, nil)
	}
}

func (c *conn) onConnect() {
	for _, a := range c.route.onConnect {
		if !c.runAction(a, phase{event: hooks.EventConnect}, nil) {
			return
		}
	}
}

// errorFrame tells the client its frame was not acted on. The socket stays
// open.
func (c *conn) errorFrame(reason, message string) {
	c.srv.metrics.FrameErrors.WithLabelValues(reason).Inc()
	b, _ := json.Marshal(map[string]any{"type": "error", "error": reason, "message": message})
	c.sendBytes(b)
}

func (c *conn) onFrame(data []byte) {
	r := c.route
	msg, err := decodeFrame(data)
	if err != nil {
		if r.invalid != nil {
			c.srv.metrics.FrameErrors.WithLabelValues("invalid_json").Inc()
			c.sendBytes(r.invalid)
			return
		}
		c.errorFrame("invalid_json", err.Error())
		return
	}
	// The handler's name: the discriminator field, or default_type when the
	// frame has none.
	d := r.cfg.Receive.Discriminator
	handler, _ := msg[d].(string)
	if _, present := msg[d]; !present {
		handler = r.cfg.Receive.DefaultType
	}
	var a *action
	if d != "" && handler != "" {
		a = r.handlers[handler]
	}
	if a == nil {
		a = r.fallback
	}
	if a == nil {
		if r.cfg.Receive.Unknown == "ignore" {
			c.srv.metrics.FrameErrors.WithLabelValues("ignored").Inc()
			return
		}
		if d != "" {
			c.errorFrame("unknown_type", "no handler for this "+d)
		} else {
			c.errorFrame("not_accepted", "this route does not accept frames")
		}
		return
	}
	c.runAction(a, phase{event: hooks.EventReceive, handler: handler}, msg)
}

// decodeFrame parses a JSON object, keeping integers as int64 and other
// numbers as float64, as Python's json module does.
func decodeFrame(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errNotJSON
	}
	if dec.More() {
		return nil, errNotJSON
	}
	if _, err := dec.Token(); err == nil {
		return nil, errNotJSON
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errNotObject
	}
	return normalizeNumbers(m).(map[string]any), nil
}

type frameError string

func (e frameError) Error() string { return string(e) }

const (
	errNotJSON   = frameError("frame is not valid JSON")
	errNotObject = frameError("frame must be a JSON object")
)

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return n
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case map[string]any:
		for k, item := range x {
			x[k] = normalizeNumbers(item)
		}
		return x
	case []any:
		for i, item := range x {
			x[i] = normalizeNumbers(item)
		}
		return x
	}
	return v
}

// phase says where an action runs: on connect, on an inbound frame (with
// its handler name), or on disconnect.
type phase struct {
	event   string
	handler string
}

// runAction performs one declared action. frame is the inbound frame, or
// nil on connect and disconnect. It reports whether the action ran to the
// end: a failed re-check, a refused token or a hook that stops the
// handler end it early.
func (c *conn) runAction(a *action, ph phase, frame map[string]any) bool {
	if !c.allowFrame(a.limit) {
		return false
	}
	if a.critical && !c.recheck() {
		return false
	}
	if a.refresh != nil && !c.refreshToken(a.refresh, frame) {
		return false
	}
	var hookEvent map[string]any
	if a.hook != "" {
		resp, ok := c.callHook(a.hook, ph, frame)
		if !ok {
			return false
		}
		hookEvent = resp.Event
	}
	sc := c.scope(frame, nil)
	if hookEvent != nil {
		base := sc
		sc = func(name string) (any, bool) {
			if rest, ok := strings.CutPrefix(name, "hook."); ok {
				return lookupPath(hookEvent, rest)
			}
			return base(name)
		}
	}
	if a.send != nil {
		b, err := json.Marshal(jsonSafe(a.send.render(sc)))
		if err != nil {
			c.log.Error("rendering reply failed", "err", err)
		} else {
			c.sendBytes(b)
		}
	}
	for _, d := range a.dispatch {
		c.runDispatch(d, sc, frame, hookEvent)
	}
	return true
}

// runDispatch builds an event and sends it to a group or a channel. A
// failure gets an error frame; the socket stays open.
func (c *conn) runDispatch(d *dispatch, sc Scope, frame, hookEvent map[string]any) {
	target := d.target.renderString(sc)
	if d.toGroup && !validGroupName(target) {
		c.errorFrame("invalid_group", "the target group name is not valid")
		return
	}
	if !d.toGroup && !bridge.ValidChannelName(target) {
		c.errorFrame("invalid_channel", "the target channel name is not valid")
		return
	}
	event := make(bridge.Message, len(frame)+2)
	if d.forward {
		for k, v := range frame {
			event[k] = v
		}
	}
	if m, ok := d.event.render(sc).(map[string]any); ok {
		for k, v := range m {
			event[k] = v
		}
	}
	// Django's answer has the last word: the saved message's id, the
	// cleaned text.
	for k, v := range hookEvent {
		if k != "type" {
			event[k] = v
		}
	}
	if _, ok := event["type"].(string); !ok {
		c.errorFrame("invalid_event", "the event has no string type")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	op, err := "group_send", error(nil)
	if d.toGroup {
		err = c.srv.layer.GroupSend(ctx, target, event)
	} else {
		op, err = "send", c.srv.layer.Send(ctx, target, event)
	}
	if err != nil {
		c.srv.metrics.LayerErrors.WithLabelValues(op).Inc()
		c.log.Warn(op+" failed", "target", target, "err", err)
		if errors.Is(err, bridge.ErrChannelFull) {
			c.errorFrame("channel_full", "the receiver is not keeping up, try again")
			return
		}
		c.errorFrame("unavailable", "the message could not be delivered, try again")
	}
}

// forwardRule is the rule for event types a route does not name: the
// event is sent as it is.
var forwardRule = &eventRule{}

// frameCache holds the frames built for one event during one fan-out, per
// rule, so that sockets sharing a rule share the encoded (and compressed)
// frame.
type frameCache struct {
	shared bool // more than one socket: worth a prepared message
	n      int
	rules  [4]*eventRule
	frames [4]outFrame
	more   map[*eventRule]outFrame
}

func (fc *frameCache) get(r *eventRule) (outFrame, bool) {
	for i := 0; i < fc.n; i++ {
		if fc.rules[i] == r {
			return fc.frames[i], true
		}
	}
	f, ok := fc.more[r]
	return f, ok
}

func (fc *frameCache) put(r *eventRule, f outFrame) {
	if fc.n < len(fc.rules) {
		fc.rules[fc.n], fc.frames[fc.n] = r, f
		fc.n++
		return
	}
	if fc.more == nil {
		fc.more = make(map[*eventRule]outFrame)
	}
	fc.more[r] = f
}

// deliverEvent turns a channel-layer event into a frame for this socket.
// It runs on the layer's receive goroutine and must not block. cache is
// nil for a message to this socket alone.
func (c *conn) deliverEvent(msg bridge.Message, cache *frameCache) {
	c.srv.metrics.LayerReceived.Inc()
	typ, _ := msg["type"].(string)
	if strings.HasPrefix(typ, controlPrefix) {
		c.control(typ, msg)
		return
	}
	rule := c.route.events[typ]
	switch {
	case rule != nil && rule.drop:
		return
	case rule == nil && c.route.dropOther:
		c.srv.metrics.EventsDropped.WithLabelValues("unknown_type").Inc()
		return
	}
	if rule != nil && rule.selfField != "" && c.isSelf(msg[rule.selfField]) {
		return
	}
	if rule == nil || rule.frame == nil {
		rule = forwardRule
	}
	cacheable := cache != nil && !rule.perConn
	if cacheable {
		if f, ok := cache.get(rule); ok {
			if f.data != nil {
				c.send(f)
			}
			return
		}
	}
	var frame any
	if rule == forwardRule {
		out := make(map[string]any, len(msg))
		for k, v := range msg {
			if !strings.HasPrefix(k, "__asgi") {
				out[k] = v
			}
		}
		frame = out
	} else {
		frame = rule.frame.render(c.scope(nil, msg))
	}
	b, err := json.Marshal(jsonSafe(frame))
	var f outFrame
	if err != nil {
		c.srv.metrics.EventsDropped.WithLabelValues("unencodable").Inc()
		c.log.Warn("event cannot be sent as JSON", "type", typ, "err", err)
	} else {
		f.data = b
		if cacheable && cache.shared {
			if pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b); err == nil {
				f.pm = pm
			}
		}
	}
	if cacheable {
		cache.put(rule, f)
	}
	if f.data != nil {
		c.send(f)
	}
}

// jsonSafe turns values msgpack can carry and JSON cannot (bytes, maps
// with non-string keys) into JSON-friendly ones. It copies only what it
// changes: one event's values are shared by every socket it goes to.
func jsonSafe(v any) any {
	out, _ := jsonSafeChanged(v)
	return out
}

// jsonSafeChanged is jsonSafe, reporting whether anything changed.
func jsonSafeChanged(v any) (any, bool) {
	switch x := v.(type) {
	case []byte:
		return string(x), true
	case map[string]any:
		var out map[string]any
		for k, item := range x {
			if fixed, changed := jsonSafeChanged(item); changed {
				if out == nil {
					out = make(map[string]any, len(x))
					for k2, v2 := range x {
						out[k2] = v2
					}
				}
				out[k] = fixed
			}
		}
		if out != nil {
			return out, true
		}
		return x, false
	case []any:
		var out []any
		for i, item := range x {
			if fixed, changed := jsonSafeChanged(item); changed {
				if out == nil {
					out = append([]any(nil), x...)
				}
				out[i] = fixed
			}
		}
		if out != nil {
			return out, true
		}
		return x, false
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, item := range x {
			m[stringify(k)] = jsonSafe(item)
		}
		return m, true
	}
	return v, false
}
