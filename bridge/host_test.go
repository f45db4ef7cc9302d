package bridge

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeHosts decodes a YAML hosts list as a config file would.
func decodeHosts(t *testing.T, src string) (HostList, error) {
	t.Helper()
	var c struct {
		Hosts HostList `yaml:"hosts"`
	}
	err := yaml.Unmarshal([]byte(src), &c)
	return c.Hosts, err
}

func mustParseHost(t *testing.T, h Host) HostSpec {
	t.Helper()
	spec, err := ParseHost(h)
	if err != nil {
		t.Fatalf("ParseHost(%#v): %v", h, err)
	}
	return spec
}

func TestHostsEveryFormFromYAML(t *testing.T) {
	src := `
hosts:
  - redis://127.0.0.1:6379/0
  - "rediss://alice:s3cret@cache.example:6380/2?ssl_cert_reqs=none"
  - unix:///run/redis/redis.sock?db=3
  - ["10.0.0.2", 6380]
  - {address: "redis://10.0.0.3:6381", db: 4, password: "pw-from-kwargs", username: bob, socket_timeout: 2.5}
  - {address: "redis://:url-pw@10.0.0.4/5", db: 9, password: "loses"}
  - {host: 10.0.0.5, port: 6382, db: 6, password: "pw6", username: carol, ssl: true, ssl_check_hostname: false, client_name: sidecar}
  - {host: 10.0.0.6}
  - sentinels: [["10.0.0.9", 26379], "10.0.0.10:26380"]
    master_name: mymaster
    db: 7
    password: master-pw
    sentinel_kwargs: {password: sentinel-pw, username: sentuser}
`
	hosts, err := decodeHosts(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 9 {
		t.Fatalf("%d hosts", len(hosts))
	}
	type want struct {
		name, network, addr, user, pass string
		db                              int
		tls, skipVerify                 bool
	}
	wants := []want{
		{"redis://127.0.0.1:6379/0", "tcp", "127.0.0.1:6379", "", "", 0, false, false},
		{"rediss://cache.example:6380/2", "tcp", "cache.example:6380", "alice", "s3cret", 2, true, true},
		{"unix:///run/redis/redis.sock?db=3", "unix", "/run/redis/redis.sock", "", "", 3, false, false},
		{"redis://10.0.0.2:6380/0", "tcp", "10.0.0.2:6380", "", "", 0, false, false},
		{"redis://10.0.0.3:6381/4", "tcp", "10.0.0.3:6381", "bob", "pw-from-kwargs", 4, false, false},
		// URL components win over the mapping's settings.
		{"redis://10.0.0.4:6379/5", "tcp", "10.0.0.4:6379", "", "url-pw", 5, false, false},
		{"rediss://10.0.0.5:6382/6", "tcp", "10.0.0.5:6382", "carol", "pw6", 6, true, true},
		{"redis://10.0.0.6:6379/0", "tcp", "10.0.0.6:6379", "", "", 0, false, false},
	}
	for i, w := range wants {
		spec := mustParseHost(t, hosts[i])
		o := spec.Options
		if spec.Failover != nil || o == nil {
			t.Fatalf("hosts[%d]: %+v", i, spec)
		}
		if spec.Name != w.name || o.Network != w.network || o.Addr != w.addr || o.Username != w.user ||
			o.Password != w.pass || o.DB != w.db || (o.TLSConfig != nil) != w.tls ||
			(o.TLSConfig != nil && o.TLSConfig.InsecureSkipVerify != w.skipVerify) {
			t.Errorf("hosts[%d]: name %q %s %s user %q pass %q db %d tls %+v; want %+v", i, spec.Name, o.Network, o.Addr,
				o.Username, o.Password, o.DB, o.TLSConfig, w)
		}
	}
	if o := mustParseHost(t, hosts[4]).Options; o.ReadTimeout != 2500*time.Millisecond || o.WriteTimeout != 2500*time.Millisecond {
		t.Errorf("socket_timeout: %v %v", o.ReadTimeout, o.WriteTimeout)
	}
	o6 := mustParseHost(t, hosts[6]).Options
	if o6.ClientName != "sidecar" || o6.TLSConfig.VerifyConnection == nil || o6.TLSConfig.ServerName != "10.0.0.5" {
		t.Errorf("kwargs TLS: %+v", o6.TLSConfig)
	}
	if tc := mustParseHost(t, hosts[1]).Options.TLSConfig; tc.ServerName != "cache.example" || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("rediss TLS: %+v", tc)
	}
	s := mustParseHost(t, hosts[8])
	f := s.Failover
	if s.Options != nil || f == nil || f.MasterName != "mymaster" || strings.Join(f.SentinelAddrs, ",") != "10.0.0.9:26379,10.0.0.10:26380" ||
		f.DB != 7 || f.Password != "master-pw" || f.SentinelPassword != "sentinel-pw" || f.SentinelUsername != "sentuser" ||
		f.TLSConfig != nil || s.Name != "sentinel://10.0.0.9:26379,10.0.0.10:26380/mymaster/7" {
		t.Errorf("sentinel: %q %+v", s.Name, f)
	}
	for i, h := range hosts {
		if strings.Contains(mustParseHost(t, h).Name, "pw") || strings.Contains(mustParseHost(t, h).Name, "s3cret") {
			t.Errorf("hosts[%d] name leaks a password: %s", i, mustParseHost(t, h).Name)
		}
	}
}

func TestHostsGoAndPythonURLOptions(t *testing.T) {
	spec := mustParseHost(t, "redis://h:1/0?db=3&pool_size=7&dial_timeout=2s&socket_connect_timeout=1.5&password=qpw&health_check_interval=10")
	o := spec.Options
	// As in redis-py, ?db= wins over the path.
	if o.DB != 3 || o.PoolSize != 7 || o.DialTimeout != 1500*time.Millisecond || o.Password != "qpw" {
		t.Fatalf("options %+v", o)
	}
	// An empty user part, as channels_redis' own tests write it, means no
	// credentials.
	if o := mustParseHost(t, "redis://:@localhost:6391/1").Options; o.Username != "" || o.Password != "" || o.DB != 1 || o.Addr != "localhost:6391" {
		t.Fatalf("empty user part: %+v", o)
	}
	if _, err := ParseHost("redis://h/0?no_such_option=1"); err == nil || !strings.Contains(err.Error(), "no_such_option") {
		t.Fatalf("unknown option: %v", err)
	}
}

func TestHostsTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestCerts(t, dir, "127.0.0.1")
	spec := mustParseHost(t, map[string]any{
		"address": "rediss://127.0.0.1:6390", "ssl_ca_certs": ca, "ssl_certfile": cert, "ssl_keyfile": key,
	})
	tc := spec.Options.TLSConfig
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.InsecureSkipVerify {
		t.Fatalf("TLS config %+v", tc)
	}
	bad := filepath.Join(dir, "missing.pem")
	if _, err := ParseHost("rediss://h:1?ssl_ca_certs=" + bad); err == nil || !strings.Contains(err.Error(), "ssl_ca_certs") {
		t.Fatalf("missing CA file: %v", err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no pem here"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHost("rediss://h:1?ssl_ca_certs=" + empty); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Fatalf("empty CA file: %v", err)
	}
}

func TestHostsErrors(t *testing.T) {
	cases := []struct {
		name string
		host Host
		want string
	}{
		{"nil", nil, "empty entry"},
		{"number", 6379, "integer is not a host"},
		{"scheme", "http://h", "scheme"},
		{"bad url", "redis://:secretpw@h:x/0", "not a valid URL"},
		{"bad db", "redis://:secretpw@h:1/x", "db"},
		{"unix without path", "unix://", "socket path"},
		{"tuple length", []any{"h"}, "[host, port]"},
		{"tuple port", []any{"h", "x"}, "port"},
		{"tuple port range", []any{"h", 70000}, "port"},
		{"kwargs unknown", map[string]any{"host": "h", "hots": 1}, "hots: unknown connection setting"},
		{"kwargs password type", map[string]any{"host": "h", "password": 1234}, "password: must be a string"},
		{"kwargs negative db", map[string]any{"db": -1}, "db"},
		{"kwargs timeout", map[string]any{"socket_timeout": "soon"}, "socket_timeout"},
		{"kwargs ssl files without ssl", map[string]any{"ssl_ca_certs": "/x"}, "need ssl"},
		{"kwargs keyfile alone", map[string]any{"ssl": true, "ssl_keyfile": "/x"}, "ssl_keyfile needs ssl_certfile"},
		{"kwargs cert reqs", map[string]any{"ssl": true, "ssl_cert_reqs": "maybe"}, "ssl_cert_reqs"},
		{"address type", map[string]any{"address": 5}, "address: must be a URL"},
		{"address ssl contradiction", map[string]any{"address": "redis://h", "ssl": true}, "rediss://"},
		{"address unix host", map[string]any{"address": "unix:///s", "host": "h"}, "host: does not apply"},
		{"sentinels without master", map[string]any{"sentinels": []any{[]any{"h", 1}}}, "needs master_name"},
		{"master without sentinels", map[string]any{"master_name": "m"}, "needs sentinels"},
		{"empty sentinels", map[string]any{"master_name": "m", "sentinels": []any{}}, "non-empty list"},
		{"sentinel entry", map[string]any{"master_name": "m", "sentinels": []any{"nocolon"}}, "sentinels: [0]"},
		{"sentinel port", map[string]any{"master_name": "m", "sentinels": []any{[]any{"h", 0}}}, "port"},
		{"sentinel host key", map[string]any{"master_name": "m", "sentinels": []any{"h:1"}, "host": "x"}, "host: does not apply"},
		{"sentinel kwargs type", map[string]any{"master_name": "m", "sentinels": []any{"h:1"}, "sentinel_kwargs": "x"}, "sentinel_kwargs: must be a mapping"},
		{"sentinel kwargs key", map[string]any{"master_name": "m", "sentinels": []any{"h:1"}, "sentinel_kwargs": map[string]any{"db": 1}}, "not supported in sentinel_kwargs"},
		{"sentinel ssl mismatch", map[string]any{"master_name": "m", "sentinels": []any{"h:1"}, "sentinel_kwargs": map[string]any{"ssl": true}}, "ssl must match"},
		{"non-string key", map[any]any{1: "x"}, "keys must be strings"},
	}
	for _, tc := range cases {
		_, err := ParseHost(tc.host)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: error leaks the password: %v", tc.name, err)
		}
	}
}

func TestHostsYAMLErrorsNameTheLine(t *testing.T) {
	cases := []struct{ src, want string }{
		{"hosts: redis://x\n", "line 1: hosts must be a list"},
		{"hosts: {address: redis://x}\n", "line 1: hosts must be a list"},
		{"hosts:\n  - redis://a\n  - host: h\n    port: 99999\n", "line 4: hosts[1]: port: 99999"},
		{"hosts:\n  - redis://a\n  - [h, 1, 2]\n", "line 3: hosts[1]: a list host"},
		{"hosts:\n  - sentinels: [[a, 1]]\n    master_name: m\n    sentinel_kwargs: {db: 1}\n", "line 4: hosts[0]: sentinel_kwargs"},
	}
	for _, tc := range cases {
		_, err := decodeHosts(t, tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.src, err, tc.want)
		}
	}
	hosts, err := decodeHosts(t, "hosts: ~\n")
	if err != nil || hosts != nil {
		t.Fatalf("null hosts: %v %v", hosts, err)
	}
}

func TestHostsMarshalRedacts(t *testing.T) {
	hosts := HostList{
		"redis://user:urlsecret@h:1/0?password=querysecret",
		[]any{"h", 6379},
		map[string]any{"host": "h", "password": "kwsecret"},
		map[string]any{"sentinels": []any{[]any{"s", 26379}}, "master_name": "m", "password": "mastersecret",
			"sentinel_kwargs": map[string]any{"password": "sentinelsecret"}},
	}
	out, err := yaml.Marshal(struct {
		Hosts HostList `yaml:"hosts"`
	}{hosts})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"urlsecret", "querysecret", "kwsecret", "mastersecret", "sentinelsecret"} {
		if strings.Contains(s, secret) {
			t.Errorf("marshalled hosts leak %q:\n%s", secret, s)
		}
	}
	for _, want := range []string{"redis://user:xxxxx@h:1/0", "master_name: m", "- 6379"} {
		if !strings.Contains(s, want) {
			t.Errorf("marshalled hosts lack %q:\n%s", want, s)
		}
	}
	// The originals are untouched.
	if hosts[2].(map[string]any)["password"] != "kwsecret" {
		t.Fatal("redaction changed the configuration")
	}
}

func TestHostFromURL(t *testing.T) {
	c := Config{Backend: BackendRedis, Hosts: HostList{HostFromURL("redis://127.0.0.1:6390/2")}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if spec := mustParseHost(t, c.Hosts[0]); spec.Options.Addr != "127.0.0.1:6390" || spec.Options.DB != 2 {
		t.Fatalf("%+v", spec.Options)
	}
}

// FuzzHostsYAML: no hosts document crashes the decoder or the parser, and
// what decodes without error parses without error.
func FuzzHostsYAML(f *testing.F) {
	for _, s := range []string{
		"hosts: [redis://a]\n",
		"hosts: [[h, 1], {address: 'rediss://u:p@h:2/3?ssl_cert_reqs=none'}]\n",
		"hosts:\n  - sentinels: [[a, 1], 'b:2']\n    master_name: m\n    sentinel_kwargs: {password: x}\n",
		"hosts: [{host: h, port: '7', db: 1.0, socket_timeout: 1e9}]\n",
		"hosts: [unix:///s?db=1]\n",
		"hosts: [{? [1] : 2}]\n",
		"hosts: [&a [x, *a]]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c struct {
			Hosts HostList `yaml:"hosts"`
		}
		if yaml.Unmarshal(data, &c) != nil {
			return
		}
		for i, h := range c.Hosts {
			if _, err := ParseHost(h); err != nil {
				t.Fatalf("hosts[%d] decoded but does not parse: %v", i, err)
			}
		}
		if _, err := yaml.Marshal(c.Hosts); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
