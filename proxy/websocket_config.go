package proxy

import (
	"fmt"
	"time"
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
	// Compression enables permessage-deflate when the client offers it.
	// Default true.
	Compression *bool `yaml:"compression"`
	// AllowedOrigins lists the Origin values accepted at the handshake,
	// as scheme://host[:port]. Empty: a request with an Origin is
	// accepted only when the Origin's host equals the Host header.
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
	if c.Compression == nil {
		on := true
		c.Compression = &on
	}
}

// Validate checks ranges.
func (c *WebSocketConfig) Validate() error {
	if c.ReadLimit < 0 {
		return &FieldError{Field: "read_limit", Err: fmt.Errorf("must be positive")}
	}
	if c.PingInterval < 0 || c.PongTimeout < 0 || c.WriteTimeout < 0 || c.HandshakeTimeout < 0 {
		return &FieldError{Field: "ping_interval", Err: fmt.Errorf("durations must be positive")}
	}
	if c.SendQueue < 0 {
		return &FieldError{Field: "send_queue", Err: fmt.Errorf("must be positive")}
	}
	return nil
}
