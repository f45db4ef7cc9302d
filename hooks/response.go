package hooks

// Response is Django's answer to one hook call. Every field is optional;
// nil or empty means the view did not say it.
type Response struct {
	// Allow is the authorize/connect verdict: false refuses the socket
	// (HTTP 403 before the handshake is accepted, close 4003 after). Nil
	// means the view did not say, which does not refuse.
	Allow *bool
	// Reply lists frames to send to this socket, in order.
	Reply []map[string]any
	// Event holds fields merged into the handler's own group_send event,
	// such as the message_id of a saved message and its cleaned text.
	Event map[string]any
	// GroupSend lists events to send to groups, in order.
	GroupSend []GroupSend
	// Join lists groups this socket joins.
	Join []string
	// Leave lists groups this socket leaves.
	Leave []string
	// Error is sent to the socket as {"type": "error", ...}; the handler
	// stops and the socket stays open.
	Error *ErrorFrame
	// Close closes the socket with a code and reason.
	Close *Close
}

// GroupSend is one event for a group, as Django's channel_layer.group_send
// would send it.
type GroupSend struct {
	// Group is a valid Channels group name.
	Group string
	// Event is the message; it has a non-empty string "type".
	Event map[string]any
}

// ErrorFrame is an error to report to the socket.
type ErrorFrame struct {
	// Error is a short machine-readable code, such as "not_member".
	Error string
	// Message is text for people; it may be empty.
	Message string
}

// Close asks for the socket to be closed.
type Close struct {
	// Code is 1000 or in 3000-4999.
	Code int
	// Reason is at most 123 bytes of UTF-8.
	Reason string
}

// Denied reports whether the answer refuses the socket: allow is present
// and false.
func (r *Response) Denied() bool { return r.Allow != nil && !*r.Allow }

// clone copies r deeply, so that a cached answer cannot be changed
// through the copy a caller got.
func (r *Response) clone() *Response {
	if r == nil {
		return nil
	}
	out := &Response{}
	if r.Allow != nil {
		a := *r.Allow
		out.Allow = &a
	}
	if r.Reply != nil {
		out.Reply = make([]map[string]any, len(r.Reply))
		for i, f := range r.Reply {
			out.Reply[i] = cloneObject(f)
		}
	}
	out.Event = cloneObject(r.Event)
	if r.GroupSend != nil {
		out.GroupSend = make([]GroupSend, len(r.GroupSend))
		for i, g := range r.GroupSend {
			out.GroupSend[i] = GroupSend{Group: g.Group, Event: cloneObject(g.Event)}
		}
	}
	out.Join = cloneStrings(r.Join)
	out.Leave = cloneStrings(r.Leave)
	if r.Error != nil {
		e := *r.Error
		out.Error = &e
	}
	if r.Close != nil {
		c := *r.Close
		out.Close = &c
	}
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

func cloneObject(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneObject(x)
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = cloneValue(item)
		}
		return out
	}
	return v
}
