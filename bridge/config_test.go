package bridge

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Backend != "memory" || c.Prefix != "asgi" || c.Expiry != 60 || c.GroupExpiry != 86400 ||
		c.Capacity != 100 || c.ReceiveBatch != 100 || c.RandomPrefixLength != 12 || c.GroupRefresh != 3600 || len(c.Hosts) != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := Config{Backend: "redis", GroupExpiry: 100}
	r.SetDefaults()
	if len(r.Hosts) != 1 || r.Hosts[0] != "redis://localhost:6379" || r.GroupRefresh != 25 {
		t.Fatalf("redis defaults: %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigYAMLKeys(t *testing.T) {
	src := `
backend: redis
hosts: ["rediss://:pw@redis.example:6380/2"]
prefix: myapp
expiry: 30
group_expiry: 600
capacity: 50
channel_capacity:
  - {pattern: "http.response!*", capacity: 10}
symmetric_encryption_keys: [new, old]
random_prefix_length: 16
receive_batch: 10
group_refresh: 60
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "myapp" || c.Expiry != 30 || c.GroupExpiry != 600 || c.Capacity != 50 ||
		len(c.ChannelCapacity) != 1 || c.ChannelCapacity[0].Capacity != 10 || len(c.SymmetricEncryptionKeys) != 2 ||
		c.RandomPrefixLength != 16 || c.ReceiveBatch != 10 || c.GroupRefresh != 60 {
		t.Fatalf("parsed: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"backend", func(c *Config) { c.Backend = "pubsub2" }, "backend"},
		{"second host", func(c *Config) { c.Backend = "redis"; c.Hosts = HostList{"redis://a", []any{"b"}} }, "hosts[1]"},
		{"scheme", func(c *Config) { c.Backend = "redis"; c.Hosts = HostList{"http://a"} }, "scheme"},
		{"bad url", func(c *Config) { c.Backend = "redis"; c.Hosts = HostList{"redis://:secretpw@a:x/0"} }, "hosts[0]"},
		{"bad db", func(c *Config) { c.Backend = "redis"; c.Hosts = HostList{"redis://:secretpw@a:6379/x"} }, "hosts[0]"},
		{"expiry", func(c *Config) { c.Expiry = -1 }, "expiry"},
		{"group expiry", func(c *Config) { c.GroupExpiry = -5 }, "group_expiry"},
		{"capacity", func(c *Config) { c.Capacity = -1 }, "capacity"},
		{"channel capacity", func(c *Config) { c.ChannelCapacity = []ChannelCapacity{{Pattern: "x", Capacity: 0}} }, "channel_capacity[0]"},
		{"empty pattern", func(c *Config) { c.ChannelCapacity = []ChannelCapacity{{Capacity: 3}} }, "pattern is empty"},
		{"empty key", func(c *Config) { c.SymmetricEncryptionKeys = []string{""} }, "symmetric_encryption_keys[0]"},
		{"batch", func(c *Config) { c.ReceiveBatch = -1 }, "receive_batch"},
		{"refresh too slow", func(c *Config) { c.GroupExpiry = 100; c.GroupRefresh = 100 }, "group_refresh"},
		{"prefix length", func(c *Config) { c.RandomPrefixLength = 100 }, "random_prefix_length"},
	}
	for _, tc := range cases {
		var c Config
		tc.mut(&c)
		c.SetDefaults()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: error leaks the password: %v", tc.name, err)
		}
	}
	for _, h := range []string{"redis://localhost:6379/0", "rediss://user:pw@h:6380", "unix:///run/redis.sock?db=2"} {
		c := Config{Backend: "redis", Hosts: HostList{h}}
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}
