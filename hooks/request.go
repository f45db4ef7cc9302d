package hooks

import (
	"encoding/json"
	"fmt"
)

// Events a hook call can be about.
const (
	// EventAuthorize asks before the handshake is accepted whether the
	// user may open this socket.
	EventAuthorize = "authorize"
	// EventConnect reports a socket that was just accepted.
	EventConnect = "connect"
	// EventReceive hands Django an inbound frame that needs it.
	EventReceive = "receive"
	// EventDisconnect reports a socket that closed.
	EventDisconnect = "disconnect"
)

// Request is what the sidecar tells Django in one hook call.
type Request struct {
	// Event is one of EventAuthorize, EventConnect, EventReceive and
	// EventDisconnect.
	Event string
	// Route is the route's path pattern, such as
	// /ws/chat/project/{project_id:int}/.
	Route string
	// Path is the request path of the socket.
	Path string
	// Handler is the discriminator value of the inbound frame (receive
	// only).
	Handler string
	// Channel is the socket's channel name; empty before the socket has
	// one (authorize).
	Channel string
	// Params are the typed path parameters; nil is sent as {}.
	Params map[string]any
	// UserID is the user's primary key as text; empty for an anonymous
	// user, sent as null.
	UserID string
	// Authenticated says whether the socket carries a valid identity.
	Authenticated bool
	// Frame is the inbound frame (receive only); nil is sent as {}.
	Frame map[string]any
}

// wireRequest is the JSON body of a call, key for key as the protocol
// names them.
type wireRequest struct {
	Event   string          `json:"event"`
	Route   string          `json:"route"`
	Path    string          `json:"path"`
	Params  map[string]any  `json:"params"`
	User    wireUser        `json:"user"`
	Channel string          `json:"channel"`
	Handler *string         `json:"handler,omitempty"`
	Frame   *map[string]any `json:"frame,omitempty"`
}

type wireUser struct {
	ID            *string `json:"id"`
	Authenticated bool    `json:"authenticated"`
}

// validEvent reports whether the protocol knows the event.
func validEvent(e string) bool {
	switch e {
	case EventAuthorize, EventConnect, EventReceive, EventDisconnect:
		return true
	}
	return false
}

// encode renders the request body. handler and frame are sent for
// receive events only, always present there so that a view can rely on
// them.
func (r *Request) encode() ([]byte, error) {
	if !validEvent(r.Event) {
		return nil, fmt.Errorf("event %q: want authorize, connect, receive or disconnect", r.Event)
	}
	w := wireRequest{
		Event:   r.Event,
		Route:   r.Route,
		Path:    r.Path,
		Params:  r.Params,
		User:    wireUser{Authenticated: r.Authenticated},
		Channel: r.Channel,
	}
	if w.Params == nil {
		w.Params = map[string]any{}
	}
	if r.UserID != "" {
		id := r.UserID
		w.User.ID = &id
	}
	if r.Event == EventReceive {
		h := r.Handler
		w.Handler = &h
		frame := r.Frame
		if frame == nil {
			frame = map[string]any{}
		}
		// A pointer, because omitempty would drop an empty map.
		w.Frame = &frame
	}
	body, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return body, nil
}
