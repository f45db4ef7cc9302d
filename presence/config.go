package presence

import (
	"errors"
	"fmt"
	"time"

	"github.com/channels-sidecar/channels-sidecar/bridge"
)

// Defaults of Config.
const (
	DefaultHost         = "redis://localhost:6379"
	DefaultPrefix       = "sidecar:presence:"
	DefaultTTL          = 60 * time.Second
	DefaultMaxInfoBytes = 4096
	// MinTTL is the shortest TTL Validate accepts.
	MinTTL = 100 * time.Millisecond
)

// Config configures presence.
type Config struct {
	// Host is the Redis server, in any form of one entry of the channel
	// layer's hosts (a URL, [host, port], or a mapping, Sentinel
	// included). Default "redis://localhost:6379".
	Host bridge.Host `yaml:"host"`
	// Prefix is put in front of every key in Redis. Default
	// "sidecar:presence:".
	Prefix string `yaml:"prefix"`
	// TTL is how long a connection stays online without a heartbeat from
	// its process: the longest a crashed process's users stay online.
	// Default 60s; at least 100ms.
	TTL time.Duration `yaml:"ttl"`
	// HeartbeatInterval is how often Run refreshes this process's
	// connections and sweeps expired ones. At most half of TTL, so that
	// one late heartbeat does not expire live connections. Default TTL/3.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// MaxInfoBytes bounds the JSON size of the info given to Join.
	// Default 4096.
	MaxInfoBytes int `yaml:"max_info_bytes"`
}

// SetDefaults fills zero values with the documented defaults.
func (c *Config) SetDefaults() {
	if c.Host == nil {
		c.Host = bridge.HostFromURL(DefaultHost)
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = c.TTL / 3
	}
	if c.MaxInfoBytes == 0 {
		c.MaxInfoBytes = DefaultMaxInfoBytes
	}
}

// Validate reports every invalid setting. Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	if _, err := bridge.ParseHost(c.Host); err != nil {
		errs = append(errs, fmt.Errorf("host: %w", err))
	}
	if c.Prefix == "" {
		errs = append(errs, errors.New("prefix: must not be empty, or presence keys could collide with other keys"))
	}
	if c.TTL < MinTTL {
		errs = append(errs, fmt.Errorf("ttl: must be at least %s, got %s", MinTTL, c.TTL))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, fmt.Errorf("heartbeat_interval: must be positive, got %s", c.HeartbeatInterval))
	} else if c.HeartbeatInterval > c.TTL/2 {
		errs = append(errs, fmt.Errorf("heartbeat_interval: %s is more than half of ttl (%s), so one late heartbeat would expire live connections", c.HeartbeatInterval, c.TTL))
	}
	if c.MaxInfoBytes < 2 {
		errs = append(errs, fmt.Errorf("max_info_bytes: must be at least 2 (the size of {}), got %d", c.MaxInfoBytes))
	}
	return errors.Join(errs...)
}
