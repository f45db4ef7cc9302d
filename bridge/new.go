package bridge

import (
	"fmt"
	"log/slog"
)

// New returns the layer that cfg.Backend names, after filling defaults and
// validating cfg. Messages for the layer's channels reach h once its Run is
// running. h must treat messages as read-only: one decoded message may be
// passed for several channels.
func New(cfg Config, h Handler, log *slog.Logger) (Layer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	switch cfg.Backend {
	case BackendPubSub:
		l, err := NewPubSubLayer(cfg, h, log)
		if err != nil {
			return nil, err
		}
		return l, nil
	case BackendRedis:
		l, err := NewRedisLayer(cfg, h, log)
		if err != nil {
			return nil, err
		}
		return l, nil
	default:
		l, err := NewMemoryLayer(cfg, h, log)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
}
