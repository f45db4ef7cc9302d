package ratelimit

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{Backend: "redis", Host: "redis://localhost:6379", Prefix: "sidecar:rl:",
		Timeout: 250 * time.Millisecond, ProbeInterval: time.Second, LocalMaxKeys: 100000}
	if c != want {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	l := Config{Backend: "local"}
	l.SetDefaults()
	if l.Host != nil {
		t.Fatalf("local backend got a host: %v", l.Host)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
backend: redis
host: {address: "redis://cache:6380/2", socket_timeout: 2}
prefix: "app:rl:"
timeout: 100ms
probe_interval: 3s
local_max_keys: 50
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "app:rl:" || c.Timeout != 100*time.Millisecond || c.ProbeInterval != 3*time.Second || c.LocalMaxKeys != 50 {
		t.Fatalf("%+v", c)
	}
	c.Host = []any{"cache", 6380}
	if err := c.Validate(); err != nil {
		t.Fatalf("[host, port] form: %v", err)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"backend", func(c *Config) { c.Backend = "memcached" }, "backend:"},
		{"host scheme", func(c *Config) { c.Host = "http://x" }, "host:"},
		{"host list", func(c *Config) { c.Host = []any{"a"} }, "host:"},
		{"prefix", func(c *Config) { c.Prefix = "" }, "prefix:"},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout:"},
		{"probe", func(c *Config) { c.ProbeInterval = -1 }, "probe_interval:"},
		{"keys", func(c *Config) { c.LocalMaxKeys = -1 }, "local_max_keys:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.want)
			}
		})
	}
}
