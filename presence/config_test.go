package presence

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{Host: "redis://localhost:6379", Prefix: "sidecar:presence:", TTL: time.Minute,
		HeartbeatInterval: 20 * time.Second, MaxInfoBytes: 4096}
	if c != want {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := Config{TTL: 9 * time.Second}
	d.SetDefaults()
	if d.HeartbeatInterval != 3*time.Second {
		t.Fatalf("heartbeat interval for ttl 9s: %s, want 3s", d.HeartbeatInterval)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
host: ["cache", 6380]
prefix: "app:presence:"
ttl: 30s
heartbeat_interval: 5s
max_info_bytes: 512
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "app:presence:" || c.TTL != 30*time.Second || c.HeartbeatInterval != 5*time.Second || c.MaxInfoBytes != 512 {
		t.Fatalf("%+v", c)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"host", func(c *Config) { c.Host = "ftp://x" }, "host:"},
		{"prefix", func(c *Config) { c.Prefix = "" }, "prefix:"},
		{"ttl", func(c *Config) { c.TTL = 10 * time.Millisecond }, "ttl:"},
		{"interval negative", func(c *Config) { c.HeartbeatInterval = -time.Second }, "heartbeat_interval:"},
		{"interval too long", func(c *Config) { c.HeartbeatInterval = 40 * time.Second }, "more than half of ttl"},
		{"info", func(c *Config) { c.MaxInfoBytes = 1 }, "max_info_bytes:"},
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
