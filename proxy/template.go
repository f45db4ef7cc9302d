package proxy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Scope resolves a dotted placeholder name such as "project_id",
// "user.id", "msg.text" or "event.message" to a value.
type Scope func(name string) (any, bool)

// template is a compiled config value: a map, a list or a scalar whose
// strings may hold {placeholders}. A string that is exactly one placeholder
// takes the placeholder's value with its JSON type, so "{project_id}"
// renders the int 7, not the string "7".
type template struct {
	kind  tkind
	lit   any               // kindLiteral
	whole string            // kindWhole: the placeholder name
	def   *any              // kindWhole: the value when the name is missing
	parts []tpart           // kindString
	keys  []string          // kindMap, in config order
	vals  []*template       // kindMap values or kindList items
	names map[string]string // placeholders used, for validation
}

type tkind uint8

const (
	kindLiteral tkind = iota
	kindWhole
	kindString
	kindMap
	kindList
)

type tpart struct {
	text string
	name string // placeholder name when text is empty
	def  *any   // the value when the name is missing: {event.x|default}
}

// compileTemplate compiles a value decoded from YAML.
func compileTemplate(v any) (*template, error) {
	switch x := v.(type) {
	case string:
		return compileString(x)
	case map[string]any:
		t := &template{kind: kindMap}
		for _, k := range sortedKeys(x) {
			sub, err := compileTemplate(x[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			t.keys = append(t.keys, k)
			t.vals = append(t.vals, sub)
		}
		return t, nil
	case []any:
		t := &template{kind: kindList}
		for i, item := range x {
			sub, err := compileTemplate(item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			t.vals = append(t.vals, sub)
		}
		return t, nil
	default:
		return &template{kind: kindLiteral, lit: x}, nil
	}
}

func compileString(s string) (*template, error) {
	var parts []tpart
	var text strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			text.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			text.WriteByte('}')
			i++
		case c == '{':
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return nil, fmt.Errorf("unclosed { in %q (write {{ for a literal brace)", s)
			}
			spec := s[i+1 : i+j]
			name, defText, hasDef := strings.Cut(spec, "|")
			if !placeholderRE(name) {
				return nil, fmt.Errorf("bad placeholder {%s} in %q", spec, s)
			}
			if text.Len() > 0 {
				parts = append(parts, tpart{text: text.String()})
				text.Reset()
			}
			p := tpart{name: name}
			if hasDef {
				d := parseDefault(defText)
				p.def = &d
			}
			parts = append(parts, p)
			i += j
		case c == '}':
			return nil, fmt.Errorf("unmatched } in %q (write }} for a literal brace)", s)
		default:
			text.WriteByte(c)
		}
	}
	if text.Len() > 0 {
		parts = append(parts, tpart{text: text.String()})
	}
	switch {
	case len(parts) == 0:
		return &template{kind: kindLiteral, lit: ""}, nil
	case len(parts) == 1 && parts[0].name != "":
		return &template{kind: kindWhole, whole: parts[0].name, def: parts[0].def}, nil
	case len(parts) == 1:
		return &template{kind: kindLiteral, lit: parts[0].text}, nil
	}
	return &template{kind: kindString, parts: parts}, nil
}

func placeholderRE(name string) bool {
	if name == "" {
		return false
	}
	for _, seg := range strings.Split(name, ".") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// parseDefault reads the default after '|' as a YAML-style scalar: null,
// true, false, an integer or a float keep their type; 'quoted' or other
// text is a string.
func parseDefault(s string) any {
	switch s {
	case "null", "None", "~":
		return nil
	case "[]":
		return []any{}
	case "{}":
		return map[string]any{}
	case "true", "True":
		return true
	case "false", "False":
		return false
	}
	if len(s) >= 2 && (s[0] == '\'' && s[len(s)-1] == '\'' || s[0] == '"' && s[len(s)-1] == '"') {
		return s[1 : len(s)-1]
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && strings.ContainsAny(s, ".eE") {
		return f
	}
	return s
}

// placeholders calls fn for every placeholder name in the template.
func (t *template) placeholders(fn func(string)) {
	switch t.kind {
	case kindWhole:
		fn(t.whole)
	case kindString:
		for _, p := range t.parts {
			if p.name != "" {
				fn(p.name)
			}
		}
	case kindMap, kindList:
		for _, v := range t.vals {
			v.placeholders(fn)
		}
	}
}

// render evaluates the template. A placeholder with no value renders as
// null when whole, and as the empty string inside text.
func (t *template) render(scope Scope) any {
	switch t.kind {
	case kindLiteral:
		return t.lit
	case kindWhole:
		v, ok := scope(t.whole)
		if !ok && t.def != nil {
			return *t.def
		}
		return v
	case kindString:
		var b strings.Builder
		for _, p := range t.parts {
			if p.name == "" {
				b.WriteString(p.text)
				continue
			}
			if v, ok := scope(p.name); ok {
				b.WriteString(stringify(v))
			} else if p.def != nil {
				b.WriteString(stringify(*p.def))
			}
		}
		return b.String()
	case kindMap:
		m := make(map[string]any, len(t.keys))
		for i, k := range t.keys {
			m[k] = t.vals[i].render(scope)
		}
		return m
	case kindList:
		l := make([]any, len(t.vals))
		for i, v := range t.vals {
			l[i] = v.render(scope)
		}
		return l
	}
	return nil
}

// renderString renders a template that must produce text, such as a group
// name.
func (t *template) renderString(scope Scope) string {
	v := t.render(scope)
	if s, ok := v.(string); ok {
		return s
	}
	return stringify(v)
}

// stringify formats a value the way Python's str() does for the JSON
// types, so "chat_{project_id}" gives "chat_7" as in a Channels consumer.
func stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case json.Number:
		return x.String()
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

// lookupPath walks a dotted path into nested maps.
func lookupPath(root map[string]any, path string) (any, bool) {
	var cur any = root
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[seg]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
