package proxy

import (
	"fmt"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"go.yaml.in/yaml/v3"
)

// WebSocketConfig tunes every WebSocket connection.
type WebSocketConfig struct {
	// ReadLimit is the largest inbound message in bytes; a larger one
	// closes the socket with 1009. Default 65536.
	ReadLimit int64 `yaml:"read_limit"`
	// PingInterval is how often the server pings an idle client.
	// Default 25s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// PongTimeout is how long after a ping a silent client is dropped.
	// Default 20s.
	PongTimeout time.Duration `yaml:"pong_timeout"`
	// WriteTimeout bounds one write to a client. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// HandshakeTimeout bounds the upgrade. Default 10s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// SendQueue is how many frames may wait for a slow client before it
	// is disconnected. Default 256.
	SendQueue int `yaml:"send_queue"`
	// Compression configures permessage-deflate. `compression: false` is
	// short for `compression: {enabled: false}`.
	Compression CompressionConfig `yaml:"compression"`
	// AllowedOrigins lists the Origin values accepted at the handshake,
	// as scheme://host[:port] (https://app.example.com, no path, no
	// wildcard), matched exactly, case-insensitively, default ports
	// ignored. A handshake without Origin, with another one or with more
	// than one Origin header gets 403. This is the recommended setting:
	// the Origin check is what stops other sites from opening sockets with
	// a visitor's session cookie.
	//
	// Precedence: this list when set; else auth.allowed_hosts (Django's
	// ALLOWED_HOSTS, with auth.debug's defaults) with Channels'
	// AllowedHostsOriginValidator rules, which admit any scheme and port
	// and, for ".example.com", every subdomain; else the default: an
	// Origin is accepted only when it names the Host header's host and
	// port, and a handshake without Origin (not a browser) is accepted.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// SetDefaults fills unset fields.
func (c *WebSocketConfig) SetDefaults() {
	if c.ReadLimit == 0 {
		c.ReadLimit = 64 << 10
	}
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PongTimeout == 0 {
		c.PongTimeout = 20 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.SendQueue == 0 {
		c.SendQueue = 256
	}
	c.Compression.SetDefaults()
}

// Validate checks ranges.
func (c *WebSocketConfig) Validate() error {
	if c.ReadLimit < 0 {
		return &FieldError{Field: "read_limit", Err: fmt.Errorf("must be positive")}
	}
	if c.PingInterval < 0 || c.PongTimeout < 0 || c.WriteTimeout < 0 || c.HandshakeTimeout < 0 {
		return &FieldError{Field: "ping_interval", Err: fmt.Errorf("durations must be positive")}
	}
	if err := c.Compression.Validate(); err != nil {
		return err
	}
	if _, err := auth.NewOriginPolicy(c.AllowedOrigins, nil); err != nil {
		return &FieldError{Field: "allowed_origins", Err: err}
	}
	if c.SendQueue < 0 {
		return &FieldError{Field: "send_queue", Err: fmt.Errorf("must be positive")}
	}
	return nil
}

// CompressionConfig tunes permessage-deflate (RFC 7692), which the sidecar
// negotiates without context takeover in either direction, so no socket
// holds a compressor between messages.
type CompressionConfig struct {
	// Enabled negotiates compression when the client offers it. Default
	// true.
	Enabled *bool `yaml:"enabled"`
	// Level is the deflate level, 1 (fastest, the default) to 9.
	Level int `yaml:"level"`
	// MinSize is the smallest frame, in bytes, worth compressing; smaller
	// frames go uncompressed. Default 64.
	MinSize int `yaml:"min_size"`
}

// UnmarshalYAML accepts a bool as well as a mapping.
func (c *CompressionConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var on bool
		if err := n.Decode(&on); err != nil {
			return err
		}
		c.Enabled = &on
		return nil
	}
	type plain CompressionConfig
	return n.Decode((*plain)(c))
}

// On reports whether compression is enabled.
func (c *CompressionConfig) On() bool { return c.Enabled == nil || *c.Enabled }

// SetDefaults fills unset fields.
func (c *CompressionConfig) SetDefaults() {
	if c.Enabled == nil {
		on := true
		c.Enabled = &on
	}
	if c.Level == 0 {
		c.Level = flate.BestSpeed
	}
	if c.MinSize == 0 {
		c.MinSize = 64
	}
}

// Validate checks the level.
func (c *CompressionConfig) Validate() error {
	if c.Level < flate.BestSpeed || c.Level > flate.BestCompression {
		return &FieldError{Field: "compression.level", Err: fmt.Errorf("must be 1 to 9, not %d", c.Level)}
	}
	if c.MinSize < 0 {
		return &FieldError{Field: "compression.min_size", Err: fmt.Errorf("must not be negative")}
	}
	return nil
}
