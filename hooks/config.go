package hooks

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of Config, applied by SetDefaults to zero values.
const (
	// DefaultTimeout bounds one hook call, including the wait for a free
	// slot when MaxInFlight calls are already running.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxInFlight is how many hook calls may run at once.
	DefaultMaxInFlight = 64
	// DefaultAuthorizeCacheTTL is how long a successful authorize answer
	// is reused.
	DefaultAuthorizeCacheTTL = 30 * time.Second
	// DefaultAuthorizeCacheSize is the most authorize answers kept.
	DefaultAuthorizeCacheSize = 10000
	// DefaultMaxResponseBytes bounds the body of one hook answer.
	DefaultMaxResponseBytes = 1 << 20
	// MinSecretLength is the shortest shared secret accepted: a short
	// HMAC key can be guessed offline from one signed request.
	MinSecretLength = 16
	// minTimeout catches a bare number in YAML, which is read as
	// nanoseconds ("timeout: 5" is 5ns, not 5s).
	minTimeout = time.Millisecond
)

// Config configures the calls from the sidecar to Django's hook views.
// Hooks are off while BaseURL and Secret are both empty; a route that
// names a hook needs both.
type Config struct {
	// BaseURL is Django's internal base URL, such as
	// http://127.0.0.1:8000; a hook path is appended to it. Its host must
	// be in Django's ALLOWED_HOSTS. Default: none.
	BaseURL string `yaml:"base_url"`
	// Secret is the shared secret that signs every call (HMAC-SHA256); the
	// Django side lists it in SIDECAR_HOOK_SECRETS. At least 16
	// characters. Default: none.
	Secret string `yaml:"secret"`
	// Timeout bounds one call from the moment it is made, including any
	// wait for a free slot (see MaxInFlight). Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxInFlight is how many calls may be running at once; it also caps
	// the connections to Django. Further callers wait for a slot until
	// their context or Timeout ends, then fail. Default 64.
	MaxInFlight int `yaml:"max_in_flight"`
	// AuthorizeCacheTTL is how long a successful authorize answer (allow
	// or refuse) is reused for the same hook path, route, user and path
	// parameters. Default 30s. "0s" in the file, or a negative value,
	// turns the cache off.
	AuthorizeCacheTTL time.Duration `yaml:"authorize_cache_ttl"`
	// AuthorizeCacheSize is the most authorize answers kept; the least
	// recently used goes first. Default 10000.
	AuthorizeCacheSize int `yaml:"authorize_cache_size"`
	// MaxResponseBytes bounds the body of one answer; a larger one is a
	// hook failure. Default 1048576 (1 MiB).
	MaxResponseBytes int `yaml:"max_response_bytes"`

	// ttlSet records that the YAML named authorize_cache_ttl, so that an
	// explicit 0s turns the cache off instead of taking the default.
	ttlSet bool
}

// UnmarshalYAML decodes the mapping and remembers whether
// authorize_cache_ttl was given, since its zero value means "off".
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*c = Config(p)
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "authorize_cache_ttl" {
				c.ttlSet = true
			}
		}
	}
	return nil
}

// SetDefaults fills zero values with the documented defaults.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.AuthorizeCacheTTL == 0 && !c.ttlSet {
		c.AuthorizeCacheTTL = DefaultAuthorizeCacheTTL
	}
	if c.AuthorizeCacheSize == 0 {
		c.AuthorizeCacheSize = DefaultAuthorizeCacheSize
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
}

// Enabled reports whether hooks are configured at all.
func (c *Config) Enabled() bool { return c.BaseURL != "" || c.Secret != "" }

// cacheEnabled reports whether authorize answers are cached.
func (c *Config) cacheEnabled() bool { return c.AuthorizeCacheTTL > 0 }

// ConfigError is a configuration error at one key of Config, named by
// its YAML key, so that a config loader can point at the line.
type ConfigError struct {
	// Field is the YAML key, such as "base_url".
	Field string
	// Err says what is wrong.
	Err error
}

// Error returns "field: problem".
func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

func fieldError(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Validate checks a Config after SetDefaults. A Config with neither
// BaseURL nor Secret is valid and means hooks are off; once either is set
// both must be, since an unsigned or unaddressed call cannot work. Errors
// are *ConfigError.
func (c *Config) Validate() error {
	if c.Enabled() {
		if c.BaseURL == "" {
			return fieldError("base_url", "required when secret is set: Django's internal URL, such as http://127.0.0.1:8000")
		}
		if err := validateBaseURL(c.BaseURL); err != nil {
			return &ConfigError{Field: "base_url", Err: err}
		}
		if c.Secret == "" {
			return fieldError("secret", "required when base_url is set: the shared secret Django lists in SIDECAR_HOOK_SECRETS")
		}
		if len(c.Secret) < MinSecretLength {
			return fieldError("secret", "is %d characters; use at least %d random characters", len(c.Secret), MinSecretLength)
		}
	}
	if c.Timeout < minTimeout {
		return fieldError("timeout", "%s is too short; write a duration with a unit, such as 5s", c.Timeout)
	}
	if c.MaxInFlight < 1 {
		return fieldError("max_in_flight", "must be positive, not %d", c.MaxInFlight)
	}
	if c.AuthorizeCacheSize < 1 {
		return fieldError("authorize_cache_size", "must be positive, not %d", c.AuthorizeCacheSize)
	}
	if c.MaxResponseBytes < 2 {
		return fieldError("max_response_bytes", "must leave room for a JSON object, not %d", c.MaxResponseBytes)
	}
	return nil
}

// validateBaseURL accepts an absolute http or https URL with a host and
// no query or fragment, since hook paths are appended to it.
func validateBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http:// or https:// URL, not %q", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials: calls are signed with secret")
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") {
		return fmt.Errorf("must not have a query or fragment: hook paths are appended to it")
	}
	return nil
}

// LogValue renders the Config for logs with the secret left out.
func (c Config) LogValue() slog.Value {
	secret := "<unset>"
	if c.Secret != "" {
		secret = "<redacted>"
	}
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("secret", secret),
		slog.Duration("timeout", c.Timeout),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Duration("authorize_cache_ttl", c.AuthorizeCacheTTL),
		slog.Int("authorize_cache_size", c.AuthorizeCacheSize),
		slog.Int("max_response_bytes", c.MaxResponseBytes),
	)
}
