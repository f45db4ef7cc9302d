package auth

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults of the session callback.
const (
	DefaultCallbackTimeout        = 2 * time.Second
	DefaultCallbackCacheTTL       = 5 * time.Second
	DefaultCallbackCacheSize      = 10000
	DefaultCallbackMaxConcurrency = 16
)

// minHookSecretLen keeps the HMAC key out of guessing range.
const minHookSecretLen = 16

// SessionCallbackConfig asks a Django view who a session cookie belongs
// to, for what the sidecar cannot read itself: file sessions, custom
// session engines, custom authentication backends or user models. When
// URL is set, every session cookie goes to the view, whatever
// session_engine says. The request and the answer are described in
// docs/configuration.md and implemented for Django by
// compat/django/refsite/sidecar_views.py.
type SessionCallbackConfig struct {
	// URL is the view, e.g. http://127.0.0.1:8000/internal/sidecar/session/.
	URL string `yaml:"url"`
	// HookSecret is the shared key of the HMAC-SHA256 that signs every
	// request; the view must be given the same value. Required with url,
	// at least 16 characters.
	HookSecret string `yaml:"hook_secret"`
	// Timeout bounds one call. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// CacheTTL is how long an answer (accepted or refused) is reused for
	// the same cookie before Django is asked again. Default 5s. Critical
	// frames reuse an answer for at most recheck_cache_ttl.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the number of cached answers. Default 10000.
	CacheSize int `yaml:"cache_size"`
	// MaxConcurrency bounds the calls in flight; a handshake that cannot
	// get a slot before its deadline is refused. Default 16.
	MaxConcurrency int `yaml:"max_concurrency"`
}

// enabled reports whether the callback replaces the session engine.
func (c *SessionCallbackConfig) enabled() bool { return c.URL != "" }

// SetDefaults fills zero values.
func (c *SessionCallbackConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultCallbackTimeout
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCallbackCacheTTL
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCallbackCacheSize
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultCallbackMaxConcurrency
	}
}

// Validate reports every setting that cannot work, prefixed with
// "session_callback.". It expects SetDefaults to have run.
func (c *SessionCallbackConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("session_callback."+format, args...))
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url %q must be an absolute http:// or https:// URL", c.URL)
	}
	if len(c.HookSecret) < minHookSecretLen {
		bad("hook_secret is required with url and must be at least %d characters; give the Django view the same value", minHookSecretLen)
	}
	if c.Timeout < 0 {
		bad("timeout must not be negative")
	}
	if c.CacheTTL < 0 {
		bad("cache_ttl must not be negative")
	}
	if c.CacheSize < 0 {
		bad("cache_size must not be negative")
	}
	if c.MaxConcurrency < 0 {
		bad("max_concurrency must not be negative")
	}
	return errors.Join(errs...)
}

// redacted returns a copy with the secret masked.
func (c SessionCallbackConfig) redacted() SessionCallbackConfig {
	if c.HookSecret != "" {
		c.HookSecret = "[redacted]"
	}
	return c
}
