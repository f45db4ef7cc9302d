package ratelimit

import (
	"errors"
	"fmt"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// Backends of Config.Backend.
const (
	// BackendRedis shares limits across processes through Redis and falls
	// back to per-process limits while Redis is unreachable.
	BackendRedis = "redis"
	// BackendLocal keeps limits in each process only.
	BackendLocal = "local"
)

// Defaults of Config.
const (
	DefaultBackend       = BackendRedis
	DefaultHost          = "redis://localhost:6379"
	DefaultPrefix        = "sidecar:rl:"
	DefaultTimeout       = 250 * time.Millisecond
	DefaultProbeInterval = time.Second
)

// Config configures the rate limiter shared by every route.
type Config struct {
	// Backend is "redis" (default: one budget per key across every
	// process, per-process limits while Redis is unreachable) or "local"
	// (per-process limits only).
	Backend string `yaml:"backend"`
	// Host is the Redis server, in any form of one entry of the channel
	// layer's hosts (a URL, [host, port], or a mapping, Sentinel
	// included). Default "redis://localhost:6379".
	Host bridge.Host `yaml:"host"`
	// Prefix is put in front of every key in Redis. Default "sidecar:rl:".
	Prefix string `yaml:"prefix"`
	// Timeout bounds one Redis decision; past it the hit is decided
	// locally. Default 250ms.
	Timeout time.Duration `yaml:"timeout"`
	// ProbeInterval is how often, while Redis is unreachable, one hit
	// tries Redis again. Default 1s.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// LocalMaxKeys bounds the keys held by the per-process limiter (the
	// local backend, or the fallback of the redis one); past it the
	// least recently used key is forgotten. Default 100000.
	LocalMaxKeys int `yaml:"local_max_keys"`
}

// SetDefaults fills zero values with the documented defaults.
func (c *Config) SetDefaults() {
	if c.Backend == "" {
		c.Backend = DefaultBackend
	}
	if c.Backend == BackendRedis && c.Host == nil {
		c.Host = bridge.HostFromURL(DefaultHost)
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.LocalMaxKeys == 0 {
		c.LocalMaxKeys = DefaultLocalMaxKeys
	}
}

// Validate reports every invalid setting. Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	switch c.Backend {
	case BackendRedis:
		if _, err := bridge.ParseHost(c.Host); err != nil {
			errs = append(errs, fmt.Errorf("host: %w", err))
		}
	case BackendLocal:
	default:
		errs = append(errs, fmt.Errorf("backend: %q is not %q or %q", c.Backend, BackendRedis, BackendLocal))
	}
	if c.Prefix == "" {
		errs = append(errs, errors.New("prefix: must not be empty, or rate limit keys could collide with other keys"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", c.Timeout))
	}
	if c.ProbeInterval <= 0 {
		errs = append(errs, fmt.Errorf("probe_interval: must be positive, got %s", c.ProbeInterval))
	}
	if c.LocalMaxKeys < 1 {
		errs = append(errs, fmt.Errorf("local_max_keys: must be at least 1, got %d", c.LocalMaxKeys))
	}
	return errors.Join(errs...)
}
