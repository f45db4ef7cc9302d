// Package config loads the sidecar's YAML file: ${VAR} expansion, SIDECAR_*
// environment overrides, defaults, and validation errors that name the
// file, line and key.
package config

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"github.com/channels-sidecar/channels-sidecar/bridge"
	"github.com/channels-sidecar/channels-sidecar/hooks"
	"github.com/channels-sidecar/channels-sidecar/metrics"
	"github.com/channels-sidecar/channels-sidecar/presence"
	"github.com/channels-sidecar/channels-sidecar/proxy"
	"github.com/channels-sidecar/channels-sidecar/ratelimit"
)

// Config is the whole configuration: each package owns its part.
type Config struct {
	proxy.Config `yaml:",inline"`
	// ChannelLayer mirrors Django's CHANNEL_LAYERS["default"]["CONFIG"].
	ChannelLayer bridge.Config `yaml:"channel_layer"`
	// Auth mirrors Django's SECRET_KEY, SESSION_* and SIMPLE_JWT settings.
	Auth auth.Config `yaml:"auth"`
	// RateLimit is where the routes' rate limits are counted. Its host
	// defaults to the channel layer's first Redis host.
	RateLimit ratelimit.Config `yaml:"rate_limit"`
	// Presence is where routes' presence groups are kept. Its host
	// defaults to the channel layer's first Redis host.
	Presence presence.Config `yaml:"presence"`
	// Hooks are the signed calls to Django views that routes declare.
	Hooks hooks.Config `yaml:"hooks"`
	// Metrics places /metrics, /healthz and /readyz.
	Metrics metrics.Config `yaml:"metrics"`
	// Log sets the log level and format.
	Log LogConfig `yaml:"log"`
}

// LogConfig sets logging.
type LogConfig struct {
	// Level is debug, info (the default), warn or error.
	Level string `yaml:"level"`
	// Format is text (the default) or json.
	Format string `yaml:"format"`
}

// SlogLevel returns the level as slog's.
func (l LogConfig) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	c.Config.SetDefaults()
	c.ChannelLayer.SetDefaults()
	c.Auth.SetDefaults()
	c.Metrics.SetDefaults()
	c.Hooks.SetDefaults()
	if c.RateLimit.Host == nil && (c.RateLimit.Backend == "" || c.RateLimit.Backend == ratelimit.BackendRedis) &&
		c.ChannelLayer.Backend != bridge.BackendMemory && len(c.ChannelLayer.Hosts) > 0 {
		c.RateLimit.Host = c.ChannelLayer.Hosts[0]
	}
	if c.RateLimit.Backend == "" && c.ChannelLayer.Backend == bridge.BackendMemory {
		c.RateLimit.Backend = ratelimit.BackendLocal // no Redis to share counts through
	}
	c.RateLimit.SetDefaults()
	if c.Presence.Host == nil && c.ChannelLayer.Backend != bridge.BackendMemory && len(c.ChannelLayer.Hosts) > 0 {
		c.Presence.Host = c.ChannelLayer.Hosts[0]
	}
	c.Presence.SetDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// AuthUsed reports whether any route looks at credentials.
func (c *Config) AuthUsed() bool {
	for _, r := range c.Routes {
		if r.Auth != proxy.AuthNone {
			return true
		}
	}
	return false
}

// PresenceUsed reports whether any route tracks presence.
func (c *Config) PresenceUsed() bool {
	for _, r := range c.Routes {
		if r.Presence != nil {
			return true
		}
	}
	return false
}

func hasStaffField(fields []string) bool {
	for _, f := range fields {
		if f == "is_staff" || f == "is_superuser" {
			return true
		}
	}
	return false
}

// LimitsUsed reports whether any route declares a rate limit.
func (c *Config) LimitsUsed() bool {
	for _, r := range c.Routes {
		if r.Receive.Limit != nil {
			return true
		}
		for _, h := range r.Receive.Handlers {
			if h.Limit != nil {
				return true
			}
		}
	}
	return false
}

// hookUser returns the first route field that calls a hook, or "".
func (c *Config) hookUser() string {
	for i, r := range c.Routes {
		if r.Authorize != nil {
			return fmt.Sprintf("routes[%d].authorize", i)
		}
		lists := map[string][]proxy.ActionConfig{"on_connect": r.OnConnect, "on_disconnect": r.OnDisconnect}
		for name, list := range lists {
			for j, a := range list {
				if a.Hook != "" {
					return fmt.Sprintf("routes[%d].%s[%d].hook", i, name, j)
				}
			}
		}
		for k, a := range r.Receive.Handlers {
			if a.Hook != "" {
				return fmt.Sprintf("routes[%d].receive.handlers.%s.hook", i, k)
			}
		}
		if d := r.Receive.Default; d != nil && d.Hook != "" {
			return fmt.Sprintf("routes[%d].receive.default.hook", i)
		}
	}
	return ""
}

// Validate checks every part. Errors are *proxy.FieldError with the dotted
// path of the offending key, so that Load can name its line.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if err := c.ChannelLayer.Validate(); err != nil {
		return section("channel_layer", err)
	}
	if c.Auth.SecretKey != "" || c.AuthUsed() {
		for i, r := range c.Routes {
			if r.Auth != proxy.AuthNone && c.Auth.SecretKey == "" {
				return &proxy.FieldError{Field: fmt.Sprintf("routes[%d].auth", i),
					Err: fmt.Errorf("route %s checks credentials, so auth.secret_key (Django's SECRET_KEY) must be set; use auth: none for a public route", r.Path)}
			}
		}
		if err := c.Auth.Validate(); err != nil {
			return section("auth", err)
		}
		for i, r := range c.Routes {
			if r.Auth == proxy.AuthStaff && !hasStaffField(c.Auth.Database.UserFields) {
				return &proxy.FieldError{Field: fmt.Sprintf("routes[%d].auth", i),
					Err: fmt.Errorf("staff needs the user's is_staff or is_superuser: add them to auth.database.user_fields")}
			}
		}
	}
	if c.PresenceUsed() {
		if err := c.Presence.Validate(); err != nil {
			return section("presence", err)
		}
	}
	if err := c.RateLimit.Validate(); err != nil {
		return section("rate_limit", err)
	}
	if err := c.Hooks.Validate(); err != nil {
		return section("hooks", err)
	}
	if field := c.hookUser(); field != "" && !c.Hooks.Enabled() {
		return &proxy.FieldError{Field: field, Err: fmt.Errorf("calls a Django hook, so hooks.base_url and hooks.secret must be set")}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		return &proxy.FieldError{Field: "log.level", Err: fmt.Errorf("want debug, info, warn or error, not %q", c.Log.Level)}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &proxy.FieldError{Field: "log.format", Err: fmt.Errorf("want text or json, not %q", c.Log.Format)}
	}
	return nil
}

func section(name string, err error) error {
	if fe, ok := err.(*proxy.FieldError); ok {
		return &proxy.FieldError{Field: name + "." + fe.Field, Err: fe.Err}
	}
	return &proxy.FieldError{Field: name, Err: err}
}
