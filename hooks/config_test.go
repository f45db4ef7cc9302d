package hooks

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Timeout != 5*time.Second || c.MaxInFlight != 64 || c.AuthorizeCacheTTL != 30*time.Second ||
		c.AuthorizeCacheSize != 10000 || c.MaxResponseBytes != 1<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Enabled() {
		t.Fatal("an empty config must leave hooks off")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("hooks off must be valid: %v", err)
	}
}

func TestConfigYAML(t *testing.T) {
	parse := func(t *testing.T, src string) Config {
		t.Helper()
		var c Config
		if err := yaml.Unmarshal([]byte(src), &c); err != nil {
			t.Fatal(err)
		}
		c.SetDefaults()
		return c
	}
	c := parse(t, "base_url: http://127.0.0.1:8000\nsecret: 0123456789abcdef\ntimeout: 250ms\nmax_in_flight: 8\nauthorize_cache_size: 5\n")
	if c.BaseURL != "http://127.0.0.1:8000" || c.Secret != "0123456789abcdef" || c.Timeout != 250*time.Millisecond ||
		c.MaxInFlight != 8 || c.AuthorizeCacheSize != 5 || c.AuthorizeCacheTTL != DefaultAuthorizeCacheTTL {
		t.Fatalf("parsed: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	off := parse(t, "authorize_cache_ttl: 0s\n")
	if off.AuthorizeCacheTTL != 0 || off.cacheEnabled() {
		t.Fatalf("authorize_cache_ttl: 0s must turn the cache off, got %s", off.AuthorizeCacheTTL)
	}
	custom := parse(t, "authorize_cache_ttl: 2m\n")
	if custom.AuthorizeCacheTTL != 2*time.Minute {
		t.Fatalf("authorize_cache_ttl: 2m gave %s", custom.AuthorizeCacheTTL)
	}
	neg := Config{AuthorizeCacheTTL: -1}
	neg.SetDefaults()
	if neg.cacheEnabled() {
		t.Fatal("a negative ttl must turn the cache off")
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := Config{BaseURL: "http://127.0.0.1:8000", Secret: "0123456789abcdef"}
		c.SetDefaults()
		return c
	}
	cases := []struct {
		field, want string
		edit        func(*Config)
	}{
		{"base_url", "required when secret", func(c *Config) { c.BaseURL = "" }},
		{"secret", "required when base_url", func(c *Config) { c.Secret = "" }},
		{"secret", "at least 16", func(c *Config) { c.Secret = "short" }},
		{"base_url", "http://", func(c *Config) { c.BaseURL = "ftp://django" }},
		{"base_url", "no host", func(c *Config) { c.BaseURL = "http://" }},
		{"base_url", "query", func(c *Config) { c.BaseURL = "http://django:8000/?x=1" }},
		{"base_url", "credentials", func(c *Config) { c.BaseURL = "http://u:p@django:8000" }},
		{"timeout", "with a unit", func(c *Config) { c.Timeout = 5 }},
		{"max_in_flight", "positive", func(c *Config) { c.MaxInFlight = -1 }},
		{"authorize_cache_size", "positive", func(c *Config) { c.AuthorizeCacheSize = -3 }},
		{"max_response_bytes", "room", func(c *Config) { c.MaxResponseBytes = 1 }},
	}
	for _, tc := range cases {
		c := base()
		tc.edit(&c)
		err := c.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want a %s error mentioning %q", tc.field, err, tc.field, tc.want)
		}
	}
	ok := base()
	ok.BaseURL = "https://django.internal/app/"
	if err := ok.Validate(); err != nil {
		t.Fatalf("a base URL with a path prefix: %v", err)
	}
}

func TestNewRefusesHooksOff(t *testing.T) {
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "base_url") {
		t.Fatalf("New with hooks off = %v, want a base_url error", err)
	}
	if _, err := New(Config{BaseURL: "http://x", Secret: "short"}, nil); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("New with a short secret = %v", err)
	}
}

func TestConfigLogValueHidesSecret(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	c := Config{BaseURL: "http://127.0.0.1:8000", Secret: "super-secret-value-123"}
	c.SetDefaults()
	log.Info("hooks", "config", c)
	if strings.Contains(buf.String(), c.Secret) || !strings.Contains(buf.String(), "<redacted>") {
		t.Fatalf("log line: %s", buf.String())
	}
}
