package bridge

import (
	"errors"
	"fmt"
	"net/url"

	"go.yaml.in/yaml/v3"
)

// Host is one entry of the hosts setting, in any form channels_redis
// accepts, kept as it was written so that a printed configuration reads
// like the Django settings it came from:
//
//   - a URL string: "redis://[[user]:password@]host[:port][/db]",
//     "rediss://…" for TLS, or "unix:///path/to/socket?db=N";
//   - a two-item list [host, port], Python's (host, port) tuple;
//   - a mapping with "address" (a URL) plus connection settings, which
//     apply where the URL does not set the same thing;
//   - a Sentinel mapping: "sentinels" (a list of [host, port]),
//     "master_name", optional "sentinel_kwargs" and connection settings;
//   - a mapping of connection settings: host, port, db, username,
//     password, ssl, ssl_cert_reqs, ssl_ca_certs, ssl_certfile,
//     ssl_keyfile, ssl_check_hostname, socket_timeout,
//     socket_connect_timeout, client_name.
//
// The value is a string, a []any or a map[string]any. ParseHost turns it
// into connection options and reports what is wrong with it.
type Host any

// HostFromURL returns the Host for a Redis URL, as SIDECAR_REDIS_URL or a
// plain string in hosts gives it.
func HostFromURL(u string) Host { return u }

// HostList is the hosts setting: the shard ring, in the order of Django's
// CHANNEL_LAYERS hosts, which must be the same on every process.
type HostList []Host

// UnmarshalYAML decodes a YAML list of hosts in every form Host accepts.
// A bare string or mapping is refused, as channels_redis refuses it, and
// each invalid entry is reported with its line.
func (l *HostList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.SequenceNode:
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*l = nil
			return nil
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf(
			"line %d: hosts must be a list, even for one host: hosts: [\"redis://…\"]", n.Line)}}
	default:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf(
			"line %d: hosts must be a list, even for one host: hosts: [{…}]", n.Line)}}
	}
	out := make(HostList, 0, len(n.Content))
	var errs []string
	for i, item := range n.Content {
		var v any
		if err := item.Decode(&v); err != nil {
			return err
		}
		v = normalizeYAML(v)
		if _, err := ParseHost(v); err != nil {
			errs = append(errs, fmt.Sprintf("line %d: hosts[%d]: %v", errorLine(item, err), i, err))
		}
		out = append(out, Host(v))
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	*l = out
	return nil
}

// MarshalYAML writes the hosts with every password replaced, so that a
// printed configuration never shows one.
func (l HostList) MarshalYAML() (any, error) {
	out := make([]any, len(l))
	for i, h := range l {
		out[i] = redactHost(h)
	}
	return out, nil
}

// errorLine returns the line of the setting an entry's error is about, or
// the entry's own line.
func errorLine(item *yaml.Node, err error) int {
	var ke *hostKeyError
	if item.Kind == yaml.MappingNode && errors.As(err, &ke) {
		for i := 0; i+1 < len(item.Content); i += 2 {
			if item.Content[i].Value == ke.key {
				return item.Content[i].Line
			}
		}
	}
	return item.Line
}

// hostKeyError is an error about one setting of a host mapping.
type hostKeyError struct {
	key string
	err error
}

func (e *hostKeyError) Error() string { return e.key + ": " + e.err.Error() }

func (e *hostKeyError) Unwrap() error { return e.err }

// normalizeYAML turns the map[any]any that YAML gives for mappings with
// non-string keys into map[string]any where every key is a string, so that
// later code sees one mapping type. Other keys stay for ParseHost to
// refuse.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, item := range x {
			ks, ok := k.(string)
			if !ok {
				return x
			}
			m[ks] = normalizeYAML(item)
		}
		return m
	case map[string]any:
		for k, item := range x {
			x[k] = normalizeYAML(item)
		}
		return x
	case []any:
		for i, item := range x {
			x[i] = normalizeYAML(item)
		}
		return x
	}
	return v
}

// redacted replaces secrets in printed hosts.
const redacted = "<redacted>"

// secretHostKeys are mapping keys whose values are never printed.
var secretHostKeys = map[string]bool{"password": true}

// redactHost returns a copy of h without secrets: URL passwords and
// password settings are replaced.
func redactHost(h any) any {
	switch x := h.(type) {
	case string:
		return redactURLString(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			if secretHostKeys[k] {
				m[k] = redacted
				continue
			}
			m[k] = redactHost(v)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = redactHost(v)
		}
		return out
	}
	return h
}

// redactURLString hides the password in a URL's user part and in a
// password query parameter. Text that is not a URL is returned unchanged
// unless it could hold a secret, in which case it is replaced.
func redactURLString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	changed := false
	for k := range q {
		if secretHostKeys[k] {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
