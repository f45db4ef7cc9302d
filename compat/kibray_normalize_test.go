package compat

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Kinds of fixture objects that scenarios refer to by name.
const (
	kibrayKindUser         = "user"
	kibrayKindProject      = "project"
	kibrayKindChannel      = "channel"
	kibrayKindMessage      = "message"
	kibrayKindNotification = "notification"
	kibrayKindCapture      = "capture"
)

// kibrayRefPattern is a reference such as {project:p1} or {capture:m1}.
var kibrayRefPattern = regexp.MustCompile(`\{(user|project|channel|message|notification|capture):([A-Za-z0-9_.-]+)\}`)

// kibrayRefs holds what a run learned: the ids Django gave the fixtures,
// by kind and name, and values captured from frames.
type kibrayRefs struct {
	ids      map[string]map[string]int64
	captures map[string]any
}

func newKibrayRefs() *kibrayRefs {
	return &kibrayRefs{ids: map[string]map[string]int64{}, captures: map[string]any{}}
}

// add records the id of a named fixture.
func (r *kibrayRefs) add(kind, name string, id int64) {
	if r.ids[kind] == nil {
		r.ids[kind] = map[string]int64{}
	}
	r.ids[kind][name] = id
}

// lookup returns the value a reference stands for.
func (r *kibrayRefs) lookup(kind, name string) (any, error) {
	if kind == kibrayKindCapture {
		v, ok := r.captures[name]
		if !ok {
			return nil, fmt.Errorf("nothing captured as %q yet", name)
		}
		return v, nil
	}
	id, ok := r.ids[kind][name]
	if !ok {
		return nil, fmt.Errorf("no %s named %q among the fixtures", kind, name)
	}
	return json.Number(strconv.FormatInt(id, 10)), nil
}

// resolveText replaces every reference inside s by its value's text.
func (r *kibrayRefs) resolveText(s string) (string, error) {
	var err error
	out := kibrayRefPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := kibrayRefPattern.FindStringSubmatch(m)
		v, e := r.lookup(sub[1], sub[2])
		if e != nil {
			err = e
			return m
		}
		if str, ok := v.(string); ok {
			return str
		}
		return fmt.Sprint(v)
	})
	return out, err
}

// resolve walks a decoded JSON value: a string that is exactly one
// reference becomes the referenced value, keeping its JSON type (an id
// stays a number); references inside longer strings become text.
func (r *kibrayRefs) resolve(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if m := kibrayRefPattern.FindStringSubmatch(x); m != nil && m[0] == x {
			return r.lookup(m[1], m[2])
		}
		return r.resolveText(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			res, err := r.resolve(item)
			if err != nil {
				return nil, err
			}
			out[k] = res
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			res, err := r.resolve(item)
			if err != nil {
				return nil, err
			}
			out[i] = res
		}
		return out, nil
	}
	return v, nil
}

// resolveRaw decodes raw JSON and resolves its references.
func (r *kibrayRefs) resolveRaw(raw json.RawMessage) (any, error) {
	v, err := decodeKibrayJSON(raw)
	if err != nil {
		return nil, err
	}
	return r.resolve(v)
}

// kibrayTimestamp matches the ISO 8601 forms Python's isoformat() and the
// sidecar write: naive or with an offset, with or without fractions.
var kibrayTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$`)

// kibrayUUID matches a UUID in its canonical text form.
var kibrayUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// kibrayIDKeys maps frame keys that hold ids to the fixture kind they
// name. Keys whose kind is message or notification may also hold ids made
// during the run, which become <id:N>.
var kibrayIDKeys = map[string]string{
	"user_id":         kibrayKindUser,
	"from_user_id":    kibrayKindUser,
	"project_id":      kibrayKindProject,
	"channel_id":      kibrayKindChannel,
	"message_id":      kibrayKindMessage,
	"notification_id": kibrayKindNotification,
	"id":              kibrayKindNotification,
}

// kibrayNormalizer replaces what legitimately differs between runs with
// placeholders: timestamps become <ts>; ids of fixtures become
// <kind:name>; ids made during the run (chat messages, notifications) and
// UUIDs become <id:N> and <uuid:N>, numbered in order of first
// appearance, so that equal ids stay equal and different ones stay
// different. An id sent as text is marked "as text", so that a change of
// JSON type still shows.
type kibrayNormalizer struct {
	names     map[string]map[string]string // kind -> canonical id -> name
	generated map[string]string
	uuids     map[string]string
}

func newKibrayNormalizer(refs *kibrayRefs) *kibrayNormalizer {
	n := &kibrayNormalizer{names: map[string]map[string]string{}, generated: map[string]string{}, uuids: map[string]string{}}
	for kind, byName := range refs.ids {
		n.names[kind] = map[string]string{}
		for name, id := range byName {
			n.names[kind][strconv.FormatInt(id, 10)] = name
		}
	}
	return n
}

// normalizeKibrayTranscripts normalizes every client's transcript,
// visiting clients in the given order so that generated ids are numbered
// the same way on every run.
func normalizeKibrayTranscripts(order []string, transcripts map[string][]any, refs *kibrayRefs) map[string][]any {
	n := newKibrayNormalizer(refs)
	out := make(map[string][]any, len(transcripts))
	for _, name := range order {
		entries := transcripts[name]
		list := make([]any, len(entries))
		for i, e := range entries {
			list[i] = n.value("", canonicalKibrayNumbers(e))
		}
		out[name] = list
	}
	return out
}

// value normalizes v, found under key (empty at the top or in a list).
func (n *kibrayNormalizer) value(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			out[k] = n.value(k, item)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = n.value("", item)
		}
		return out
	case string:
		if kind, ok := kibrayIDKeys[key]; ok && isKibrayDigits(x) {
			return n.id(kind, x, x)
		}
		if kibrayTimestamp.MatchString(x) {
			return "<ts>"
		}
		if kibrayUUID.MatchString(x) {
			return n.numbered(n.uuids, strings.ToLower(x), "uuid")
		}
		return x
	case json.Number:
		if kind, ok := kibrayIDKeys[key]; ok && isKibrayDigits(x.String()) {
			return n.id(kind, x.String(), x)
		}
		return x
	}
	return v
}

// id names an id found under a key of the given kind; original is the
// value as found (a json.Number or a string of digits), which is kept when
// the id is neither a fixture's nor one the run made.
func (n *kibrayNormalizer) id(kind, digits string, original any) any {
	canon := strings.TrimLeft(digits, "0")
	if canon == "" {
		canon = "0"
	}
	suffix := ""
	if _, asText := original.(string); asText {
		suffix = " as text"
	}
	if name, ok := n.names[kind][canon]; ok {
		return "<" + kind + ":" + name + suffix + ">"
	}
	if kind == kibrayKindMessage || kind == kibrayKindNotification {
		p := n.numbered(n.generated, canon, "id")
		return strings.TrimSuffix(p, ">") + suffix + ">"
	}
	return original
}

// numbered returns the placeholder of v in table, adding the next one.
func (n *kibrayNormalizer) numbered(table map[string]string, v, prefix string) string {
	if p, ok := table[v]; ok {
		return p
	}
	p := fmt.Sprintf("<%s:%d>", prefix, len(table)+1)
	table[v] = p
	return p
}

func isKibrayDigits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// canonicalKibrayNumbers rewrites every json.Number in v in one form per
// value, as a browser's JSON.parse sees numbers: 1500, 1500.0 and 1.5e3
// are the same number to a client.
func canonicalKibrayNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return x
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return json.Number(strconv.FormatInt(int64(f), 10))
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			out[k] = canonicalKibrayNumbers(item)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = canonicalKibrayNumbers(item)
		}
		return out
	}
	return v
}

// diffKibrayTranscripts compares two sets of normalized transcripts and
// describes every client whose transcripts differ, or returns "".
func diffKibrayTranscripts(aName string, a map[string][]any, bName string, b map[string][]any) string {
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var sb strings.Builder
	for _, client := range sorted {
		ea, eb := a[client], b[client]
		n := len(ea)
		if len(eb) > n {
			n = len(eb)
		}
		first := -1
		for i := 0; i < n; i++ {
			if i >= len(ea) || i >= len(eb) || kibrayJSON(ea[i]) != kibrayJSON(eb[i]) {
				first = i
				break
			}
		}
		if first < 0 {
			continue
		}
		fmt.Fprintf(&sb, "client %s: first difference at entry %d\n", client, first)
		fmt.Fprintf(&sb, "  %s (%d entries):\n%s", aName, len(ea), indentKibrayEntries(ea))
		fmt.Fprintf(&sb, "  %s (%d entries):\n%s", bName, len(eb), indentKibrayEntries(eb))
	}
	return sb.String()
}

// kibrayJSON is the canonical text of a normalized value: map keys
// sorted, numbers as normalized.
func kibrayJSON(v any) string {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	// Placeholders and cleaned chat text hold <, > and &; escaping them
	// would make failure reports unreadable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("<unencodable %T: %v>", v, err)
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

func indentKibrayEntries(entries []any) string {
	var sb strings.Builder
	for i, e := range entries {
		fmt.Fprintf(&sb, "    %3d %s\n", i, kibrayJSON(e))
	}
	return sb.String()
}
