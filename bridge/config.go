package bridge

import (
	"errors"
	"fmt"
)

// Backend names accepted in Config.Backend.
const (
	// BackendMemory keeps everything inside this process. It is meant for
	// the embedded demo and tests: nothing reaches Django.
	BackendMemory = "memory"
	// BackendRedis speaks the channels_redis core protocol
	// (channels_redis.core.RedisChannelLayer) on a Redis server.
	BackendRedis = "redis"
	// BackendPubSub speaks the channels_redis pub/sub protocol
	// (channels_redis.pubsub.RedisPubSubChannelLayer), which does not
	// interoperate with BackendRedis: use the one Django's BACKEND names.
	BackendPubSub = "pubsub"
)

// normalizeBackend maps Django's dotted CHANNEL_LAYERS BACKEND names to
// backend names, so a settings value can be pasted as is.
func normalizeBackend(name string) string {
	switch name {
	case "channels.layers.InMemoryChannelLayer":
		return BackendMemory
	case "channels_redis.core.RedisChannelLayer":
		return BackendRedis
	case "channels_redis.pubsub.RedisPubSubChannelLayer":
		return BackendPubSub
	}
	return name
}

// SerializerMsgpack is the only serializer_format supported.
const SerializerMsgpack = "msgpack"

// Defaults mirror channels_redis 4.x so that an empty config behaves like an
// empty Django CHANNEL_LAYERS CONFIG.
const (
	// DefaultPrefix is the Redis key prefix.
	DefaultPrefix = "asgi"
	// DefaultExpiry is the message expiry in seconds.
	DefaultExpiry = 60
	// DefaultGroupExpiry is the group membership expiry in seconds.
	DefaultGroupExpiry = 86400
	// DefaultCapacity is the capacity of a channel key.
	DefaultCapacity = 100
	// DefaultReceiveBatch is how many messages one pop may take.
	DefaultReceiveBatch = 100
	// DefaultRandomPrefixLength is the random member prefix length.
	DefaultRandomPrefixLength = 12
	// DefaultHost is the Redis URL used when hosts is empty.
	DefaultHost = "redis://localhost:6379"
	// maxGroupRefresh caps the default refresh period so that a long
	// group_expiry still gets memberships re-added at least hourly.
	maxGroupRefresh = 3600
)

// Config configures the channel layer. Keys that exist in Django's
// CHANNEL_LAYERS["default"]["CONFIG"] keep their names and meaning.
type Config struct {
	// Backend is "memory" (default), "redis" (the channels_redis core
	// layer) or "pubsub" (the channels_redis pub/sub layer). Django's
	// dotted BACKEND names are accepted too and normalized by SetDefaults:
	// channels.layers.InMemoryChannelLayer, channels_redis.core.RedisChannelLayer,
	// channels_redis.pubsub.RedisPubSubChannelLayer. The pubsub backend
	// ignores expiry, group_expiry, capacity, channel_capacity,
	// random_prefix_length, receive_batch and group_refresh, as
	// channels_redis does, and Observer (its messages carry no
	// timestamp). It stores nothing in Redis: a message published while
	// this process is not subscribed, as during a Redis restart, is lost.
	Backend string `yaml:"backend"`
	// Hosts is the ring of Redis hosts, in the order of Django's hosts,
	// in every form channels_redis accepts (see Host): URLs
	// (redis://[user:password@]host[:port][/db], rediss:// for TLS,
	// unix:///path?db=N), [host, port] pairs, mappings with "address" or
	// connection settings, and Sentinel mappings. Groups and channels are
	// spread over the hosts with channels_redis' hash. Default for the
	// redis and pubsub backends: ["redis://localhost:6379"], as in
	// channels_redis.
	Hosts HostList `yaml:"hosts"`
	// Prefix is put in front of every Redis key. It must equal Django's
	// prefix. Default "asgi".
	Prefix string `yaml:"prefix"`
	// Expiry is the message lifetime in seconds: stale messages are trimmed
	// before writes, channel keys expire after it, and encrypted messages
	// older than Expiry+10 s are rejected. Default 60.
	Expiry int `yaml:"expiry"`
	// GroupExpiry is the group membership lifetime in seconds. Default 86400.
	GroupExpiry int `yaml:"group_expiry"`
	// Capacity is the most messages a channel key may hold before Send
	// returns ErrChannelFull and GroupSend skips it. Default 100.
	Capacity int `yaml:"capacity"`
	// ChannelCapacity overrides Capacity for channel names matching a glob
	// pattern (Python fnmatch syntax: * ? [seq] [!seq], matched against the
	// whole name). The first matching entry wins. Default: none.
	ChannelCapacity []ChannelCapacity `yaml:"channel_capacity"`
	// SymmetricEncryptionKeys turns on Fernet encryption of message
	// payloads. The first key encrypts; every key is tried to decrypt, so
	// a new key goes first during rotation. Default: none (no encryption).
	// With the pubsub backend the Django side needs channels_redis >= 4.2.1
	// (older pub/sub layers silently ignore the keys); pub/sub payloads
	// carry no random prefix and are decrypted without an age limit.
	SymmetricEncryptionKeys []string `yaml:"symmetric_encryption_keys"`
	// SerializerFormat is channels_redis' serializer_format (>= 4.2.1).
	// Only "msgpack", the default, is supported.
	SerializerFormat string `yaml:"serializer_format"`
	// RandomPrefixLength is the number of random bytes in front of every
	// stored message (channels_redis >= 4.2.1 option). Default 12.
	RandomPrefixLength int `yaml:"random_prefix_length"`
	// ReceiveBatch is the most messages the receive loop pops from Redis
	// in one round trip. Default 100.
	ReceiveBatch int `yaml:"receive_batch"`
	// GroupRefresh is how often, in seconds, this process re-adds its
	// group memberships, so that sockets can stay longer than GroupExpiry.
	// Default GroupExpiry/4, at most 3600.
	GroupRefresh int `yaml:"group_refresh"`
	// Observer, if set, receives lag and queue-depth measurements as they
	// happen (see Observer). It is set by code, not by the config file.
	Observer Observer `yaml:"-"`
}

// ChannelCapacity is one per-channel capacity override.
type ChannelCapacity struct {
	// Pattern is a Python fnmatch glob matched against the full channel
	// name, e.g. "http.response!*".
	Pattern string `yaml:"pattern"`
	// Capacity is the capacity for matching channels.
	Capacity int `yaml:"capacity"`
}

// SetDefaults fills zero values with the documented defaults.
func (c *Config) SetDefaults() {
	if c.Backend == "" {
		c.Backend = BackendMemory
	}
	c.Backend = normalizeBackend(c.Backend)
	if c.SerializerFormat == "" {
		c.SerializerFormat = SerializerMsgpack
	}
	if (c.Backend == BackendRedis || c.Backend == BackendPubSub) && len(c.Hosts) == 0 {
		c.Hosts = HostList{HostFromURL(DefaultHost)}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Expiry == 0 {
		c.Expiry = DefaultExpiry
	}
	if c.GroupExpiry == 0 {
		c.GroupExpiry = DefaultGroupExpiry
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.RandomPrefixLength == 0 {
		c.RandomPrefixLength = DefaultRandomPrefixLength
	}
	if c.ReceiveBatch == 0 {
		c.ReceiveBatch = DefaultReceiveBatch
	}
	if c.GroupRefresh == 0 {
		c.GroupRefresh = min(max(c.GroupExpiry/4, 1), maxGroupRefresh)
	}
}

// Validate reports the first invalid setting. Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	switch c.Backend {
	case BackendMemory, BackendRedis, BackendPubSub:
	default:
		errs = append(errs, fmt.Errorf("backend: %q is not one of %q, %q, %q (or a Django BACKEND path of one)", c.Backend, BackendMemory, BackendRedis, BackendPubSub))
	}
	if c.Backend == BackendPubSub && len(c.Hosts) == 0 {
		errs = append(errs, errors.New("hosts: the pubsub backend needs at least one host"))
	}
	if c.SerializerFormat != "" && c.SerializerFormat != SerializerMsgpack {
		errs = append(errs, fmt.Errorf("serializer_format: %q is not supported; only %q is", c.SerializerFormat, SerializerMsgpack))
	}
	if c.Backend == BackendRedis && len(c.Hosts) == 0 {
		errs = append(errs, errors.New("hosts: the redis backend needs at least one host"))
	}
	for i, h := range c.Hosts {
		if _, err := ParseHost(h); err != nil {
			errs = append(errs, fmt.Errorf("hosts[%d]: %w", i, err))
		}
	}
	if c.Expiry < 1 {
		errs = append(errs, fmt.Errorf("expiry: must be at least 1 second, got %d", c.Expiry))
	}
	if c.GroupExpiry < 1 {
		errs = append(errs, fmt.Errorf("group_expiry: must be at least 1 second, got %d", c.GroupExpiry))
	}
	if c.Capacity < 1 {
		errs = append(errs, fmt.Errorf("capacity: must be at least 1, got %d", c.Capacity))
	}
	for i, cc := range c.ChannelCapacity {
		if cc.Pattern == "" {
			errs = append(errs, fmt.Errorf("channel_capacity[%d]: pattern is empty", i))
		}
		if cc.Capacity < 1 {
			errs = append(errs, fmt.Errorf("channel_capacity[%d] (%q): capacity must be at least 1, got %d", i, cc.Pattern, cc.Capacity))
		}
	}
	for i, k := range c.SymmetricEncryptionKeys {
		if k == "" {
			errs = append(errs, fmt.Errorf("symmetric_encryption_keys[%d]: key is empty", i))
		}
	}
	if c.RandomPrefixLength < 1 || c.RandomPrefixLength > 64 {
		errs = append(errs, fmt.Errorf("random_prefix_length: must be between 1 and 64, got %d", c.RandomPrefixLength))
	}
	if c.ReceiveBatch < 1 {
		errs = append(errs, fmt.Errorf("receive_batch: must be at least 1, got %d", c.ReceiveBatch))
	}
	if c.GroupRefresh < 1 {
		errs = append(errs, fmt.Errorf("group_refresh: must be at least 1 second, got %d", c.GroupRefresh))
	} else if c.GroupExpiry >= 1 && c.GroupRefresh >= c.GroupExpiry {
		errs = append(errs, fmt.Errorf("group_refresh: %d s must be shorter than group_expiry (%d s), or memberships lapse between refreshes", c.GroupRefresh, c.GroupExpiry))
	}
	return errors.Join(errs...)
}
