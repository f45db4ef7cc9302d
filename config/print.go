package config

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// secretKeys are printed as <redacted> by Effective.
var secretKeys = map[string]bool{
	"secret_key": true, "secret_key_fallbacks": true, "signing_key": true,
	"symmetric_encryption_keys": true, "password": true, "hook_secret": true, "secret": true,
}

// Effective renders the configuration with every default filled in, as
// YAML, with secrets redacted and durations written as "25s".
func Effective(cfg *Config) ([]byte, error) {
	n := toNode(reflect.ValueOf(cfg).Elem(), "")
	return yaml.Marshal(n)
}

var durationType = reflect.TypeOf(time.Duration(0))

func toNode(v reflect.Value, key string) *yaml.Node {
	if v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		}
		return toNode(v.Elem(), key)
	}
	if secretKeys[key] && !v.IsZero() {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "<redacted>"}
	}
	if v.Type() == durationType {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.Interface().(time.Duration).String()}
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		addStruct(m, v)
		return m
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			ks := fmt.Sprint(k.Interface())
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ks}, toNode(v.MapIndex(k), ks))
		}
		return m
	case reflect.Slice, reflect.Array:
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := 0; i < v.Len(); i++ {
			s.Content = append(s.Content, toNode(v.Index(i), key))
		}
		return s
	case reflect.String:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: redactURL(v.String())}
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprint(v.Interface())}
	}
	return &n
}

func addStruct(m *yaml.Node, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if strings.Contains(opts, "inline") {
			for fv.Kind() == reflect.Pointer {
				fv = fv.Elem()
			}
			addStruct(m, fv)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, toNode(fv, name))
	}
}

// redactURL hides the password of a URL such as redis://:pw@host/0.
func redactURL(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
