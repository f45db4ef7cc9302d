package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// maxCloseReason is the most bytes a close reason may have: a close
// frame's payload is at most 125 bytes, two of which hold the code.
const maxCloseReason = 123

// responseKeys are the keys an answer may have, for the error that names
// an unknown one.
var responseKeys = []string{"allow", "close", "error", "event", "group_send", "join", "leave", "reply"}

// parseResponse decodes and checks an answer strictly: it must be one JSON
// object whose keys are all known and each of the expected type. A key
// whose value is null counts as absent, as Python code readily produces
// None. Numbers keep Python's distinction: integers become int64 (uint64
// past its range), other numbers float64.
func parseResponse(data []byte) (*Response, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("answer is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("answer has data after its JSON value")
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("answer must be a JSON object, not %s", jsonType(v))
	}
	// Keys are visited in order so that the first error is the same on
	// every run.
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r := &Response{}
	for _, k := range keys {
		val := top[k]
		if val == nil {
			if !isResponseKey(k) {
				return nil, unknownKey(k)
			}
			continue
		}
		var err error
		switch k {
		case "allow":
			b, ok := val.(bool)
			if !ok {
				return nil, fmt.Errorf(`"allow" must be true or false, not %s`, jsonType(val))
			}
			r.Allow = &b
		case "reply":
			r.Reply, err = parseObjects("reply", val)
		case "event":
			r.Event, err = parseObject("event", val)
		case "group_send":
			r.GroupSend, err = parseGroupSends(val)
		case "join":
			r.Join, err = parseGroups("join", val)
		case "leave":
			r.Leave, err = parseGroups("leave", val)
		case "error":
			r.Error, err = parseErrorFrame(val)
		case "close":
			r.Close, err = parseClose(val)
		default:
			return nil, unknownKey(k)
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

func isResponseKey(k string) bool {
	for _, known := range responseKeys {
		if k == known {
			return true
		}
	}
	return false
}

func unknownKey(k string) error {
	return fmt.Errorf("answer has unknown key %q (known keys: %s)", k, strings.Join(responseKeys, ", "))
}

// parseObject checks that v is a JSON object and normalizes its numbers.
func parseObject(where string, v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%q must be a JSON object, not %s", where, jsonType(v))
	}
	normalizeNumbers(m)
	return m, nil
}

// parseObjects checks that v is an array of JSON objects.
func parseObjects(where string, v any) ([]map[string]any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%q must be an array of JSON objects, not %s", where, jsonType(v))
	}
	out := make([]map[string]any, len(arr))
	for i, item := range arr {
		m, err := parseObject(where+"["+strconv.Itoa(i)+"]", item)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// parseGroups checks that v is an array of valid Channels group names.
func parseGroups(where string, v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%q must be an array of group names, not %s", where, jsonType(v))
	}
	out := make([]string, len(arr))
	for i, item := range arr {
		g, err := parseGroupName(where+"["+strconv.Itoa(i)+"]", item)
		if err != nil {
			return nil, err
		}
		out[i] = g
	}
	return out, nil
}

func parseGroupName(where string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q must be a group name string, not %s", where, jsonType(v))
	}
	if !bridge.ValidGroupName(s) {
		return "", fmt.Errorf("%q: %q is not a valid group name (ASCII letters, digits, '-', '_', '.'; under 100 characters)", where, s)
	}
	return s, nil
}

// parseGroupSends checks an array of {"group": ..., "event": {"type": ...}}.
func parseGroupSends(v any) ([]GroupSend, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf(`"group_send" must be an array of {"group", "event"} objects, not %s`, jsonType(v))
	}
	out := make([]GroupSend, len(arr))
	for i, item := range arr {
		where := "group_send[" + strconv.Itoa(i) + "]"
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q must be a JSON object, not %s", where, jsonType(item))
		}
		if err := onlyKeys(where, m, "group", "event"); err != nil {
			return nil, err
		}
		g, err := parseGroupName(where+".group", m["group"])
		if err != nil {
			return nil, err
		}
		ev, err := parseObject(where+".event", m["event"])
		if err != nil {
			return nil, err
		}
		if t, ok := ev["type"].(string); !ok || t == "" {
			return nil, fmt.Errorf("%q needs a non-empty string \"type\", as every group_send event does", where+".event")
		}
		out[i] = GroupSend{Group: g, Event: ev}
	}
	return out, nil
}

// parseErrorFrame checks {"error": "<code>", "message": "<text>"}; the
// message may be left out.
func parseErrorFrame(v any) (*ErrorFrame, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf(`"error" must be a JSON object {"error", "message"}, not %s`, jsonType(v))
	}
	if err := onlyKeys("error", m, "error", "message"); err != nil {
		return nil, err
	}
	code, ok := m["error"].(string)
	if !ok || code == "" {
		return nil, fmt.Errorf(`"error.error" must be a non-empty string code, not %s`, jsonType(m["error"]))
	}
	e := &ErrorFrame{Error: code}
	if msg, present := m["message"]; present && msg != nil {
		s, ok := msg.(string)
		if !ok {
			return nil, fmt.Errorf(`"error.message" must be a string, not %s`, jsonType(msg))
		}
		e.Message = s
	}
	return e, nil
}

// parseClose checks {"code": 1000 or 3000-4999, "reason": "..."}; the
// reason may be left out.
func parseClose(v any) (*Close, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf(`"close" must be a JSON object {"code", "reason"}, not %s`, jsonType(v))
	}
	if err := onlyKeys("close", m, "code", "reason"); err != nil {
		return nil, err
	}
	n, ok := m["code"].(json.Number)
	if !ok {
		return nil, fmt.Errorf(`"close.code" must be an integer, not %s`, jsonType(m["code"]))
	}
	code, err := strconv.Atoi(n.String())
	if err != nil {
		return nil, fmt.Errorf(`"close.code" must be an integer, not %s`, n.String())
	}
	if code != 1000 && (code < 3000 || code > 4999) {
		return nil, fmt.Errorf(`"close.code" %d: an application may close with 1000 or 3000-4999 only`, code)
	}
	c := &Close{Code: code}
	if reason, present := m["reason"]; present && reason != nil {
		s, ok := reason.(string)
		if !ok {
			return nil, fmt.Errorf(`"close.reason" must be a string, not %s`, jsonType(reason))
		}
		if len(s) > maxCloseReason {
			return nil, fmt.Errorf(`"close.reason" is %d bytes; a close frame holds at most %d`, len(s), maxCloseReason)
		}
		if !utf8.ValidString(s) {
			return nil, errors.New(`"close.reason" is not valid UTF-8`)
		}
		c.Reason = s
	}
	return c, nil
}

// onlyKeys refuses keys other than the allowed ones, so that a typo in a
// view is an error rather than silently ignored.
func onlyKeys(where string, m map[string]any, allowed ...string) error {
	var unknown []string
	for k := range m {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("%q has unknown key %s (known keys: %s)", where, strings.Join(unknown, ", "), strings.Join(allowed, ", "))
}

// jsonType names the JSON type of a decoded value, for error messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64, int64, uint64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// normalizeNumbers replaces every json.Number inside v, in place, with an
// int64 when it is an integer that fits (uint64 when only that fits) and a
// float64 otherwise, the way Python's json module tells int from float; a
// number beyond float64's range stays a json.Number.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return numberValue(x)
	case map[string]any:
		for k, item := range x {
			x[k] = normalizeNumbers(item)
		}
	case []any:
		for i, item := range x {
			x[i] = normalizeNumbers(item)
		}
	}
	return v
}

func numberValue(n json.Number) any {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u
		}
	}
	// A number beyond float64 would become ±Inf, which JSON cannot carry
	// on; it stays a json.Number, which encodes back to the same text.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return n
	}
	return f
}
