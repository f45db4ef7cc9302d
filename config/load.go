package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/channels-sidecar/channels-sidecar/proxy"
)

// Default is the embedded configuration used when no file is given: the
// in-memory channel layer and the demo chat route, so the sidecar runs with
// no Redis and no Django.
//
//go:embed default.yaml
var Default []byte

// LookupEnv reads an environment variable; os.LookupEnv in production.
type LookupEnv func(string) (string, bool)

// Environment variables that override the file, for the settings most
// often changed per deployment.
const (
	EnvListen   = "SIDECAR_LISTEN"    // listen
	EnvUpstream = "SIDECAR_UPSTREAM"  // upstream.url
	EnvRedisURL = "SIDECAR_REDIS_URL" // channel_layer.hosts; a memory backend becomes redis
)

// Load reads and checks a config file. An empty path loads Default.
func Load(path string, env LookupEnv) (*Config, error) {
	if path == "" {
		return Parse("(embedded default)", Default, env)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data, env)
}

// Parse decodes YAML, expands ${VAR} and ${VAR:-default} in values,
// applies SIDECAR_* overrides and defaults, and validates. Every error names
// the file, the line and the key.
func Parse(name string, data []byte, env LookupEnv) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(name, err)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of settings", name, root.Line)
	}
	if err := expandEnv(root, env); err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	if err := checkKnown(root, reflect.TypeOf(Config{}), ""); err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	var cfg Config
	if err := root.Decode(&cfg); err != nil {
		return nil, decodeError(name, root, err)
	}
	applyOverrides(&cfg, env)
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, located(name, root, err)
	}
	return &cfg, nil
}

func applyOverrides(cfg *Config, env LookupEnv) {
	if v, ok := env(EnvListen); ok && v != "" {
		cfg.Listen = v
	}
	if v, ok := env(EnvUpstream); ok && v != "" {
		cfg.Upstream.URL = v
	}
	if v, ok := env(EnvRedisURL); ok && v != "" {
		// A Redis URL turns the in-memory default into the core layer, and
		// leaves a Redis backend the file chose (core or pub/sub) as it is.
		if b := cfg.ChannelLayer.Backend; b == "" || b == "memory" || b == "channels.layers.InMemoryChannelLayer" {
			cfg.ChannelLayer.Backend = "redis"
		}
		cfg.ChannelLayer.Hosts = append(cfg.ChannelLayer.Hosts[:0:0], v)
	}
}

var lineRE = regexp.MustCompile(`line (\d+): `)

func syntaxError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", name, m[1], strings.Replace(msg, m[0], "", 1))
	}
	return fmt.Errorf("%s: %s", name, msg)
}

// decodeError rewrites yaml type errors ("line 5: cannot unmarshal ...")
// to name the key found on that line.
func decodeError(name string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", name, err)
	}
	var lines []string
	for _, e := range te.Errors {
		m := lineRE.FindStringSubmatch(e)
		if m == nil {
			lines = append(lines, name+": "+e)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		key := keyAtLine(root, n, "")
		msg := strings.Replace(e, m[0], "", 1)
		if key != "" {
			msg = key + ": " + msg
		}
		lines = append(lines, fmt.Sprintf("%s:%d: %s", name, n, msg))
	}
	return errors.New(strings.Join(lines, "\n"))
}

// located turns a validation error into one naming the line of its key.
func located(name string, root *yaml.Node, err error) error {
	var fe *proxy.FieldError
	if !errors.As(err, &fe) {
		return fmt.Errorf("%s: %w", name, err)
	}
	line := lineOf(root, fe.Field)
	return fmt.Errorf("%s:%d: %s: %w", name, line, fe.Field, fe.Err)
}

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}|\$\$`)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar value, in
// the parsed tree so that a value with ':' or '#' cannot change the
// document's structure. $$ is a literal $.
func expandEnv(n *yaml.Node, env LookupEnv) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return nil
		}
		var missing string
		out := envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			sub := envRE.FindStringSubmatch(m)
			if v, ok := env(sub[1]); ok && (v != "" || sub[2] == "") {
				return v
			}
			if sub[2] != "" {
				return sub[3]
			}
			if missing == "" {
				missing = sub[1]
			}
			return ""
		})
		if missing != "" {
			return fmt.Errorf("%d: environment variable %s is not set (use ${%s:-default} for a fallback)", n.Line, missing, missing)
		}
		if out != n.Value {
			n.Value = out
			if n.Style == 0 {
				n.Tag = "" // resolve the expanded text afresh: "8080" is an int
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := expandEnv(n.Content[i], env); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := expandEnv(c, env); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields lists a struct's keys, flattening inline fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// checkKnown refuses keys the configuration does not have, so a typo is an
// error rather than a silently ignored setting.
func checkKnown(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			fields := yamlFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				ft, ok := fields[k.Value]
				if !ok {
					names := make([]string, 0, len(fields))
					for f := range fields {
						names = append(names, f)
					}
					sort.Strings(names)
					return fmt.Errorf("%d: %s: unknown key (known keys here: %s)", k.Line, join(path, k.Value), strings.Join(names, ", "))
				}
				if err := checkKnown(v, ft, join(path, k.Value)); err != nil {
					return err
				}
			}
		case reflect.Map:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := checkKnown(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
					return err
				}
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, c := range n.Content {
				if err := checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var segRE = regexp.MustCompile(`^([^\[]*)((?:\[\d+\])*)$`)

// lineOf finds the line of a dotted field path such as routes[0].groups[1];
// where the key is absent (a default), the nearest present parent's line.
func lineOf(root *yaml.Node, field string) int {
	n := root
	line := root.Line
	for _, seg := range strings.Split(field, ".") {
		m := segRE.FindStringSubmatch(seg)
		if m == nil {
			return line
		}
		if m[1] != "" {
			if n.Kind != yaml.MappingNode {
				return line
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == m[1] {
					line = n.Content[i].Line
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return line
			}
			n = next
		}
		for _, idx := range regexp.MustCompile(`\d+`).FindAllString(m[2], -1) {
			i, _ := strconv.Atoi(idx)
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		}
	}
	return line
}

// keyAtLine returns the dotted path of the key or item on a line.
func keyAtLine(n *yaml.Node, line int, path string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Line == line && (v.Kind == yaml.ScalarNode || v.Line == line) {
				if sub := keyAtLine(v, line, p); sub != "" && v.Kind != yaml.ScalarNode {
					return sub
				}
				return p
			}
			if sub := keyAtLine(v, line, p); sub != "" {
				return sub
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if c.Kind == yaml.ScalarNode && c.Line == line {
				return p
			}
			if sub := keyAtLine(c, line, p); sub != "" {
				return sub
			}
		}
	}
	return ""
}
