package proxy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Auth levels a route can demand at the handshake.
const (
	// AuthNone ignores credentials: every socket is anonymous.
	AuthNone = "none"
	// AuthOptional identifies the user when a valid credential is offered
	// and lets anonymous sockets in otherwise, as Channels'
	// AuthMiddlewareStack does.
	AuthOptional = "optional"
	// AuthRequired refuses the handshake with HTTP 403 unless a valid
	// credential is offered.
	AuthRequired = "required"
	// AuthStaff is AuthRequired for staff: the user's is_staff or
	// is_superuser (auth.database.user_fields) must be true.
	AuthStaff = "staff"
)

// RouteConfig declares one WebSocket route: the Go equivalent of a
// Channels consumer.
type RouteConfig struct {
	// Path is the URL pattern, with typed parameters as in Django:
	// /ws/chat/project/{project_id:int}/. Types: str (default), int,
	// slug, uuid, path.
	Path string `yaml:"path"`
	// Auth is none, optional (the default), required or staff.
	Auth string `yaml:"auth"`
	// Authorize asks a Django view whether the user may open this socket,
	// before the handshake is answered (cached per user and path
	// parameters for hooks.authorize_cache_ttl). Refused: HTTP 403;
	// Django unreachable: HTTP 503.
	Authorize *AuthorizeConfig `yaml:"authorize"`
	// Presence tracks who is online in a presence group, across every
	// sidecar process, announcing a user when their first socket opens
	// and when their last one closes (or their sidecar dies).
	Presence *PresenceConfig `yaml:"presence"`
	// Groups are the groups every socket of the route joins, as templates
	// of path parameters and user fields: "room_{name}", "user_{user.id}".
	Groups []string `yaml:"groups"`
	// OnConnect lists frames sent to the socket right after it is
	// accepted.
	OnConnect []ActionConfig `yaml:"on_connect"`
	// OnDisconnect lists actions run when the socket closes, before it
	// leaves its groups, such as a group_send of a user_left event.
	OnDisconnect []ActionConfig `yaml:"on_disconnect"`
	// Receive says what inbound frames do.
	Receive ReceiveConfig `yaml:"receive"`
	// Events maps a group event type to the frame the socket gets. An
	// event type with no entry is forwarded as it is, without the
	// layer's internal keys, unless UnknownEvents is "drop".
	Events map[string]EventConfig `yaml:"events"`
	// UnknownEvents is forward (the default) or drop.
	UnknownEvents string `yaml:"unknown_events"`
}

// SetDefaults fills unset fields: auth optional, unknown events forwarded.
func (rc *RouteConfig) SetDefaults() {
	if rc.Auth == "" {
		rc.Auth = AuthOptional
	}
	if rc.UnknownEvents == "" {
		rc.UnknownEvents = "forward"
	}
	if len(rc.Receive.Handlers) > 0 && rc.Receive.Discriminator == "" {
		rc.Receive.Discriminator = "type"
	}
}

// LimitConfig is a per-user rate limit.
type LimitConfig struct {
	// Rate is "<count>/<window>": 30/m, 120/min, 5/s, 1000/h, 100/90s.
	Rate string `yaml:"rate"`
	// Key names the budget; routes and handlers with the same key share
	// it, like Kibray's per-consumer-class limits. Default: the route's
	// path (and the handler's name for a handler limit).
	Key string `yaml:"key"`
	// Frame is what a refused frame gets, with {limit}, {window} (seconds)
	// and {retry_after} (seconds, rounded up). Default:
	// {"type": "error", "error": "rate_limit_exceeded", "message": "Rate
	// limit exceeded. Maximum {limit} messages per minute.",
	// "retry_after": "{retry_after}"}.
	Frame map[string]any `yaml:"frame"`
}

// PresenceConfig declares a route's presence. Templates read {user.*},
// path parameters, {now}, and in the events {info.*} (the stored info).
type PresenceConfig struct {
	// Group is the presence group, a template such as "project_{id}".
	Group string `yaml:"group"`
	// Info is stored with the user, such as {username: "{user.username}"},
	// and listed by {presence.online}.
	Info map[string]any `yaml:"info"`
	// Announce is the channel-layer group the join and leave events go
	// to. Default: the presence group.
	Announce string `yaml:"announce"`
	// JoinEvent is sent when a user's first socket opens.
	JoinEvent map[string]any `yaml:"join_event"`
	// LeaveEvent is sent when a user's last socket closes, or their
	// sidecar stopped heartbeating.
	LeaveEvent map[string]any `yaml:"leave_event"`
}

// AuthorizeConfig names the authorize hook.
type AuthorizeConfig struct {
	// Hook is the view's path, relative to hooks.base_url.
	Hook string `yaml:"hook"`
}

// ActionConfig is one thing to do: send a frame to the socket, or send an
// event to a group.
type ActionConfig struct {
	// Send is a frame template sent to the socket itself.
	Send any `yaml:"send"`
	// GroupSend sends an event to a group.
	GroupSend *GroupSendConfig `yaml:"group_send"`
	// ChannelSend sends an event to one channel, such as a Django
	// consumer's channel_name.
	ChannelSend *ChannelSendConfig `yaml:"channel_send"`
	// Critical re-checks the socket's identity before acting (token not
	// expired, session still valid); a failed check closes the socket
	// with 4001. Inbound handlers only.
	Critical bool `yaml:"critical"`
	// Limit bounds how often a user may use this handler.
	Limit *LimitConfig `yaml:"limit"`
	// Hook calls a Django view (see docs/hooks.md) before the rest of the
	// action: its answer can reply, add fields to this action's events
	// ({hook.field} in templates), send to groups, join or leave groups,
	// or stop the action with an error frame or a close.
	Hook string `yaml:"hook"`
	// RefreshToken takes a new access token from the frame and, if it is
	// valid and names the same user, lets the socket keep going with it.
	// Inbound handlers only.
	RefreshToken *RefreshTokenConfig `yaml:"refresh_token"`
}

// RefreshTokenConfig names the frame field that carries a new access
// token.
type RefreshTokenConfig struct {
	// Field is the frame field with the token. Default "token".
	Field string `yaml:"field"`
}

// ReceiveConfig dispatches inbound JSON frames.
type ReceiveConfig struct {
	// Discriminator is the frame field that selects a handler, such as
	// "type" or "action". Empty: every frame goes to Default.
	Discriminator string `yaml:"discriminator"`
	// Handlers maps discriminator values to handlers.
	Handlers map[string]ActionConfig `yaml:"handlers"`
	// Default handles frames no handler matched. Without one, such a
	// frame gets an error frame and the socket stays open.
	Default *ActionConfig `yaml:"default"`
	// DefaultType is the discriminator value assumed when a frame has
	// none, as a consumer's data.get("type", "message").
	DefaultType string `yaml:"default_type"`
	// Unknown says what a frame no handler takes gets: error (an error
	// frame, the default) or ignore (nothing, as a consumer that does not
	// answer unknown types).
	Unknown string `yaml:"unknown"`
	// Limit bounds how many frames a user may send on this route, counted
	// before the frame is even parsed, over a rolling window shared by
	// every sidecar process.
	Limit *LimitConfig `yaml:"limit"`
	// InvalidFrame is the frame a client gets for input that is not a JSON
	// object. Default {"type": "error", "error": "invalid_json",
	// "message": "..."}. The socket stays open either way.
	InvalidFrame map[string]any `yaml:"invalid_frame"`
}

// GroupSendConfig builds an event and sends it to a group.
type GroupSendConfig struct {
	// Group is the target group, a template.
	Group string `yaml:"group"`
	// Event is the event template; it must set "type".
	Event map[string]any `yaml:"event"`
	// ForwardFrame copies every field of the inbound frame into the event
	// before Event's fields are applied.
	ForwardFrame bool `yaml:"forward_frame"`
}

// ChannelSendConfig builds an event and sends it to one channel.
type ChannelSendConfig struct {
	// Channel is the target channel name, a template such as "{msg.to}".
	Channel string `yaml:"channel"`
	// Event is the event template; it must set "type".
	Event map[string]any `yaml:"event"`
	// ForwardFrame copies every field of the inbound frame into the event
	// before Event's fields are applied.
	ForwardFrame bool `yaml:"forward_frame"`
}

// EventConfig turns one group event type into a frame.
type EventConfig struct {
	// Frame is the frame template; placeholders read {event.field}. Empty:
	// the event is forwarded as it is.
	Frame any `yaml:"frame"`
	// Drop discards events of this type.
	Drop bool `yaml:"drop"`
	// SkipSelf drops the event for the socket whose user sent it: the
	// event's SelfField (default "user_id") equals the socket's user id.
	SkipSelf bool `yaml:"skip_self"`
	// SelfField names the event field SkipSelf compares. Default user_id.
	SelfField string `yaml:"self_field"`
}

var groupNameRE = regexp.MustCompile(`^[a-zA-Z\d\-_.]+$`)

// validGroupName applies Channels' group name rules.
func validGroupName(s string) bool { return len(s) < 100 && groupNameRE.MatchString(s) }

// route is a compiled RouteConfig.
type route struct {
	cfg       *RouteConfig
	pattern   *pathPattern
	groups    []*template
	onConnect []*action
	onClose   []*action
	handlers  map[string]*action
	fallback  *action
	events    map[string]*eventRule
	dropOther bool
	invalid   []byte // the encoded invalid_frame, or nil for the default
	limit     *limitRule
	presence  *presenceRule
}

type presenceRule struct {
	group, announce *template
	info, join      *template
	leave           *template
}

type action struct {
	send     *template
	dispatch []*dispatch
	critical bool
	refresh  *RefreshTokenConfig
	hook     string
	limit    *limitRule
}

// dispatch sends a built event to a group or a channel.
type dispatch struct {
	toGroup bool
	target  *template
	event   *template
	forward bool
}

type eventRule struct {
	frame     *template
	drop      bool
	perConn   bool   // the frame reads user.* or channel: built per socket
	selfField string // non-empty: skip the sender's own sockets
}

// compileRoute checks a route and prepares its templates. Errors name the
// field, relative to the route.
func compileRoute(rc *RouteConfig) (*route, error) {
	r := &route{cfg: rc, handlers: map[string]*action{}, events: map[string]*eventRule{}}
	var err error
	if r.pattern, err = compilePathPattern(rc.Path); err != nil {
		return nil, fieldErr("path", err)
	}
	switch rc.Auth {
	case "":
		rc.Auth = AuthOptional
	case AuthNone, AuthOptional, AuthRequired, AuthStaff:
	default:
		return nil, fieldErr("auth", fmt.Errorf("unknown auth level %q (want none, optional, required or staff)", rc.Auth))
	}
	params := map[string]bool{}
	for _, n := range r.pattern.names {
		params[n] = true
	}
	checkNames := func(field string, t *template, allowed ...string) error {
		var bad error
		t.placeholders(func(name string) {
			if bad != nil {
				return
			}
			head, _, _ := strings.Cut(name, ".")
			if params[name] || name == "now" || name == "channel" {
				return
			}
			for _, a := range allowed {
				if head == a {
					return
				}
			}
			bad = fieldErr(field, fmt.Errorf("unknown placeholder {%s}: use a path parameter (%s), user.*, now%s",
				name, strings.Join(r.pattern.names, ", "), allowedList(allowed)))
		})
		return bad
	}
	for i, g := range rc.Groups {
		t, err := compileString(g)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("groups[%d]", i), err)
		}
		if err := checkNames(fmt.Sprintf("groups[%d]", i), t, "user"); err != nil {
			return nil, err
		}
		if t.kind == kindLiteral && !validGroupName(g) {
			return nil, fieldErr(fmt.Sprintf("groups[%d]", i), fmt.Errorf("%q is not a valid group name (letters, digits, - _ . and fewer than 100 characters)", g))
		}
		r.groups = append(r.groups, t)
	}
	compileAction := func(field string, ac *ActionConfig, allowed ...string) (*action, error) {
		a := &action{}
		if ac.Send == nil && ac.GroupSend == nil && ac.ChannelSend == nil && ac.RefreshToken == nil && ac.Hook == "" {
			return nil, fieldErr(field, fmt.Errorf("needs send, group_send, channel_send, hook or refresh_token"))
		}
		if ac.Hook != "" && !strings.HasPrefix(ac.Hook, "/") {
			return nil, fieldErr(field+".hook", fmt.Errorf("must be a path starting with /, relative to hooks.base_url"))
		}
		a.hook = ac.Hook
		allowed = append(allowed[:len(allowed):len(allowed)], "hook")
		inbound := false
		for _, a := range allowed {
			inbound = inbound || a == "msg"
		}
		if ac.Limit != nil {
			if !inbound {
				return nil, fieldErr(field+".limit", fmt.Errorf("applies to inbound frames only"))
			}
			lr, err := compileLimit(ac.Limit, rc.Path+"#"+strings.TrimPrefix(field, "receive.handlers."))
			if err != nil {
				return nil, fieldErr(field+".limit", err)
			}
			a.limit = lr
		}
		if (ac.Critical || ac.RefreshToken != nil) && !inbound {
			return nil, fieldErr(field, fmt.Errorf("critical and refresh_token apply to inbound frames only"))
		}
		a.critical = ac.Critical
		if ac.RefreshToken != nil {
			rt := *ac.RefreshToken
			if rt.Field == "" {
				rt.Field = "token"
			}
			a.refresh = &rt
		}
		if ac.Send != nil {
			t, err := compileTemplate(ac.Send)
			if err != nil {
				return nil, fieldErr(field+".send", err)
			}
			if err := checkNames(field+".send", t, allowed...); err != nil {
				return nil, err
			}
			a.send = t
		}
		compileDispatch := func(field, targetKey, target string, event map[string]any, forward, toGroup bool) error {
			if target == "" {
				return fieldErr(field+"."+targetKey, fmt.Errorf("is required"))
			}
			t, err := compileString(target)
			if err != nil {
				return fieldErr(field+"."+targetKey, err)
			}
			if err := checkNames(field+"."+targetKey, t, allowed...); err != nil {
				return err
			}
			ev := map[string]any{}
			for k, v := range event {
				ev[k] = v
			}
			if _, ok := ev["type"]; !ok && !forward {
				return fieldErr(field+".event", fmt.Errorf("must set type"))
			}
			et, err := compileTemplate(ev)
			if err != nil {
				return fieldErr(field+".event", err)
			}
			if err := checkNames(field+".event", et, allowed...); err != nil {
				return err
			}
			a.dispatch = append(a.dispatch, &dispatch{toGroup: toGroup, target: t, event: et, forward: forward})
			return nil
		}
		if gs := ac.GroupSend; gs != nil {
			if err := compileDispatch(field+".group_send", "group", gs.Group, gs.Event, gs.ForwardFrame, true); err != nil {
				return nil, err
			}
		}
		if cs := ac.ChannelSend; cs != nil {
			if err := compileDispatch(field+".channel_send", "channel", cs.Channel, cs.Event, cs.ForwardFrame, false); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	for i := range rc.OnConnect {
		a, err := compileAction(fmt.Sprintf("on_connect[%d]", i), &rc.OnConnect[i], "user", "presence")
		if err != nil {
			return nil, err
		}
		r.onConnect = append(r.onConnect, a)
	}
	for i := range rc.OnDisconnect {
		ac := &rc.OnDisconnect[i]
		if ac.Send != nil {
			return nil, fieldErr(fmt.Sprintf("on_disconnect[%d].send", i), fmt.Errorf("the socket is closing: nothing can be sent to it"))
		}
		a, err := compileAction(fmt.Sprintf("on_disconnect[%d]", i), ac, "user")
		if err != nil {
			return nil, err
		}
		r.onClose = append(r.onClose, a)
	}
	for _, k := range sortedActionKeys(rc.Receive.Handlers) {
		ac := rc.Receive.Handlers[k]
		a, err := compileAction("receive.handlers."+k, &ac, "user", "msg")
		if err != nil {
			return nil, err
		}
		r.handlers[k] = a
	}
	if len(rc.Receive.Handlers) > 0 && rc.Receive.Discriminator == "" {
		rc.Receive.Discriminator = "type"
	}
	if rc.Receive.Default != nil {
		if r.fallback, err = compileAction("receive.default", rc.Receive.Default, "user", "msg"); err != nil {
			return nil, err
		}
	}
	for k, ec := range rc.Events {
		er := &eventRule{drop: ec.Drop}
		if ec.SkipSelf {
			er.selfField = ec.SelfField
			if er.selfField == "" {
				er.selfField = "user_id"
			}
		}
		if ec.Frame != nil {
			t, err := compileTemplate(ec.Frame)
			if err != nil {
				return nil, fieldErr("events."+k+".frame", err)
			}
			if err := checkNames("events."+k+".frame", t, "user", "event"); err != nil {
				return nil, err
			}
			er.frame = t
			t.placeholders(func(name string) {
				if name == "channel" || strings.HasPrefix(name, "user.") {
					er.perConn = true
				}
			})
		}
		r.events[k] = er
	}
	if pc := rc.Presence; pc != nil {
		pr := &presenceRule{}
		var err error
		if pr.group, err = compileString(pc.Group); err != nil || pc.Group == "" {
			return nil, fieldErr("presence.group", fmt.Errorf("a group template is required"))
		}
		announce := pc.Announce
		if announce == "" {
			announce = pc.Group
		}
		if pr.announce, err = compileString(announce); err != nil {
			return nil, fieldErr("presence.announce", err)
		}
		info := map[string]any{}
		for k, v := range pc.Info {
			info[k] = v
		}
		if pr.info, err = compileTemplate(info); err != nil {
			return nil, fieldErr("presence.info", err)
		}
		for name, ev := range map[string]map[string]any{"join_event": pc.JoinEvent, "leave_event": pc.LeaveEvent} {
			if ev == nil {
				continue
			}
			if _, ok := ev["type"].(string); !ok {
				return nil, fieldErr("presence."+name, fmt.Errorf("must set type"))
			}
			t, err := compileTemplate(ev)
			if err != nil {
				return nil, fieldErr("presence."+name, err)
			}
			if name == "join_event" {
				pr.join = t
			} else {
				pr.leave = t
			}
		}
		r.presence = pr
	}
	if rc.Receive.Limit != nil {
		if r.limit, err = compileLimit(rc.Receive.Limit, rc.Path); err != nil {
			return nil, fieldErr("receive.limit", err)
		}
	}
	switch rc.Receive.Unknown {
	case "", "error", "ignore":
	default:
		return nil, fieldErr("receive.unknown", fmt.Errorf("want error or ignore, not %q", rc.Receive.Unknown))
	}
	if rc.Receive.InvalidFrame != nil {
		b, err := json.Marshal(rc.Receive.InvalidFrame)
		if err != nil {
			return nil, fieldErr("receive.invalid_frame", err)
		}
		r.invalid = b
	}
	switch rc.UnknownEvents {
	case "", "forward":
		rc.UnknownEvents = "forward"
	case "drop":
		r.dropOther = true
	default:
		return nil, fieldErr("unknown_events", fmt.Errorf("want forward or drop, not %q", rc.UnknownEvents))
	}
	return r, nil
}

func allowedList(a []string) string {
	if len(a) == 0 {
		return ""
	}
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x + ".*"
	}
	return ", " + strings.Join(s, ", ")
}

func sortedActionKeys(m map[string]ActionConfig) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FieldError is a config error at a dotted field path, so that the config
// loader can name the YAML line.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, err error) error {
	if fe, ok := err.(*FieldError); ok {
		return &FieldError{Field: field + "." + fe.Field, Err: fe.Err}
	}
	return &FieldError{Field: field, Err: err}
}
