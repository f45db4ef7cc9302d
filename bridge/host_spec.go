package bridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPort is the port of a host given without one.
const DefaultRedisPort = 6379

// HostSpec is a parsed hosts entry: how to reach one shard of the ring.
type HostSpec struct {
	// Name describes the host for logs, errors and metrics, without any
	// secret: "redis://127.0.0.1:6379/0", "unix:///run/redis.sock?db=1",
	// or "sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0".
	Name string
	// Options are the connection options of a plain Redis server; nil for
	// a Sentinel host.
	Options *redis.Options
	// Failover are the options of a Sentinel host, whose master go-redis
	// finds and follows; nil for a plain host.
	Failover *redis.FailoverOptions
}

// NewClient returns a client for the host. onConnect, if not nil, runs on
// every new connection.
func (s HostSpec) NewClient(onConnect func(context.Context, *redis.Conn) error) *redis.Client {
	if s.Failover != nil {
		o := *s.Failover
		o.OnConnect = onConnect
		return redis.NewFailoverClient(&o)
	}
	o := *s.Options
	o.OnConnect = onConnect
	return redis.NewClient(&o)
}

// ParseHost parses one hosts entry (see Host). Errors name the offending
// setting and never quote a password.
func ParseHost(h Host) (HostSpec, error) {
	switch v := h.(type) {
	case string:
		return parseURLHost(v, nil)
	case []any:
		return parseTupleHost(v)
	case []string:
		items := make([]any, len(v))
		for i, s := range v {
			items[i] = s
		}
		return parseTupleHost(items)
	case map[string]any:
		return parseMappingHost(v)
	case map[any]any:
		m, ok := normalizeYAML(v).(map[string]any)
		if !ok {
			return HostSpec{}, errors.New("mapping keys must be strings")
		}
		return parseMappingHost(m)
	case nil:
		return HostSpec{}, errors.New("empty entry; want a URL, [host, port] or a mapping")
	default:
		return HostSpec{}, fmt.Errorf("a %s is not a host; want a URL, [host, port] or a mapping", typeName(h))
	}
}

// parseTupleHost parses [host, port], Python's (host, port) tuple.
func parseTupleHost(items []any) (HostSpec, error) {
	if len(items) != 2 {
		return HostSpec{}, fmt.Errorf("a list host must be [host, port], got %d items", len(items))
	}
	return parseKwargsHost(map[string]any{"host": items[0], "port": items[1]})
}

// parseMappingHost picks the form of a mapping the way channels_redis
// does: "address" first, then "master_name", else connection settings.
func parseMappingHost(m map[string]any) (HostSpec, error) {
	if addr, ok := m["address"]; ok {
		s, ok := addr.(string)
		if !ok {
			return HostSpec{}, &hostKeyError{key: "address", err: fmt.Errorf("must be a URL string, got a %s", typeName(addr))}
		}
		extra := make(map[string]any, len(m))
		for k, v := range m {
			if k != "address" {
				extra[k] = v
			}
		}
		return parseURLHost(s, extra)
	}
	if _, ok := m["master_name"]; ok {
		return parseSentinelHost(m)
	}
	if _, ok := m["sentinels"]; ok {
		return HostSpec{}, &hostKeyError{key: "sentinels", err: errors.New("a Sentinel host also needs master_name")}
	}
	return parseKwargsHost(m)
}

// pythonURLKeys are query parameters that redis-py's from_url turns into
// connection settings; the ones go-redis also knows keep the meaning
// redis-py gives them. Other parameters are go-redis options.
var pythonURLKeys = map[string]bool{
	"db": true, "username": true, "password": true, "client_name": true,
	"ssl_cert_reqs": true, "ssl_ca_certs": true, "ssl_certfile": true, "ssl_keyfile": true,
	"ssl_check_hostname": true, "socket_timeout": true, "socket_connect_timeout": true,
	"health_check_interval": true, "max_connections": true, "retry_on_timeout": true,
	"socket_keepalive": true, "encoding": true, "decode_responses": true,
}

// parseURLHost parses a URL, with extra connection settings that apply
// where the URL does not say otherwise (channels_redis >= 4.1 passes them
// to from_url, where URL components win).
func parseURLHost(raw string, extra map[string]any) (HostSpec, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the whole input, which may hold a password.
		return HostSpec{}, errors.New("not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "redis", "rediss", "unix":
	default:
		return HostSpec{}, fmt.Errorf("URL scheme %q not supported; use redis://, rediss:// or unix://", u.Scheme)
	}
	fromURL := map[string]any{}
	goQuery := url.Values{}
	for k, vs := range u.Query() {
		switch {
		case len(vs) == 0:
		case pythonURLKeys[k]:
			fromURL[k] = vs[0]
		default:
			goQuery[k] = vs
		}
	}
	if u.User != nil {
		if name := u.User.Username(); name != "" {
			fromURL["username"] = name
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			fromURL["password"] = pw
		}
	}
	socketPath := ""
	if scheme == "unix" {
		socketPath = u.Path
		if strings.TrimSpace(socketPath) == "" {
			return HostSpec{}, errors.New("unix URL has no socket path; use unix:///path/to/redis.sock")
		}
	} else {
		if h := u.Hostname(); h != "" {
			fromURL["host"] = h
		}
		if p := u.Port(); p != "" {
			fromURL["port"] = p
		}
		if db := strings.ReplaceAll(u.Path, "/", ""); db != "" {
			if _, ok := fromURL["db"]; !ok {
				fromURL["db"] = db
			}
		}
	}
	tlsScheme := scheme == "rediss"
	if v, ok := extra["ssl"]; ok {
		on, err := toBool(v)
		if err != nil {
			return HostSpec{}, &hostKeyError{key: "ssl", err: err}
		}
		if on != tlsScheme {
			return HostSpec{}, &hostKeyError{key: "ssl", err: fmt.Errorf("%t contradicts the %s:// address; use rediss:// for TLS", on, scheme)}
		}
	}
	merged := make(map[string]any, len(extra)+len(fromURL)+1)
	for k, v := range extra {
		if scheme == "unix" && (k == "host" || k == "port") {
			return HostSpec{}, &hostKeyError{key: k, err: errors.New("does not apply to a unix:// address")}
		}
		merged[k] = v
	}
	for k, v := range fromURL {
		merged[k] = v
	}
	if tlsScheme {
		merged["ssl"] = true
	}
	cs, err := parseConnSettings(merged, connKeysPlain)
	if err != nil {
		return HostSpec{}, err
	}
	// go-redis parses its own query options (pool_size, dial_timeout, …)
	// and refuses unknown ones.
	opts, err := redis.ParseURL("redis://localhost/?" + goQuery.Encode())
	if err != nil {
		return HostSpec{}, fmt.Errorf("URL options: %w", err)
	}
	if scheme == "unix" {
		opts.Network, opts.Addr = "unix", socketPath
	} else {
		opts.Network, opts.Addr = "tcp", net.JoinHostPort(cs.host, strconv.Itoa(cs.port))
	}
	serverName := ""
	if scheme != "unix" {
		serverName = cs.host
	}
	if err := cs.apply(opts, serverName); err != nil {
		return HostSpec{}, err
	}
	name := scheme + "://" + opts.Addr + "/" + strconv.Itoa(opts.DB)
	if scheme == "unix" {
		name = "unix://" + socketPath + "?db=" + strconv.Itoa(opts.DB)
	}
	return HostSpec{Name: name, Options: opts}, nil
}

// parseKwargsHost parses a mapping of connection settings, which
// channels_redis passes to ConnectionPool(**kwargs).
func parseKwargsHost(m map[string]any) (HostSpec, error) {
	cs, err := parseConnSettings(m, connKeysPlain)
	if err != nil {
		return HostSpec{}, err
	}
	opts := &redis.Options{Network: "tcp", Addr: net.JoinHostPort(cs.host, strconv.Itoa(cs.port))}
	if err := cs.apply(opts, cs.host); err != nil {
		return HostSpec{}, err
	}
	scheme := "redis"
	if cs.ssl {
		scheme = "rediss"
	}
	return HostSpec{Name: scheme + "://" + opts.Addr + "/" + strconv.Itoa(opts.DB), Options: opts}, nil
}

// parseSentinelHost parses {sentinels, master_name, sentinel_kwargs,
// **connection settings}, which channels_redis turns into a
// SentinelConnectionPool.
func parseSentinelHost(m map[string]any) (HostSpec, error) {
	master, ok := m["master_name"].(string)
	if !ok || master == "" {
		return HostSpec{}, &hostKeyError{key: "master_name", err: errors.New("must be a non-empty string")}
	}
	raw, ok := m["sentinels"]
	if !ok {
		return HostSpec{}, &hostKeyError{key: "master_name", err: errors.New("needs sentinels: [[host, port], …] beside it")}
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return HostSpec{}, &hostKeyError{key: "sentinels", err: errors.New("must be a non-empty list of [host, port]")}
	}
	addrs := make([]string, 0, len(list))
	for i, item := range list {
		addr, err := sentinelAddr(item)
		if err != nil {
			return HostSpec{}, &hostKeyError{key: "sentinels", err: fmt.Errorf("[%d]: %w", i, err)}
		}
		addrs = append(addrs, addr)
	}
	conn := make(map[string]any, len(m))
	for k, v := range m {
		switch k {
		case "master_name", "sentinels", "sentinel_kwargs":
		case "host", "port":
			return HostSpec{}, &hostKeyError{key: k, err: errors.New("does not apply to a Sentinel host, whose master the sentinels name")}
		default:
			conn[k] = v
		}
	}
	cs, err := parseConnSettings(conn, connKeysPlain)
	if err != nil {
		return HostSpec{}, err
	}
	var sk connSettings
	if raw := m["sentinel_kwargs"]; raw != nil {
		skm, ok := raw.(map[string]any)
		if !ok {
			return HostSpec{}, &hostKeyError{key: "sentinel_kwargs", err: fmt.Errorf("must be a mapping, got a %s", typeName(raw))}
		}
		if sk, err = parseConnSettings(skm, connKeysSentinel); err != nil {
			return HostSpec{}, &hostKeyError{key: "sentinel_kwargs", err: err}
		}
		if sk.sslSet && sk.ssl != cs.ssl {
			return HostSpec{}, &hostKeyError{key: "sentinel_kwargs", err: errors.New("ssl must match the master's ssl setting; one TLS setting serves both")}
		}
	}
	opts := &redis.Options{}
	if err := cs.apply(opts, ""); err != nil {
		return HostSpec{}, err
	}
	f := &redis.FailoverOptions{
		MasterName:       master,
		SentinelAddrs:    addrs,
		SentinelUsername: sk.username,
		SentinelPassword: sk.password,
		Username:         opts.Username,
		Password:         opts.Password,
		DB:               opts.DB,
		ClientName:       opts.ClientName,
		DialTimeout:      opts.DialTimeout,
		ReadTimeout:      opts.ReadTimeout,
		WriteTimeout:     opts.WriteTimeout,
		TLSConfig:        opts.TLSConfig,
	}
	name := "sentinel://" + strings.Join(addrs, ",") + "/" + master + "/" + strconv.Itoa(f.DB)
	return HostSpec{Name: name, Failover: f}, nil
}

// sentinelAddr parses one Sentinel server: [host, port] or "host:port".
func sentinelAddr(item any) (string, error) {
	var host, port any
	switch x := item.(type) {
	case []any:
		if len(x) != 2 {
			return "", fmt.Errorf("must be [host, port], got %d items", len(x))
		}
		host, port = x[0], x[1]
	case string:
		h, p, err := net.SplitHostPort(x)
		if err != nil {
			return "", fmt.Errorf("%q is not host:port", x)
		}
		host, port = h, p
	default:
		return "", fmt.Errorf("must be [host, port], got a %s", typeName(item))
	}
	h, ok := host.(string)
	if !ok || h == "" {
		return "", errors.New("host must be a non-empty string")
	}
	p, err := toPort(port)
	if err != nil {
		return "", fmt.Errorf("port: %w", err)
	}
	return net.JoinHostPort(h, strconv.Itoa(p)), nil
}

// Which connection settings a mapping may hold.
const (
	connKeysPlain = iota
	connKeysSentinel
)

// ignoredConnKeys are redis-py settings that tune redis-py's own pool and
// have no counterpart to set here; they are accepted so that a mapping
// copied from Django works unchanged.
var ignoredConnKeys = map[string]bool{
	"health_check_interval": true, "max_connections": true, "retry_on_timeout": true,
	"socket_keepalive": true, "encoding": true, "decode_responses": true,
}

// connSettings are the connection settings of one host, from a mapping,
// URL components and URL query parameters.
type connSettings struct {
	host          string
	port          int
	db            int
	username      string
	password      string
	clientName    string
	ssl, sslSet   bool
	certReqs      string
	caCerts       string
	certFile      string
	keyFile       string
	checkHostname *bool
	readTimeout   time.Duration
	dialTimeout   time.Duration
}

// parseConnSettings checks and converts a mapping of redis-py connection
// settings. Values may be YAML-typed or strings from a URL query.
func parseConnSettings(m map[string]any, kind int) (connSettings, error) {
	cs := connSettings{host: "localhost", port: DefaultRedisPort}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same first error every time
	var errs []error
	for _, k := range keys {
		if err := cs.set(k, m[k], kind); err != nil {
			errs = append(errs, &hostKeyError{key: k, err: err})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cs, err
	}
	if !cs.ssl && (cs.certReqs != "" || cs.caCerts != "" || cs.certFile != "" || cs.keyFile != "" || cs.checkHostname != nil) {
		return cs, errors.New("ssl_* settings need ssl: true or a rediss:// URL")
	}
	if cs.keyFile != "" && cs.certFile == "" {
		return cs, errors.New("ssl_keyfile needs ssl_certfile")
	}
	return cs, nil
}

func (cs *connSettings) set(k string, v any, kind int) error {
	if ignoredConnKeys[k] {
		return nil
	}
	if kind == connKeysSentinel {
		switch k {
		case "username", "password", "ssl", "socket_timeout", "socket_connect_timeout":
		default:
			return errors.New("not supported in sentinel_kwargs (supported: username, password, ssl, socket_timeout, socket_connect_timeout)")
		}
	}
	var err error
	switch k {
	case "host":
		h, ok := v.(string)
		if !ok || h == "" {
			return errors.New("must be a non-empty string")
		}
		cs.host = h
	case "port":
		cs.port, err = toPort(v)
	case "db":
		var n int64
		if n, err = toInt(v); err == nil && (n < 0 || n > math.MaxInt32) {
			err = fmt.Errorf("%d is not a database number", n)
		}
		cs.db = int(n)
	case "username":
		cs.username, err = toSecretString(v)
	case "password":
		cs.password, err = toSecretString(v)
	case "client_name":
		cs.clientName, err = toSecretString(v)
	case "ssl":
		cs.ssl, err = toBool(v)
		cs.sslSet = true
	case "ssl_cert_reqs":
		cs.certReqs, err = toCertReqs(v)
	case "ssl_ca_certs":
		cs.caCerts, err = toPath(v)
	case "ssl_certfile":
		cs.certFile, err = toPath(v)
	case "ssl_keyfile":
		cs.keyFile, err = toPath(v)
	case "ssl_check_hostname":
		var b bool
		b, err = toBool(v)
		cs.checkHostname = &b
	case "socket_timeout":
		cs.readTimeout, err = toSeconds(v)
	case "socket_connect_timeout":
		cs.dialTimeout, err = toSeconds(v)
	default:
		return errors.New("unknown connection setting (supported: host, port, db, username, password, ssl, " +
			"ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_check_hostname, socket_timeout, " +
			"socket_connect_timeout, client_name)")
	}
	return err
}

// apply writes the settings into go-redis options. serverName is the name
// TLS checks the certificate against; empty means the dialled host.
func (cs *connSettings) apply(o *redis.Options, serverName string) error {
	o.DB = cs.db
	o.Username = cs.username
	o.Password = cs.password
	if cs.clientName != "" {
		o.ClientName = cs.clientName
	}
	if cs.readTimeout > 0 {
		o.ReadTimeout = cs.readTimeout
		o.WriteTimeout = cs.readTimeout
	}
	if cs.dialTimeout > 0 {
		o.DialTimeout = cs.dialTimeout
	}
	if !cs.ssl {
		o.TLSConfig = nil
		return nil
	}
	tc, err := cs.tlsConfig(serverName)
	if err != nil {
		return err
	}
	o.TLSConfig = tc
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int64, uint64, int32, uint32:
		return "integer"
	case float64, float32:
		return "number"
	case []any, []string:
		return "list"
	case map[string]any, map[any]any:
		return "mapping"
	}
	return fmt.Sprintf("%T", v)
}

// toInt accepts a YAML integer, a whole float, or decimal text.
func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, errors.New("number too large")
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("%v is not a whole number", x)
		}
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("must be a whole number, got a %s", typeName(v))
}

func toPort(v any) (int, error) {
	n, err := toInt(v)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%d is not a port between 1 and 65535", n)
	}
	return int(n), nil
}

// toBool accepts a YAML boolean or the text redis-py's to_bool accepts.
func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "0", "f", "false", "n", "no", "off":
			return false, nil
		case "1", "t", "true", "y", "yes", "on":
			return true, nil
		}
		return false, errors.New("must be true or false")
	}
	return false, fmt.Errorf("must be true or false, got a %s", typeName(v))
}

// toSecretString accepts a string; the value is never echoed, so the
// error only names the type.
func toSecretString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string (quote it in YAML), got a %s", typeName(v))
	}
	return s, nil
}

// toCertReqs accepts redis-py's ssl_cert_reqs: "none", "optional",
// "required", or null for none.
func toCertReqs(v any) (string, error) {
	if v == nil {
		return "none", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf(`must be "none", "optional" or "required", got a %s`, typeName(v))
	}
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "none", "optional", "required":
		return s, nil
	}
	return "", fmt.Errorf(`%q is not "none", "optional" or "required"`, s)
}

func toPath(v any) (string, error) {
	s, ok := v.(string)
	if !ok || s == "" {
		return "", errors.New("must be a file path")
	}
	return s, nil
}

// toSeconds accepts seconds as a YAML number or decimal text, as redis-py
// takes socket timeouts.
func toSeconds(v any) (time.Duration, error) {
	var f float64
	switch x := v.(type) {
	case nil:
		return 0, nil
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, fmt.Errorf("%q is not a number of seconds", x)
		}
	default:
		return 0, fmt.Errorf("must be a number of seconds, got a %s", typeName(v))
	}
	if math.IsNaN(f) || f <= 0 || f > 86400 {
		return 0, fmt.Errorf("%v is not between 0 and 86400 seconds", f)
	}
	return time.Duration(f * float64(time.Second)), nil
}
